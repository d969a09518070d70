"""`edgedet.export.export` and what each exporter writes.

One export of every buildable target (module fixture) is inspected: paths
and sizes, the metadata inside, the ONNX graph (I/O, opset, NMS op, no
cancelling transposes), the TFLite flatbuffer (builtin ops, signature,
resizable input) and the SavedModel signature. Failure paths use a tiny
hand-written module with an op no converter supports.
"""

import dataclasses
import json

import numpy as np
import pytest

from edgedet.exporters import onnx_export, tflite
from edgedet.exporters.base import ExportError, input_signature
from edgedet.files import OutputExistsError
from edgedet.metadata import artifact_metadata

CONTRACT = ["boxes", "classes", "confidence", "num_detections"]


@pytest.fixture(scope="module")
def model():
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(3)
    model = YOLOV8Detector.from_preset("tiny", class_names=["person", "car"])
    # A fixed name: Keras numbers default model names per process, and
    # artifacts are named after the model.
    return YOLOV8Detector.from_config({**model.get_config(), "name": "yolov8_detector"})


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    messages = []
    results = export_all(model, out, messages)
    return out, results, messages


def export_all(model, out, messages):
    from edgedet.export import export

    return export(model, "all", out, progress=messages.append)


def test_results(exported, model):
    from edgedet.exporters.registry import get_target

    out, results, messages = exported
    # `all` is what this machine can build: TensorRT too on a machine with TensorRT and a GPU.
    trt_reason = get_target("trt").unavailable_reason()
    cpu_targets = ["savedmodel", "onnx", "tflite"]
    if get_target("openvino").unavailable_reason() is None:  # The `openvino` extra.
        cpu_targets.append("openvino")
    assert [r.target for r in results] == cpu_targets + ([] if trt_reason else ["trt"])
    assert [r.path.name for r in results[:3]] == [
        "yolov8_detector_saved_model", "yolov8_detector.onnx", "yolov8_detector.tflite",
    ]
    for result in results:
        assert result.path.parent == out and result.path.exists()
        assert result.seconds > 0
    onnx_result = results[1]
    assert onnx_result.size_bytes == onnx_result.path.stat().st_size > 100_000
    folder_size = sum(p.stat().st_size for p in results[0].path.rglob("*") if p.is_file())
    assert results[0].size_bytes == folder_size
    if trt_reason:
        assert f"trt: skipped, it {trt_reason}" in messages
    else:
        assert results[-1].path.name == "yolov8_detector.engine"
        assert (out / "yolov8_detector.engine.json").is_file()
        assert not any(m.startswith("trt: skipped") for m in messages)
    written = ("savedmodel: wrote", "onnx: wrote", "tflite: wrote", "openvino: wrote",
               "trt: wrote")
    assert sum(m.startswith(written) for m in messages) == len(results)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left"


def test_metadata_inside_every_artifact(exported, model):
    from edgedet.runtimes.registry import read_metadata

    _, results, _ = exported
    config = model.default_inference_config()
    for result in results:
        metadata = read_metadata(result.path)
        expected = artifact_metadata(model, config, target=result.target)
        if result.target == "trt":  # The engine's sidecar adds what it was built with.
            assert metadata.extra["tensorrt"]["precision"] == "fp32"
            metadata = dataclasses.replace(metadata, extra={})
        assert metadata == expected
        assert metadata.class_names == ("person", "car")


def test_saved_model_signature_and_plain_json_metadata(exported, model):
    import tensorflow as tf

    path = exported[1][0].path
    data = json.loads((path / "assets" / "edgedet.json").read_text())
    assert data["target"] == "savedmodel" and data["class_names"] == ["person", "car"]
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert (spec.name, spec.dtype, spec.shape.as_list()) == (
        "images", tf.uint8, [None, None, None, 3])
    assert sorted(signature.structured_outputs) == CONTRACT


def test_onnx_graph(exported):
    import onnx

    model = onnx.load(str(exported[1][1].path))
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}[""]
    assert opset >= 17
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert (graph_input.name, dims) == ("images", ["batch", "height", "width", 3])
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    outputs = {
        o.name: (o.type.tensor_type.elem_type, [d.dim_param or d.dim_value
                                                for d in o.type.tensor_type.shape.dim])
        for o in model.graph.output
    }
    float32, int32 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT32
    assert outputs == {
        "boxes": (float32, ["batch", 100, 4]),
        "confidence": (float32, ["batch", 100]),
        "classes": (int32, ["batch", 100]),
        "num_detections": (int32, ["batch"]),
    }
    assert "NonMaxSuppression" in onnx_export.op_types(model)
    assert onnx_export.unsupported_ops(model) == []
    assert onnx_export.cancelling_transposes(model) == []
    assert "Tile" not in onnx_export.op_types(model)  # UpSampling2D is one nearest Resize.
    producers = {out: node for node in model.graph.node for out in node.output}
    splits = [n for n in model.graph.node if n.op_type == "Split"]
    assert splits and not [n.name for n in splits  # C2f splits: no layout round trip
                           if getattr(producers.get(n.input[0]), "op_type", "") == "Transpose"]


def test_openvino_ir(exported):
    ov = pytest.importorskip("openvino", reason="OpenVINO is not installed (the openvino extra)")
    (result,) = [r for r in exported[1] if r.target == "openvino"]
    assert result.path.name == "yolov8_detector.xml"
    assert result.path.with_suffix(".bin").stat().st_size > 100_000  # FP32 weights beside it.
    model = ov.Core().read_model(str(result.path))
    (image,) = model.inputs
    assert (image.get_any_name(), image.get_element_type(), str(image.get_partial_shape())) == (
        "images", ov.Type.u8, "[?,?,?,3]")
    outputs = {o.get_any_name(): (o.get_element_type().get_type_name(),
                                  str(o.get_partial_shape())) for o in model.outputs}
    assert outputs == {"boxes": ("f32", "[?,100,4]"), "confidence": ("f32", "[?,100]"),
                       "classes": ("i32", "[?,100]"), "num_detections": ("i32", "[?]")}
    assert model.get_rt_info(["model_info", "labels"]).astype(str) == "person car"
    metadata = json.loads(model.get_rt_info(["edgedet", "metadata"]).astype(str))
    assert metadata["target"] == "openvino" and metadata["class_names"] == ["person", "car"]


def test_cancelling_transposes_are_found():
    import onnx
    from onnx import helper

    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Transpose", ["t1"], ["y"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Transpose", ["y"], ["z"], perm=[0, 1, 3, 2], name="swap_hw"),
    ]
    value = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 3, 4])
    out = helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph(nodes, "g", [value], [out]))
    assert onnx_export.cancelling_transposes(model) == [("to_nchw", "to_nhwc")]


def test_tflite_flatbuffer(exported):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    path = exported[1][2].path
    content = path.read_bytes()
    tflite.check(content)  # builtin ops only, serving_default(images)
    model = schema.Model.GetRootAs(content, 0)
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = {builtin_names[max(model.OperatorCodes(i).BuiltinCode(),
                             model.OperatorCodes(i).DeprecatedBuiltinCode())]
           for i in range(model.OperatorCodesLength())}
    assert "NON_MAX_SUPPRESSION_V4" in ops and "CUSTOM" not in ops
    assert not {"VAR_HANDLE", "READ_VARIABLE"} & ops, "weights must be frozen"
    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["images"], "outputs": CONTRACT}
    }
    runner = interpreter.get_signature_runner("serving_default")
    (details,) = runner.get_input_details().values()
    assert details["shape_signature"].tolist() == [-1, -1, -1, 3]
    outputs = runner(images=np.zeros((2, 17, 23, 3), np.uint8))  # resized on the fly
    assert outputs["boxes"].shape == (2, 100, 4)


def test_add_metadata_replaces_an_entry(exported):
    from edgedet.runtimes.litert import read_flatbuffer_metadata

    content = exported[1][2].path.read_bytes()
    content = tflite.add_metadata(content, "edgedet", b'{"x": 1}')
    entries = read_flatbuffer_metadata(content)
    assert entries["edgedet"] == b'{"x": 1}'
    assert "CONVERSION_METADATA" in entries  # the converter's own entry is kept


def test_existing_output_without_force(exported, model):
    out, results, _ = exported
    before = {r.path: r.path.stat().st_mtime_ns for r in results}
    with pytest.raises(OutputExistsError,
                       match=r"yolov8_detector_saved_model' already exists.*--force"):
        export_all(model, out, [])
    assert {r.path: r.path.stat().st_mtime_ns for r in results} == before


def test_unknown_target_fails_before_any_work(model, tmp_path):
    from edgedet.export import export

    out = tmp_path / "never"
    with pytest.raises(ValueError, match="Unknown export target 'onxx'.*Did you mean 'onnx'"):
        export(model, ["tflite", "onxx"], out)
    assert not out.exists()


def test_force_replaces_and_failures_keep_going(exported, model, monkeypatch):
    from edgedet.export import export

    out, results, _ = exported
    onnx_path = results[1].path
    before = onnx_path.stat().st_mtime_ns

    def broken(*args, **kwargs):
        raise ExportError("tflite", "convert", "simulated", ops=["Foo"])

    monkeypatch.setattr(tflite, "export", broken)
    with pytest.raises(ExportError, match=r"(?s)tflite export failed at stage 'convert' \(op: Foo\)"
                       r".*Written: .*yolov8_detector\.onnx"):
        export(model, ["onnx", "litert"], out, force=True)
    assert onnx_path.stat().st_mtime_ns != before
    assert results[2].path.exists()  # the failed target left the old file alone
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# -- exporter failures are atomic and name the stage and op ----------------------


@pytest.fixture(scope="module")
def unconvertible():
    """A contract-shaped module using `Igamma`, which neither converter supports."""
    import tensorflow as tf

    class Unconvertible(tf.Module):
        @tf.function(input_signature=input_signature())
        def serve(self, images):
            x = tf.cast(images, tf.float32)
            b = tf.shape(images)[0]
            v = tf.reduce_mean(tf.math.igamma(x + 1.0, x + 2.0))
            return {
                "boxes": tf.zeros([b, 2, 4]) + v,
                "confidence": tf.zeros([b, 2]),
                "classes": tf.zeros([b, 2], tf.int32),
                "num_detections": tf.zeros([b], tf.int32),
            }

    return Unconvertible()


@pytest.mark.parametrize("exporter, name", [(onnx_export, "m.onnx"), (tflite, "m.tflite")])
def test_conversion_error_names_the_op_and_leaves_nothing(
    unconvertible, model, tmp_path, exporter, name
):
    metadata = artifact_metadata(model, model.default_inference_config(), target="x")
    with pytest.raises(ExportError, match=r"failed at stage 'convert' \(op: Igamma\)") as info:
        exporter.export(unconvertible, metadata, tmp_path / name)
    assert info.value.ops == ("Igamma",)
    assert list(tmp_path.iterdir()) == []


def test_contract_violation_is_caught_before_conversion(model, tmp_path):
    import tensorflow as tf

    from edgedet.exporters import saved_model

    class NoCount(tf.Module):
        @tf.function(input_signature=input_signature())
        def serve(self, images):
            b = tf.shape(images)[0]
            return {"boxes": tf.zeros([b, 2, 4]), "confidence": tf.zeros([b, 2]),
                    "classes": tf.zeros([b, 2])}

    metadata = artifact_metadata(model, model.default_inference_config(), target="x")
    with pytest.raises(ExportError, match="stage 'trace'") as info:
        saved_model.export(NoCount(), metadata, tmp_path / "m_saved_model")
    assert "missing output 'num_detections'" in str(info.value)
    assert "output 'classes' is float32 rank 2, expected int32 rank 2" in str(info.value)
    assert list(tmp_path.iterdir()) == []
