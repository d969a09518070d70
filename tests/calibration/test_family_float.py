"""The model family table's `int8_float_layers` reach every INT8 artifact.

A decisive `yolo11_tiny` (same layer names as `yolo11n`) goes through one
`edgedet export --precision int8` to ONNX U8S8, TFLite INT8, OpenVINO INT8
(where installed) and the TensorRT-ready S8S8 ONNX with its calibration
record; in each artifact the convolutions left float are read from the graph
itself: exactly the head outputs and the family's blocks. (Slow: about a
minute on a quiet machine, most of it TFLite and NNCF.)
"""

import importlib.util
import json
import re

import pytest

keras = pytest.importorskip("keras")

CALIBRATION = {"data": "synthetic:shapes?n=8&size=64&seed=5", "size": 8, "method": "minmax"}
OPENVINO = ["openvino"] if importlib.util.find_spec("nncf") else []


def _family():
    from edgedet.models.families import get_family

    return get_family("yolo11")


def _block(layer):
    from edgedet.calibration.body import strip_block_suffix

    return strip_block_suffix(re.sub(r"_\d+$", "", layer))


def _expected():
    family = _family()
    return {_block(h) for h in family.head_output_layers} | set(family.int8_float_layers)


@pytest.fixture(scope="module")
def artifacts(make_decisive_tiny_model, tmp_path_factory):
    """Every INT8 artifact of one `export` call (one calibration, as the CLI makes them)."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    model = make_decisive_tiny_model("yolo11_tiny", num_classes=3)
    out = tmp_path_factory.mktemp("family_float")
    with pytest.warns(UserWarning, match="recommended"):
        try:  # Without TensorRT the trt target writes its TensorRT-ready files, then fails.
            export(model, ["onnx", "tflite", *OPENVINO, "trt"], out, stem="m",
                   precision="int8", calibration=CALIBRATION)
        except ExportError as error:
            assert "Wrote the TensorRT-ready files" in str(error), str(error)
    return {"onnx_int8": out / "m_int8.onnx", "s8s8": out / "m_int8_trt.onnx",
            "tflite_int8": out / "m_int8.tflite", "openvino_int8": out / "m_int8.xml",
            "record": out / "m_int8.calib.json"}


def _onnx_float_blocks(path):
    """`(blocks of the float convs, number of int8 convs)`: a float Conv reads its weights
    straight from an initializer, an int8 one through a DequantizeLinear."""
    import onnx

    from edgedet.calibration.body import _find_scope, node_block

    model = onnx.load(str(path))
    scope = _find_scope(model.graph.node)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    floats, int8 = set(), 0
    for node in (n for n in model.graph.node if n.op_type == "Conv"):
        source = producer.get(node.input[1])
        if source is not None and source.op_type == "DequantizeLinear":
            int8 += 1
        else:
            floats.add(node_block(node, scope, consumers))
    return floats, int8


def test_the_yolo11_row_lists_blocks_of_the_model():
    from edgedet.calibration.body import family_float_blocks

    blocks = _family().int8_float_layers
    head = "yolo11_head_1_box_3"
    assert blocks and family_float_blocks([head, *blocks]) == blocks
    assert family_float_blocks([head, "stem_1", blocks[0]]) == (blocks[0],)
    # A YOLOv8 has blocks of the same names (`stem_2`): its own row decides.
    assert family_float_blocks(["yolo_v8_head_1_box_3", *blocks]) == ()
    assert family_float_blocks(blocks) == ()  # no family's head: no row


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["onnx_int8", "s8s8"])
def test_onnx_qdq_models_keep_the_family_blocks_float(artifacts, kind):
    floats, int8 = _onnx_float_blocks(artifacts[kind])
    assert floats == _expected(), sorted(floats ^ _expected())
    assert int8 > 40


@pytest.mark.slow
def test_calibration_record_names_the_family_blocks(artifacts):
    body = json.loads(artifacts["record"].read_text())["body"]
    assert body["family_float_blocks"] == list(_family().int8_float_layers)


@pytest.mark.slow
def test_tflite_int8_keeps_the_family_blocks_float(artifacts):
    from edgedet.exporters.tflite_int8 import int8_summary
    from edgedet.runtimes.registry import read_metadata

    summary = int8_summary(artifacts["tflite_int8"].read_bytes())
    floats = {_block(name.split("/")[1]) for name in summary["float_convs"]}
    assert floats == _expected(), sorted(floats ^ _expected())
    assert summary["body_int8_ops"] > 40 and not summary["post_int8_ops"]
    quantization = read_metadata(artifacts["tflite_int8"]).extra["quantization"]
    assert quantization["float_blocks"] == list(_family().int8_float_layers)


@pytest.mark.slow
@pytest.mark.skipif(not OPENVINO, reason="OpenVINO INT8 needs the openvino extra (NNCF)")
def test_openvino_int8_keeps_the_family_blocks_float(artifacts):
    import openvino as ov

    from edgedet.exporters.openvino_int8 import CONVOLUTIONS, float_convolutions

    model = ov.Core().read_model(str(artifacts["openvino_int8"]))
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() in CONVOLUTIONS]
    # NNCF stores an int8 convolution's weights as int8 constants (Convert, Multiply).
    floats = [op.get_friendly_name() for op in convs
              if op.input_value(1).get_node().get_type_name() == "Constant"]
    # The head outputs and one convolution per family block, read from the graph.
    assert sorted(floats) == sorted(float_convolutions(model))
    assert len(floats) == 6 + len(_family().int8_float_layers), floats
    assert len(convs) - len(floats) > 40
