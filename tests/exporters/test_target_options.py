"""`export(..., target_options=...)`: one exporter signature at every precision.

The options reach the exporter at fp32 and at int8 alike (here the ONNX
opset), and an option a target does not accept is refused, naming it and the
accepted ones, before any work.
"""

import numpy as np
import pytest

CALIBRATION = {"data": "synthetic:shapes?n=4&seed=5&size=48-64", "size": 4, "method": "minmax"}


@pytest.fixture(scope="module")
def model():
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(5)
    return YOLOV8Detector.from_preset("tiny", class_names=["a", "b"])


def _opset(path):
    import onnx

    model = onnx.load(str(path))
    return {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}["ai.onnx"]


def _runs(path):
    from edgedet.runtimes.registry import open_runtime

    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    with open_runtime(str(path)) as runtime:
        (detections,) = runtime.predict([image])
        return runtime.metadata, detections


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_opset_option_reaches_the_exporter(model, tmp_path, precision):
    from edgedet.export import export

    (result,) = export(model, ["onnx"], tmp_path, stem="m", precision=precision,
                       calibration=CALIBRATION, target_options={"onnx": {"opset": 18}})
    assert _opset(result.path) == 18
    metadata, detections = _runs(result.path)
    assert (metadata.precision == precision
            and len(detections) <= metadata.inference.nms.max_detections)
    if precision == "int8":
        import onnx

        ops = {node.op_type for node in onnx.load(str(result.path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # The default stays opset 17.
    (default,) = export(model, ["onnx"], tmp_path / "default", stem="m", precision=precision,
                        calibration=CALIBRATION)
    assert _opset(default.path) == 17


@pytest.mark.parametrize("options, words", [
    ({"onnx": {"opsett": 18}},
     ["Unknown option 'opsett' for target 'onnx'", "['opset']", "Did you mean 'opset'"]),
    ({"tflite": {"opset": 18}}, ["Unknown option 'opset' for target 'tflite'", "none"]),
    ({"onxx": {"opset": 18}}, ["Unknown export target 'onxx'"]),
    ({"onnx": 18}, ["must be a dict"]),
    (["onnx"], ["target_options must be a dict"]),
])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_bad_options_are_refused_before_any_work(model, tmp_path, options, words, precision):
    from edgedet.export import export

    out = tmp_path / "never"
    with pytest.raises(ValueError) as info:
        export(model, ["onnx", "tflite"], out, precision=precision, target_options=options)
    for word in words:
        assert word in str(info.value)
    assert not out.exists()


def test_every_exporter_takes_the_one_signature():
    import inspect

    from edgedet.exporters.registry import TARGETS

    for target in TARGETS:
        for precision in target.precisions:
            function = target.load_exporter(precision)
            parameters = list(inspect.signature(function).parameters)
            assert parameters[:4] == ["end_to_end", "metadata", "path", "force"], target.name
            assert {"precision", "session"} <= set(parameters), (target.name, precision)
            named = [p for p in parameters[4:] if p not in ("precision", "session", "options")]
            assert set(named) <= set(target.options), (target.name, precision, named)
