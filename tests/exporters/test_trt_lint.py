"""TensorRT lint and per-image NMS, on CPU: the shipped model's ONNX as exported for every
target flattens the batch into one NMS (unsafe at batch 8); the TensorRT-ready ONNX runs it
per image, gives the same detections in ONNX Runtime and passes; hand-made graphs break each
other rule."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgedet.exporters.tensorrt_plan import prepare_onnx
from edgedet.exporters.trt_lint import RULES, lint_onnx, rules_for
from edgedet.exporters.trt_nms import is_per_image, per_image_nms

VERSIONS = ("8.5.2", "8.6.1", "10.3.0", "11.0.0")


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory):
    """The built-in model `shapes` (pico, 320 px: 2100 anchors, 1000 NMS candidates)."""
    from edgedet.export import export
    from edgedet.models.weights import load_trained

    (result,) = export(load_trained("shapes"), ["onnx"], tmp_path_factory.mktemp("shipped"),
                       stem="shapes")
    return onnx.load(str(result.path))


def _run(model, images):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed_type = onnx.helper.tensor_dtype_to_np_dtype(
        model.graph.input[0].type.tensor_type.elem_type)
    return session.run(None, {"images": images.astype(feed_type)})


def _rules(report):
    return {(f.rule, f.severity) for f in report.findings}


def test_rule_table_covers_each_version():
    assert [rules_for(v).name for v in VERSIONS] == ["8.5", "8.6", "10.x", "11"]
    assert set(RULES) == {"8.5", "8.6", "10", "11"}
    assert all("operators.md" in rules.source or "onnx-tensorrt" in rules.source
               for rules in RULES.values())
    with pytest.raises(ValueError, match="needs 8.5 or later"):
        rules_for("8.4.3")


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_flattened_nms_is_flagged_and_the_tensorrt_onnx_passes(shipped_onnx, version):
    flat = lint_onnx(shipped_onnx, version, max_batch=8)
    assert not flat
    cap = [f for f in flat.errors if f.rule == "nms-box-cap"]
    assert cap and "8000 boxes per batch item at batch 8" in cap[0].message
    assert "batch-flattened" in cap[0].message
    ready = prepare_onnx(shipped_onnx, version)
    assert is_per_image(ready) and not is_per_image(shipped_onnx)
    report = lint_onnx(ready, version, max_batch=8)
    assert report, report.text()
    assert report.findings == [], report.text()


def test_per_image_nms_gives_the_same_detections(shipped_onnx):
    from edgedet.data.synthetic import from_spec

    dataset = from_spec("synthetic:shapes?n=4&seed=3&size=200x260", split="lint")
    batch = np.stack([dataset.get(i)["image"] for i in range(4)])
    ready = per_image_nms(shipped_onnx)
    nms = [n for n in ready.graph.node if n.op_type == "NonMaxSuppression"]
    assert len(nms) == 1 and nms[0].input[0].startswith("nms_candidate_boxes")
    for images in (batch[:1], batch):
        expected, got = _run(shipped_onnx, images), _run(ready, images)
        assert int(expected[3].sum()) > 0  # The shapes model detects on shapes.
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)


def _graph_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_uint8_resize_is_flagged():
    images = helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    scales = numpy_helper.from_array(np.array([1, 2, 2, 1], np.float32), "scales")
    model = _graph_model(
        [helper.make_node("Resize", ["images", "", "scales"], ["big"], name="resize_u8"),
         helper.make_node("Cast", ["big"], ["out"], to=TensorProto.FLOAT)],
        [images], [out], [scales])
    for version in ("10.3.0", "11.0.0"):
        report = lint_onnx(model, version)
        assert ("uint8", "error") in _rules(report)
        assert any("feeds Resize 'resize_u8'" in f.message for f in report.errors)
        assert "UINT8 tensor 'big' inside the graph" in report.text()
    assert "has no UINT8" in lint_onnx(model, "8.6.1").text()


def test_topk_qdq_int64_and_opset_rules():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8000])
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    values = helper.make_tensor_value_info("values", TensorProto.FLOAT, None)
    big_k = numpy_helper.from_array(np.array([5000], np.int64), "big_k")
    topk = _graph_model([helper.make_node("TopK", ["x", "big_k"], ["values", "idx"])],
                        [x], [values], [big_k])
    assert "K = 5000" in lint_onnx(topk, "10.3.0").text()
    computed = _graph_model([helper.make_node("TopK", ["x", "k"], ["values", "idx"])],
                            [x, k], [values])
    assert "computed K" in lint_onnx(computed, "8.6.1").text()

    scale = numpy_helper.from_array(np.array(0.1, np.float32), "scale")
    zero_u8 = numpy_helper.from_array(np.array(128, np.uint8), "zero_u8")
    zero_s8 = numpy_helper.from_array(np.array(0, np.int8), "zero_s8")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    qdq = _graph_model(
        [helper.make_node("QuantizeLinear", ["x", "scale", "zero_u8"], ["q"], name="q_u8"),
         helper.make_node("DequantizeLinear", ["q", "scale", "zero_u8"], ["y"])],
        [x], [y], [scale, zero_u8])
    assert "nonzero zero point" in lint_onnx(qdq, "10.3.0").text()
    symmetric = _graph_model(
        [helper.make_node("QuantizeLinear", ["x", "scale", "zero_s8"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "scale", "zero_s8"], ["y"])],
        [x], [y], [scale, zero_s8])
    assert lint_onnx(symmetric, "10.3.0").findings == []

    huge = numpy_helper.from_array(np.array([1, 2**40], np.int64), "huge")
    add = _graph_model([helper.make_node("Add", ["k", "huge"], ["z"])], [k],
                       [helper.make_tensor_value_info("z", TensorProto.INT64, None)], [huge])
    assert ("int64", "error") in _rules(lint_onnx(add, "8.6.1"))
    assert ("int64", "error") not in _rules(lint_onnx(add, "10.3.0"))
    assert ("opset", "error") in _rules(lint_onnx(_graph_model([], [x], [x], opset=18), "8.5.2"))
    assert ("opset", "error") not in _rules(lint_onnx(_graph_model([], [x], [x], opset=18),
                                                      "10.3.0"))


def test_mod_and_topk_input_type_rules(monkeypatch):
    import dataclasses

    from edgedet.exporters import trt_lint

    index = helper.make_tensor_value_info("index", TensorProto.INT32, [1, 300])
    classes = numpy_helper.from_array(np.array(80, np.int32), "classes")
    out = helper.make_tensor_value_info("cls", TensorProto.INT32, None)
    mod = _graph_model([helper.make_node("Mod", ["index", "classes"], ["cls"], name="cls_mod")],
                       [index], [out], [classes])
    # Every version in the table parses Mod (8.5+); one without it refuses, naming the fix.
    for version in VERSIONS:
        assert ("mod", "error") not in _rules(lint_onnx(mod, version))
    no_mod = dataclasses.replace(RULES["8.5"], name="8.4", mod=False)
    monkeypatch.setattr(trt_lint, "rules_for", lambda version: no_mod)
    report = lint_onnx(mod, "8.4.3")
    assert ("mod", "error") in _rules(report)
    assert "'cls_mod'" in report.text() and "a - (a // b) * b" in report.text()
    monkeypatch.undo()

    k = numpy_helper.from_array(np.array([10], np.int64), "k")
    values = helper.make_tensor_value_info("values", TensorProto.INT32, None)
    int_topk = _graph_model([helper.make_node("TopK", ["index", "k"], ["values", "idx"],
                                              name="topk_int")], [index], [values], [k])
    assert "sorts a INT32 tensor" in lint_onnx(int_topk, "8.6.1").text()
    assert ("topk", "error") not in _rules(lint_onnx(int_topk, "10.3.0"))


def _conv_qdq_model(bias_int32=False, weight_axis=0, activation_per_axis=False,
                    q_without_zero=False):
    """x -> Q/DQ -> Conv(W behind Q/DQ, bias) -> y: TensorRT's recipe, or one rule broken."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 4, 1, 1)).astype(np.float32), "w"),
        numpy_helper.from_array(np.full(3, 0.02, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(3, np.int8), "w_zero"),
        numpy_helper.from_array(np.full(4 if activation_per_axis else (), 0.05, np.float32),
                                "x_scale"),
        numpy_helper.from_array(np.zeros(4 if activation_per_axis else (), np.int8), "x_zero"),
        numpy_helper.from_array(np.ones(3, np.float32), "b"),
    ]
    x_zero = [] if q_without_zero else ["x_zero"]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", *x_zero], ["xq"], name="xq"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", *x_zero], ["xd"], name="xd"),
        helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zero"], ["wq"], name="wq",
                         axis=weight_axis),
        helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zero"], ["wd"], name="wd",
                         axis=weight_axis),
    ]
    bias = "b"
    if bias_int32:
        inits += [numpy_helper.from_array(np.ones(3, np.int32), "b_q"),
                  numpy_helper.from_array(np.full(3, 0.001, np.float32), "b_scale"),
                  numpy_helper.from_array(np.zeros(3, np.int32), "b_zero")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero"], ["bd"],
                                      name="bias_dq", axis=0))
        bias = "bd"
    nodes.append(helper.make_node("Conv", ["xd", "wd", bias], ["y"], name="conv"))
    return _graph_model(nodes, [x], [y], inits)


@pytest.mark.parametrize("broken, message", [
    ({}, None),
    ({"bias_int32": True}, "quantizes to INT32"),
    ({"weight_axis": 1}, "along axis 1; TensorRT takes the output-channel axis (0)"),
    ({"activation_per_axis": True}, "quantizes activations per tensor"),
    ({"q_without_zero": True}, "quantizes to UINT8"),
])
def test_qdq_rules_follow_tensorrts_explicit_quantization(broken, message):
    """ONNX Runtime's defaults (INT32 biases) and other slips are refused, naming the node;
    the recipe edgedet writes (float bias, per-tensor activations, axis-0 weights) passes."""
    for version in VERSIONS:
        report = lint_onnx(_conv_qdq_model(**broken), version)
        if message is None:
            assert report, report.text()
        else:
            assert not report and message in report.text(), (version, report.text())
            assert "qdq" in {f.rule for f in report.errors}
