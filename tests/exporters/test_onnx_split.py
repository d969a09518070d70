"""The ONNX layout passes of `onnx_export.convert`: no NCHW<->NHWC round trips (exact)."""

import numpy as np

from edgedet.exporters.onnx_export import split_transposes_removed


def _model(extra_use=False):
    """x NCHW -> Transpose(NHWC) -> Split(axis 3) -> Transpose(NCHW) each -> Add -> y.

    With `extra_use`, the first half (NHWC) is also an output: nothing may change.
    """
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Split", ["x_nhwc", "sizes"], ["a", "b"], axis=3, name="split"),
        helper.make_node("Transpose", ["a"], ["a_nchw"], perm=[0, 3, 1, 2], name="a_back"),
        helper.make_node("Transpose", ["b"], ["b_nchw"], perm=[0, 3, 1, 2], name="b_back"),
        helper.make_node("Sub", ["a_nchw", "b_nchw"], ["y"], name="sub"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 5])]
    if extra_use:
        outputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 5, 2]))
    graph = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 5])],
        outputs, initializer=[helper.make_tensor("sizes", TensorProto.INT64, [2], [2, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_the_round_trip_goes_and_the_result_is_the_same():
    import onnx

    x = np.random.default_rng(0).random((1, 4, 3, 5), dtype=np.float32)
    model = _model()
    before = _run(model, x)
    assert split_transposes_removed(model) == 3
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Split", "Sub"]
    (axis,) = [a.i for a in model.graph.node[0].attribute if a.name == "axis"]
    assert axis == 1
    np.testing.assert_array_equal(_run(model, x)[0], before[0])


def test_a_half_used_elsewhere_keeps_the_graph():
    model = _model(extra_use=True)
    assert split_transposes_removed(model) == 0
    assert [n.op_type for n in model.graph.node].count("Transpose") == 3


def test_the_input_layout_round_trip_goes_and_the_result_is_the_same():
    """Pad-like NCHW image -> NHWC -> static Reshape -> /255 -> NCHW -> Conv, as tf2onnx
    writes it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgedet.exporters.onnx_export import input_round_trip_removed

    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Reshape", ["x_nhwc", "shape"], ["static"], name="reshape"),
        helper.make_node("Mul", ["static", "scale"], ["scaled"], name="rescale"),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "w"], ["y"], name="stem"),
    ]
    graph = helper.make_graph(
        nodes, "input", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4, 6, 6])],
        initializer=[numpy_helper.from_array(np.array([-1, 8, 8, 3], np.int64), "shape"),
                     numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
                     numpy_helper.from_array(rng.random((4, 3, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.random((2, 3, 8, 8), dtype=np.float32) * 255
    before = _run(model, x)[0]
    assert input_round_trip_removed(model) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Reshape", "Mul", "Conv"]
    shape = [numpy_helper.to_array(i).tolist() for i in model.graph.initializer
             if i.name == model.graph.node[0].input[1]]
    assert shape == [[-1, 3, 8, 8]]
    np.testing.assert_array_equal(_run(model, x)[0], before)
    assert input_round_trip_removed(model) == 0


def _repeat_upsample(channels=4, height=3, width=5):
    """NCHW x -> Keras UpSampling2D(2) as tf2onnx writes it (rows then columns, NHWC) -> NCHW."""
    from onnx import TensorProto, helper, numpy_helper

    c, h, w = channels, height, width
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axis3"], ["u1"], name="u1"),
        helper.make_node("Tile", ["u1", "twice"], ["t1"], name="t1"),
        helper.make_node("Transpose", ["t1"], ["p1"], perm=[0, 2, 3, 4, 1], name="p1"),
        helper.make_node("Reshape", ["p1", "rows"], ["r1"], name="r1"),
        helper.make_node("Unsqueeze", ["r1", "axis3"], ["u2"], name="u2"),
        helper.make_node("Tile", ["u2", "twice"], ["t2"], name="t2"),
        helper.make_node("Reshape", ["t2", "cols"], ["r2"], name="r2"),
        helper.make_node("Transpose", ["r2"], ["y"], perm=[0, 3, 1, 2], name="to_nchw"),
    ]
    graph = helper.make_graph(
        nodes, "upsample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", c, 2 * h, 2 * w])],
        initializer=[numpy_helper.from_array(np.array(v, np.int64), name) for name, v in (
            ("axis3", [3]), ("twice", [1, 1, 1, 2, 1]), ("rows", [-1, 2 * h, w, c]),
            ("cols", [-1, 2 * h, 2 * w, c]))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_the_repeat_upsample_becomes_one_nearest_resize_with_the_same_result():
    import onnx

    from edgedet.exporters.onnx_export import repeat_upsamples_resized

    model = _repeat_upsample()
    x = np.random.default_rng(2).random((2, 4, 3, 5), dtype=np.float32)
    before = _run(model, x)[0]
    np.testing.assert_array_equal(before, x.repeat(2, axis=2).repeat(2, axis=3))
    assert repeat_upsamples_resized(model) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Resize"]
    assert sorted(i.name for i in model.graph.initializer) == ["u1__upsample_scales"]
    np.testing.assert_array_equal(_run(model, x)[0], before)
    assert repeat_upsamples_resized(model) == 0


def test_a_chain_with_other_constants_is_left_alone():
    from onnx import numpy_helper

    model = _repeat_upsample()
    (twice,) = [i for i in model.graph.initializer if i.name == "twice"]
    twice.CopyFrom(numpy_helper.from_array(np.array([1, 1, 1, 3, 1], np.int64), "twice"))
    from edgedet.exporters.onnx_export import repeat_upsamples_resized

    assert repeat_upsamples_resized(model) == 0
    assert len(model.graph.node) == 8
