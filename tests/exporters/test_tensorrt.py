"""TensorRT exporter: build plans, ONNX preparation, trtexec lines, the no-TensorRT fallback,
and (with TensorRT and a GPU only) real engine builds."""

import json

import numpy as np
import onnx
import pytest

from edgedet.exporters import tensorrt as trt_export
from edgedet.exporters import tensorrt_device as trt_device
from edgedet.exporters import tensorrt_plan
from edgedet.exporters.tensorrt_plan import BuildOptions, build_plan, parse_shape, trtexec_command

CALIB_SPEC = "synthetic:shapes?n=8&seed=5&size=48-80"


@pytest.fixture(scope="module")
def detector():
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(0)
    return YOLOV8Detector.from_preset("tiny", class_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def onnx_model(detector, tmp_path_factory):
    from edgedet.export import export

    (result,) = export(detector, ["onnx"], tmp_path_factory.mktemp("onnx"), stem="model")
    return onnx.load(str(result.path))


# -- options and plans --------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "int4"}, "Invalid TensorRT precision 'int4'"),
    ({"int8_mode": "magic"}, "Invalid INT8 mode 'magic'"),
    ({"shapes": ((1, 32, 32), (1, 16, 16), (1, 64, 64))}, "min <= opt <= max"),
    ({"shapes": ((1, 32), (1, 64, 64), (1, 64, 64))}, "three \\(batch, height, width\\)"),
    ({"workspace_mib": 0}, "Invalid workspace"),
    ({"dla_core": 0}, "DLA runs fp16 or int8 only"),
    ({"precision": "fp16", "dla_core": -1}, "Invalid DLA core"),
])
def test_bad_build_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BuildOptions(**kwargs)


def test_parse_shape():
    assert parse_shape("720x1280") == (1, 720, 1280)
    assert parse_shape("4X32X48") == (4, 32, 48)
    with pytest.raises(ValueError, match="Expected 'HxW' or 'BxHxW'"):
        parse_shape("720")


@pytest.mark.parametrize("version, precision, mode, expected", [
    ("8.5.2", "fp32", "explicit", ("fp32", False, [], False, "float32")),
    ("8.5.2", "fp16", "explicit", ("fp32", False, ["FP16"], False, "float32")),
    ("8.5.2", "int8", "explicit", ("s8s8", False, ["INT8", "FP16"], False, "float32")),
    ("8.6.1", "int8", "implicit", ("fp32", False, ["INT8", "FP16"], True, "float32")),
    ("10.3.0", "fp16", "explicit", ("fp32", False, ["FP16"], False, "uint8")),
    ("10.3.0", "int8", "explicit", ("s8s8", True, [], False, "uint8")),
    ("10.3.0", "int8", "implicit", ("fp32", False, ["INT8", "FP16"], True, "uint8")),
    ("11.0.0", "fp32", "explicit", ("fp32", True, [], False, "uint8")),
    ("11.0.0", "fp16", "explicit", ("fp16", True, [], False, "uint8")),
    ("11.0.0", "int8", "explicit", ("s8s8", True, [], False, "uint8")),
])
def test_build_plan_per_tensorrt_version(version, precision, mode, expected):
    plan = build_plan(BuildOptions(precision=precision, int8_mode=mode), version)
    assert (plan["onnx"], plan["strongly_typed"], plan["flags"], plan["calibration_cache"],
            plan["input_dtype"]) == expected


def test_impossible_plans():
    with pytest.raises(ValueError, match="TensorRT 11.0.0 has no implicit INT8"):
        build_plan(BuildOptions(precision="int8", int8_mode="implicit"), "11.0.0")
    with pytest.raises(ValueError, match="needs 8.5 or later"):
        build_plan(BuildOptions(), "8.4.3")
    plan = build_plan(BuildOptions(precision="fp16", dla_core=1), "8.5.2")
    assert plan["flags"] == ["FP16", "GPU_FALLBACK"]


def test_trtexec_lines():
    options = BuildOptions(precision="int8", shapes=((1, 32, 32), (1, 480, 640), (2, 1080, 1920)),
                           workspace_mib=2048, timing_cache="timing.cache")
    assert trtexec_command("m_trt.onnx", "m.engine", options, "10.3.0") == (
        "trtexec --onnx=m_trt.onnx --saveEngine=m.engine --minShapes=images:1x32x32x3 "
        "--optShapes=images:1x480x640x3 --maxShapes=images:2x1080x1920x3 "
        "--memPoolSize=workspace:2048 --stronglyTyped --timingCacheFile=timing.cache")
    implicit = BuildOptions(precision="int8", int8_mode="implicit", dla_core=0)
    line = trtexec_command("m.onnx", "m.engine", implicit, "8.5.2", "m.calib.cache")
    assert line.endswith("--memPoolSize=workspace:4096 --fp16 --int8 --calib=m.calib.cache "
                         "--useDLACore=0 --allowGPUFallback")
    assert "--stronglyTyped" not in trtexec_command("m.onnx", "m.engine", BuildOptions(), "11.0.0")
    with pytest.raises(ValueError, match="needs a calibration cache"):
        trtexec_command("m.onnx", "m.engine", implicit, "10.3.0")


# -- ONNX preparation ---------------------------------------------------------


def test_tensorrt_8_gets_a_float_input_with_the_same_outputs(onnx_model):
    import onnxruntime as ort

    for_8 = tensorrt_plan.prepare_onnx(onnx_model, "8.6.1")
    for_10 = tensorrt_plan.prepare_onnx(onnx_model, "10.3.0")
    assert for_8.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert for_10.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert onnx_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    onnx.checker.check_model(for_8)
    image = np.random.default_rng(0).integers(0, 256, (1, 50, 70, 3), dtype=np.uint8)
    run = lambda m, x: ort.InferenceSession(  # noqa: E731
        m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    for a, b in zip(run(onnx_model, image), run(for_8, image.astype(np.float32))):
        np.testing.assert_array_equal(a, b)


def test_fp16_onnx_converts_the_body_only(onnx_model):
    from edgedet.calibration.body import find_body

    body = set(find_body(onnx_model).nodes)
    half = tensorrt_plan.fp16_onnx(onnx_model)
    inits = {i.name: i.data_type for i in half.graph.initializer}
    body_convs = [n for n in half.graph.node if n.op_type == "Conv" and n.name in body]
    assert body_convs and all(inits.get(n.input[1]) == onnx.TensorProto.FLOAT16
                              for n in body_convs)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    outputs = {o.name: o.type.tensor_type.elem_type for o in half.graph.output}
    assert outputs["boxes"] == outputs["confidence"] == onnx.TensorProto.FLOAT
    values = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}
    nms = [n for n in half.graph.node if n.op_type == "NonMaxSuppression"]
    assert nms and all(values.get(n.input[0], onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT
                       for n in nms)
    # No float32 -> float16 -> float32 round trip before the NMS (onnxruntime's converter
    # puts one between blocked nodes; fp16_onnx removes them), and the input is untouched.
    from edgedet.exporters.trt_lint import lint_onnx

    assert [f for f in lint_onnx(half, "11.0.0").errors if f.rule == "nms-fp32"] == []
    assert not any(n.op_type == "Cast" and n.output[0].endswith("_cast_to_fp16")
                   for n in onnx_model.graph.node)
    ready = tensorrt_plan.prepare_onnx(half, "11.0.0")
    assert lint_onnx(ready, "11.0.0", max_batch=4), lint_onnx(ready, "11.0.0").text()


# -- without TensorRT -----------------------------------------------------------


def test_missing_tensorrt_writes_the_files_and_says_how_to_continue(detector, tmp_path,
                                                                    monkeypatch):
    from edgedet.calibration import trt_cache
    from edgedet.calibration.qdq_graph import qdq_summary
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    options = {"trt_version": "8.6.1", "model_spec": "model.keras", "calib_data": CALIB_SPEC}
    with pytest.raises(ExportError) as caught, pytest.warns(UserWarning):
        export(detector, ["trt"], tmp_path, stem="model", precision="int8",
               calibration={"data": CALIB_SPEC, "size": 8, "method": "minmax"},
               target_options={"trt": options})
    message = str(caught.value)
    assert "cannot build a TensorRT engine here" in message
    assert "needs an NVIDIA GPU" in message
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["model_int8.calib.cache", "model_int8.calib.json",
                     "model_int8_fp32_trt.onnx", "model_int8_parity", "model_int8_trt.onnx"]
    assert not (tmp_path / "model_int8.engine").exists()
    explicit = trtexec_command("model_int8_trt.onnx", "model_int8.engine",
                               BuildOptions(precision="int8"), "8.6.1")
    implicit = trtexec_command("model_int8_fp32_trt.onnx", "model_int8.engine",
                               BuildOptions(precision="int8", int8_mode="implicit"), "8.6.1",
                               "model_int8.calib.cache")
    assert f"\n  {explicit}\n" in message and f"\n  {implicit}\n" in message
    assert ("edgedet export --model model.keras --target trt --precision int8 --out "
            f"{tmp_path} --calib-data '{CALIB_SPEC}'") in message
    assert "Written: " in message and "model_int8_trt.onnx" in message.split("Written: ")[1]
    # The Q/DQ model is TensorRT's kind: symmetric, zero points 0, float input for 8.x.
    qdq = onnx.load(str(tmp_path / "model_int8_trt.onnx"))
    assert qdq.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert qdq_summary(qdq)["nonzero_zero_points"] == []
    header, scales = trt_cache.parse_cache((tmp_path / "model_int8.calib.cache").read_text())
    assert header["version_code"] == 8601 and len(scales) > 50
    record = json.loads((tmp_path / "model_int8.calib.json").read_text())
    assert record["tensorrt_cache"]["trt_version"] == "8.6.1"
    assert set(scales) <= set(record["ranges"])


def test_missing_tensorrt_fp16(detector, tmp_path, monkeypatch):
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    with pytest.raises(ExportError, match="--fp16"):
        export(detector, ["tensorrt"], tmp_path, stem="m", precision="fp16",
               target_options={"trt": {"trt_version": "10.3.0"}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_fp16_parity", "m_fp16_trt.onnx"]
    # The TensorRT-ready ONNX (per-image NMS) agrees with the saved float32 reference, in
    # ONNX Runtime, through the parity bundle a device without TensorFlow uses.
    from edgedet.parity import run_parity
    from edgedet.runtimes.bundle import BundleRuntime

    bundle = tmp_path / "m_fp16_parity"
    assert len(list((bundle / "images").glob("*.png"))) == 12
    result = run_parity(BundleRuntime(bundle), [tmp_path / "m_fp16_trt.onnx"], bundle / "images")
    assert result, result.summary_text()
    assert sum(len(d) for d in result.reference_runs[0].detections) > 0


def test_an_unsafe_tensorrt_onnx_is_refused(detector, tmp_path, monkeypatch):
    """Without the TensorRT preparation (UINT8 input on 8.x), the lint stops the export."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(trt_export, "prepare_onnx", lambda model, version: model)
    with pytest.raises(ExportError, match=r"(?s)stage 'lint'.*\[uint8\].*has no UINT8"):
        export(detector, ["trt"], tmp_path, stem="m",
               target_options={"trt": {"trt_version": "8.6.1"}})
    assert not (tmp_path / "m_trt.onnx").exists()


def test_a_given_calibration_cache_is_checked_and_moved_to_this_version(detector, tmp_path):
    """`--calib-cache`: a cache made for other weights is refused, a matching one is reused
    with this TensorRT's header."""
    import dataclasses

    from edgedet.calibration.methods import DEFAULT_METHOD
    from edgedet.calibration.record import key_record
    from edgedet.calibration.session import ExportCalibration
    from edgedet.calibration.trt_cache import StaleCacheError, format_cache
    from edgedet.metadata import artifact_metadata

    metadata = artifact_metadata(detector, detector.default_inference_config(), "trt")
    cache = tmp_path / "m.calib.cache"
    cache.write_text(format_cache({"x:0": 0.25}, "8.6.1"))
    record_path = tmp_path / "m.calib.json"
    other = dataclasses.replace(metadata, source_sha256="0" * 64)
    record_path.write_text(json.dumps({"schema_version": 1,
                                       **key_record(other, DEFAULT_METHOD, "d" * 64)}))
    options = BuildOptions(precision="int8", int8_mode="implicit", calib_cache=cache)
    with pytest.raises(StaleCacheError, match="another model weights"):
        trt_export._calibration_cache(None, metadata, ExportCalibration(), options, "10.3.0")
    record_path.write_text(json.dumps({"schema_version": 1,
                                       **key_record(metadata, DEFAULT_METHOD, "d" * 64)}))
    text = trt_export._calibration_cache(None, metadata, ExportCalibration(), options, "10.3.0")
    assert text == "TRT-100300-EntropyCalibration2\nx:0: 3e800000\n"
    with pytest.raises(StaleCacheError, match="calibration method"):
        trt_export._calibration_cache(None, metadata, ExportCalibration(method="minmax"),
                                      options, "10.3.0")


# -- with TensorRT and a GPU --------------------------------------------------


@pytest.fixture(scope="module")
def gpu():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install edgedet[gpu])")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed")
    from edgedet.cuda import cuda_device

    device = cuda_device()
    if device is None:
        pytest.skip("no NVIDIA GPU (CUDA driver) on this machine")
    return device


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision, mode", [("fp32", "explicit"), ("fp16", "explicit"),
                                             ("int8", "explicit"), ("int8", "implicit")])
def test_engine_builds_runs_and_agrees(gpu, detector, tmp_path, precision, mode):
    import tensorrt as trt

    from edgedet.export import export
    from edgedet.parity import run_parity

    if mode == "implicit" and int(trt.__version__.split(".")[0]) >= 11:
        pytest.skip("TensorRT 11 has no implicit INT8")
    (result,) = export(detector, ["trt"], tmp_path, stem="m", precision=precision,
                       calibration={"data": CALIB_SPEC, "size": 8},
                       target_options={"trt": {"int8_mode": mode,
                                               "timing_cache": str(tmp_path / "t.cache")}})
    engine = result.path
    assert engine.read_bytes()[:4] != b"\0\0\0\0" and (tmp_path / "t.cache").is_file()
    sidecar = json.loads(tensorrt_plan.sidecar_path(engine).read_text())
    assert sidecar["precision"] == precision
    assert sidecar["extra"]["tensorrt"]["version"] == trt.__version__
    assert sidecar["extra"]["tensorrt"]["compute_capability"] == gpu["compute_capability"]
    parity = run_parity(detector, [engine], "synthetic:shapes?n=6&seed=9&size=48-96")
    assert parity, parity.summary_text()


@pytest.mark.tensorrt
def test_engine_from_another_tensorrt_version_is_refused(gpu, detector, tmp_path):
    from edgedet.export import export
    from edgedet.runtimes.trt import TensorRTRuntime, TensorRTVersionError

    (result,) = export(detector, ["trt"], tmp_path, stem="m")
    sidecar = tensorrt_plan.sidecar_path(result.path)
    data = json.loads(sidecar.read_text())
    data["extra"]["tensorrt"]["version"] = "8.5.2.2"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(TensorRTVersionError, match="built with TensorRT 8.5.2.2"):
        with TensorRTRuntime(result.path):
            pass


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_device_flow_engine_from_the_tensorrt_ready_onnx(gpu, detector, tmp_path, monkeypatch,
                                                         precision):
    """The workstation path (no TensorRT: ONNX + parity bundle), then `edgedet engine` and
    `parity --reference BUNDLE` on this GPU, as tools/device_check.sh runs them."""
    import tensorrt as trt

    from edgedet.export import export
    from edgedet.exporters.base import ExportError
    from edgedet.parity import run_parity
    from edgedet.runtimes.bundle import BundleRuntime

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    with pytest.raises(ExportError, match="edgedet engine"):
        export(detector, ["trt"], tmp_path, stem="m", precision=precision,
               calibration={"data": CALIB_SPEC, "size": 8},
               target_options={"trt": {"trt_version": trt.__version__}})
    named = "m" if precision == "fp32" else f"m_{precision}"
    engine = trt_device.build_from_onnx(tmp_path / f"{named}_trt.onnx",
                                        tmp_path / f"{named}.engine", precision=precision)
    sidecar = json.loads(tensorrt_plan.sidecar_path(engine).read_text())
    assert sidecar["precision"] == precision
    bundle = tmp_path / f"{named}_parity"
    parity = run_parity(BundleRuntime(bundle), [engine], bundle / "images")
    assert parity, parity.summary_text()


def test_the_bundle_holds_the_users_images_when_the_export_has_calibration_data():
    """12 images of --calib-data (sampled with the next seed), else the synthetic default."""
    import types

    from edgedet.exporters.parity_bundle import BUNDLE_IMAGES, bundle_images

    assert bundle_images(None) == BUNDLE_IMAGES
    assert bundle_images(types.SimpleNamespace(source=None, seed=0)) == BUNDLE_IMAGES
    users = [np.full((40 + i, 50, 3), i, np.uint8) for i in range(30)]
    chosen = bundle_images(types.SimpleNamespace(source=users, seed=0))
    assert len(chosen) == 12
    assert all(any(np.array_equal(c, u) for u in users) for c in chosen)
    few = bundle_images(types.SimpleNamespace(source=users[:5], seed=0))
    assert len(few) == 5
