"""Q/DQ INT8 ONNX: body-only placement, the two flavours, and parity with the reference."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgedet.calibration.body import find_body
from edgedet.calibration.qdq import collect_ranges, quantize
from edgedet.calibration.qdq_graph import check_placement, qdq_summary

QDQ = {"QuantizeLinear", "DequantizeLinear"}


@pytest.fixture(scope="module")
def fp32_model(fp32_onnx):
    return onnx.load(str(fp32_onnx))


@pytest.fixture(scope="module")
def body(fp32_model):
    return find_body(fp32_model)


@pytest.fixture(scope="module")
def int8_paths(fp32_onnx, ranges, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    return {flavour: quantize(fp32_onnx, ranges, folder / f"model_{flavour}.onnx",
                              flavour=flavour) and folder / f"model_{flavour}.onnx"
            for flavour in ("u8s8", "s8s8")}


def _graph(model):
    producer = {out: n for n in model.graph.node for out in n.output}
    consumers = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    return producer, consumers


def test_body_is_the_network_and_the_head_outputs_stay_float(fp32_model, body):
    assert body.scope.startswith("yolov8_detector")
    assert len(body.float_head) == 6
    assert sorted(n.split("/")[1].rsplit("_", 1)[0] for n in body.float_head) == sorted(
        f"yolo_v8_head_{level}_{branch}_3_conv" for level in (1, 2, 3)
        for branch in ("box", "class"))
    types = {n.name: n.op_type for n in fp32_model.graph.node}
    quantized_types = {types[n] for n in body.quantize}
    assert {"Conv", "Sigmoid", "Mul"} <= quantized_types
    # Nothing of the letterbox, decode or NMS is in the body (its only Resizes: the
    # FPN's nearest upsamples, onnx_export.repeat_upsamples_resized).
    post = {"NonMaxSuppression", "TopK", "Pad", "Softmax", "ArgMax", "ReduceMax"}
    assert not {types[n] for n in body.nodes} & post
    modes = {n.name: [a.s for a in n.attribute if a.name == "mode"]
             for n in fp32_model.graph.node if n.op_type == "Resize"}
    assert all(modes[n] == [b"nearest"] for n in body.nodes if n in modes)
    # Unnamed body nodes: tf2onnx's layout transposes and its conv+batch-norm fusions.
    unscoped = [n for n in body.nodes if not n.startswith(body.scope + "/")]
    assert {types[n] for n in unscoped} <= {"Transpose", "Conv"}, unscoped


@pytest.mark.parametrize("flavour", ["u8s8", "s8s8"])
def test_qdq_touches_the_body_only(int8_paths, fp32_model, body, flavour):
    model = onnx.load(str(int8_paths[flavour]))
    producer, consumers = _graph(model)
    inits = {i.name for i in model.graph.initializer}
    body_nodes = set(body.nodes)
    assert not check_placement(model, body)
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            assert producer[node.input[0]].name in body_nodes, node.name
        if node.op_type == "DequantizeLinear":
            users = [u for u in consumers.get(node.output[0], []) if u.op_type not in QDQ]
            assert all(u.name in body_nodes or u.op_type == "Shape" for u in users), node.name
    # Pre/post nodes keep their float inputs: none reads a dequantized tensor.
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for node in model.graph.node:
        if node.name not in body_nodes and node.op_type not in QDQ | {"Shape"}:
            assert not set(node.input) & dq_outputs, node.name
    # The head's output convolutions keep float weights.
    convs = {n.name: n for n in model.graph.node}
    for name in body.float_head:
        weight = convs[name].input[1]
        assert weight in inits, f"{name} reads {weight}, not a float initializer"
        assert model.graph.initializer[[i.name for i in model.graph.initializer].index(weight)
                                       ].data_type == onnx.TensorProto.FLOAT


def test_s8s8_is_symmetric_with_zero_points_0(int8_paths):
    summary = qdq_summary(int8_paths["s8s8"])
    assert summary["quantize"] > 50 and summary["dequantize"] == summary["quantize"]
    # Only int8: TensorRT's ONNX parser refuses INT32 Q/DQ (quantized biases).
    assert summary["zero_point_dtypes"] == {"int8"}
    assert summary["nonzero_zero_points"] == []


def test_s8s8_follows_tensorrt_placement(int8_paths):
    """Q/DQ only on convolution inputs: activations per tensor, weights per output
    channel (axis 0, float weights behind a Q -> DQ pair), biases float."""
    model = onnx.load(str(int8_paths["s8s8"]))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {out: n for n in model.graph.node for out in n.output}
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    convs = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        assert {u.op_type for u in users[node.output[0]]} == {"Conv"}, node.name
        for user in users[node.output[0]]:
            assert list(user.input).index(node.output[0]) in (0, 1), user.name  # Never a bias.
        quantize = producer[node.input[0]]
        assert quantize.op_type == "QuantizeLinear"
        scale = inits[node.input[1]]
        if quantize.input[0] in inits:  # A weight: float, per output channel.
            weight = inits[quantize.input[0]]
            assert weight.dtype == np.float32
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            assert axis == 0 and scale.shape == (weight.shape[0],), node.name
            convs += 1
        else:
            assert scale.size == 1, node.name  # Activations: per tensor.
    assert convs > 50


def test_u8s8_has_uint8_activations_and_int8_per_channel_weights(int8_paths):
    model = onnx.load(str(int8_paths["u8s8"]))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    activation, weight = set(), set()
    per_channel = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        zero_point = inits[node.input[2]]
        if zero_point.dtype == np.int32:  # A bias (int32, scale = input x weight scale).
            continue
        if node.input[0] in inits:  # A weight.
            weight.add(zero_point.dtype.name)
            assert not np.any(zero_point), node.name  # Symmetric weights.
            per_channel += inits[node.input[1]].size > 1
        else:
            activation.add(zero_point.dtype.name)
    assert activation == {"uint8"} and weight == {"int8"}
    assert per_channel > 40


def test_quantize_head_option_quantizes_the_head_convs(fp32_onnx, calib_data, fp32_model):
    body = find_body(fp32_model, quantize_head=True)
    assert body.float_head == ()
    head_ranges = collect_ranges(fp32_onnx, calib_data, method="minmax", body=body)
    model = quantize(fp32_onnx, head_ranges, flavour="u8s8", body=body)
    assert not check_placement(model, body)
    producer, _ = _graph(model)
    heads = [n for n in model.graph.node if "_box_3_conv" in n.name and n.op_type == "Conv"]
    assert heads and all(producer[n.input[1]].op_type == "DequantizeLinear" for n in heads)


def test_int8_metadata(int8_paths):
    from edgedet.runtimes.onnxrt import read_metadata

    metadata = read_metadata(int8_paths["s8s8"])
    assert metadata.precision == "int8" and metadata.target == "onnx"
    quantization = metadata.extra["quantization"]
    assert quantization["flavour"] == "s8s8" and quantization["method"] == "minmax"
    assert quantization["calibration_images"] == 12
    assert len([n for n in quantization["float_nodes"] if "_3_conv" in n]) == 6


def test_both_int8_models_pass_parity(detector, int8_paths, eval_images):
    from edgedet.parity import run_parity

    result = run_parity(detector, list(int8_paths.values()), eval_images)
    assert result, result.summary_text()
    for artifact in result.artifacts:
        assert artifact.summary["reference_detections"] >= 40
        assert artifact.summary["recall"] >= 0.9


def test_parity_catches_a_bad_quantization(detector, fp32_onnx, ranges, eval_images, tmp_path):
    """Ranges 50x too narrow clip every activation: parity must fail (the test can fail)."""
    from edgedet.parity import run_parity

    narrow = ranges.with_ranges({k: (lo / 50, hi / 50) for k, (lo, hi) in ranges.ranges.items()})
    path = tmp_path / "bad_int8.onnx"
    quantize(fp32_onnx, narrow, path, flavour="u8s8")
    result = run_parity(detector, [path], eval_images)
    assert not result


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_other_methods_give_ranges_within_minmax(fp32_onnx, calib_data, ranges, method):
    other = collect_ranges(fp32_onnx, calib_data, method=method)
    assert set(other.ranges) == set(ranges.ranges)
    wider = [k for k, (lo, hi) in other.ranges.items()
             if lo < ranges.ranges[k][0] - 1e-6 or hi > ranges.ranges[k][1] + 1e-6]
    assert not wider
    clipped = [k for k, (lo, hi) in other.ranges.items() if hi < ranges.ranges[k][1] - 1e-6]
    assert clipped  # The histogram methods clip outliers somewhere.


def test_p90_min_max_is_the_90th_percentile_of_each_images_extremes(fp32_onnx, calib_data,
                                                                     ranges):
    """The rule that fixed TFLite INT8, for the Q/DQ ranges: per-image min/max, then
    their 10th / 90th percentile over the images (checked against one MinMax pass per
    image), inside the all-image extremes and narrower somewhere."""
    from onnxruntime.quantization import CalibrationMethod

    from edgedet.calibration.data import CalibrationData

    data = CalibrationData(calib_data.items[:5], source="five")
    p90 = collect_ranges(fp32_onnx, data, method="p90_min_max")
    assert p90.method == "p90_min_max"
    assert p90.tensors_data.calibration_method == CalibrationMethod.MinMax
    assert set(p90.ranges) == set(ranges.ranges)
    single = [collect_ranges(fp32_onnx, CalibrationData([item], source="one"),
                             method="minmax").ranges for item in data.items]
    for name, (low, high) in p90.ranges.items():
        lows, highs = [r[name][0] for r in single], [r[name][1] for r in single]
        assert low == pytest.approx(np.quantile(lows, 0.1), rel=1e-5, abs=1e-6), name
        assert high == pytest.approx(np.quantile(highs, 0.9), rel=1e-5, abs=1e-6), name
        assert min(lows) - 1e-6 <= low <= high <= max(highs) + 1e-6
    assert any(hi < max(r[k][1] for r in single) - 1e-6 for k, (lo, hi) in p90.ranges.items())


def test_p90_min_max_ranges_quantize_and_pass_parity(fp32_onnx, calib_data, detector,
                                                     eval_images, tmp_path):
    from edgedet.parity import run_parity
    from edgedet.runtimes.onnxrt import read_metadata

    p90 = collect_ranges(fp32_onnx, calib_data, method="p90_min_max")
    paths = []
    for flavour in ("u8s8", "s8s8"):
        paths.append(tmp_path / f"{flavour}.onnx")
        # U8S8 with 7-bit weights: what an AVX2-only CI machine builds, exact on any x86.
        quantize(fp32_onnx, p90, paths[-1], flavour=flavour, cpu="avx2")
        assert read_metadata(paths[-1]).extra["quantization"]["method"] == "p90_min_max"
    result = run_parity(detector, paths, eval_images)
    assert result, result.summary_text()


def test_unknown_method_and_flavour(fp32_onnx, calib_data, ranges):
    with pytest.raises(ValueError, match="Unknown calibration method 'minmaxx'.*'minmax'"):
        collect_ranges(fp32_onnx, calib_data, method="minmaxx")
    with pytest.raises(ValueError, match="Unknown INT8 flavour 'u8u8'"):
        quantize(fp32_onnx, ranges, flavour="u8u8")


def test_ranges_survive_the_calibration_json(ranges, fp32_onnx):
    from edgedet.calibration.qdq import Ranges

    back = Ranges.from_record(ranges.to_dict())
    assert back.ranges.keys() == ranges.ranges.keys()
    for name, (lo, hi) in ranges.ranges.items():
        assert back.ranges[name] == pytest.approx((lo, hi), rel=1e-6)
    a = quantize(fp32_onnx, ranges, flavour="s8s8")
    b = quantize(fp32_onnx, back, flavour="s8s8")
    scales_a = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer
                if i.name.endswith("_scale")}
    scales_b = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer
                if i.name.endswith("_scale")}
    assert scales_a.keys() == scales_b.keys()
    for name in scales_a:
        np.testing.assert_allclose(scales_a[name], scales_b[name], rtol=1e-6)


def test_all_black_calibration_images_warn_that_ranges_are_degenerate(fp32_onnx):
    from edgedet.calibration.data import (
        DegenerateDataWarning,
        FewImagesWarning,
        calibration_data,
    )

    black = [np.zeros((60, 80, 3), np.uint8) for _ in range(3)]
    with pytest.warns(FewImagesWarning):
        data = calibration_data(black, size=None)
    with pytest.warns(DegenerateDataWarning, match="3 of 3 calibration images are flat"):
        collect_ranges(fp32_onnx, data, method="minmax")


def _weight_levels(model):
    """`{weight initializer: max |int8 value|}` of a Q/DQ model's quantized weights:
    int8 initializers behind a DequantizeLinear, or float ones behind a Q -> DQ pair
    (quantized with the Q's per-channel scales, as TensorRT does at build time)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    levels = {}
    for node in model.graph.node:
        weight = inits.get(node.input[0])
        if weight is None or node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if node.op_type == "DequantizeLinear" and weight.dtype == np.int8:
            levels[node.input[0]] = int(np.abs(weight.astype(np.int32)).max())
        elif node.op_type == "QuantizeLinear" and weight.dtype == np.float32:
            scale = inits[node.input[1]].reshape(-1, *[1] * (weight.ndim - 1))
            levels[node.input[0]] = int(np.abs(np.round(weight / scale)).max())
    return levels


def test_u8s8_for_cpus_without_vnni_has_7_bit_weights(fp32_onnx, ranges):
    """avx2/avx512 get weights in [-64, 64] (no int16 saturation); vnni/arm use 8 bits."""
    from edgedet.runtimes.onnxrt import read_metadata

    for cpu in ("avx2", "avx512"):
        levels = _weight_levels(quantize(fp32_onnx, ranges, flavour="u8s8", cpu=cpu))
        assert levels and max(levels.values()) <= 64, cpu
    for cpu in ("vnni", "arm"):
        levels = _weight_levels(quantize(fp32_onnx, ranges, flavour="u8s8", cpu=cpu))
        assert max(levels.values()) == 127, cpu
    # S8S8 is for TensorRT: always 8 bits, whatever `cpu` says.
    assert max(_weight_levels(quantize(fp32_onnx, ranges, flavour="s8s8", cpu="avx2")
                              ).values()) == 127
    model = quantize(fp32_onnx, ranges, flavour="u8s8", cpu="avx2")
    props = {p.key: p.value for p in model.metadata_props}
    from edgedet.metadata import ArtifactMetadata

    quantization = ArtifactMetadata.from_json(props["edgedet"]).extra["quantization"]
    assert quantization["cpu_class"] == "avx2" and quantization["reduce_range"] is True
    assert read_metadata(fp32_onnx).precision == "fp32"


def test_unknown_cpu_class_is_refused(fp32_onnx, ranges):
    with pytest.raises(ValueError, match="Unknown INT8 CPU class 'avx3'.*'avx2'"):
        quantize(fp32_onnx, ranges, flavour="u8s8", cpu="avx3")


@pytest.mark.parametrize("cpu", ["avx2", "vnni"])
def test_u8s8_for_each_cpu_class_passes_parity_where_it_is_exact(
        detector, fp32_onnx, ranges, eval_images, tmp_path, cpu):
    """7-bit weights are exact on every x86 CPU; 8-bit ones only with VNNI."""
    from edgedet.cpu import host_cpu_class, reduce_range
    from edgedet.parity import run_parity

    host = host_cpu_class()
    if host == "arm" or (not reduce_range(cpu) and reduce_range(host)):
        pytest.skip(f"8-bit U8S8 weights saturate in ONNX Runtime's int8 kernels on this "
                    f"{host} CPU: this case needs a VNNI CPU")
    path = tmp_path / f"model_{cpu}.onnx"
    quantize(fp32_onnx, ranges, path, flavour="u8s8", cpu=cpu)
    result = run_parity(detector, [path], eval_images)
    assert result, result.summary_text()
    assert result.artifacts[0].summary["recall"] >= 0.9
