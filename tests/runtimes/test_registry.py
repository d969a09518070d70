"""Picking the runtime from the artifact; metadata round trip; broken artifacts."""

import shutil

import pytest

from edgedet.metadata import MetadataError, artifact_metadata
from edgedet.runtimes.registry import open_runtime, read_metadata, runtime_kind


def test_kind_from_artifact(debug_artifacts, tmp_path):
    for target in ("savedmodel", "onnx", "tflite"):  # One name per kind: the target's.
        assert runtime_kind(debug_artifacts[target]) == target
    keras_file = tmp_path / "m.KERAS"
    keras_file.write_bytes(b"")
    assert runtime_kind(keras_file) == "keras"


def test_unknown_kinds_list_the_supported_ones(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"suffix '\.pt'.*\.onnx, \.tflite"):
        runtime_kind(weights)
    with pytest.raises(ValueError, match="not a SavedModel.*Supported artifacts"):
        open_runtime(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_runtime(tmp_path / "missing.onnx")


def test_engine_goes_to_the_tensorrt_runtime(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0")
    assert runtime_kind(engine) == "trt"


@pytest.mark.parametrize("target", ["savedmodel", "onnx", "tflite"])
def test_metadata_round_trip(debug_artifacts, detector, config, target):
    expected = artifact_metadata(detector, config, target=target)
    assert read_metadata(debug_artifacts[target]) == expected
    runtime = open_runtime(debug_artifacts[target])
    assert runtime.metadata == expected
    assert runtime.metadata.class_names == ("cat", "dog", "bird")
    assert runtime.metadata.inference.nms.confidence_threshold == 0.15


def test_read_metadata_of_a_keras_file_points_to_the_model(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK")
    with pytest.raises(MetadataError, match="not an exported artifact"):
        read_metadata(path)


# -- corrupt artifacts and artifacts without edgedet metadata ---------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.onnx", b"\x08\x07garbage" * 10, "not a valid ONNX model"),
        ("bad.tflite", b"\x00" * 64, "not a TFLite flatbuffer"),
        ("short.tflite", b"TFL", "not a TFLite flatbuffer"),
    ],
)
def test_corrupt_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MetadataError, match=message):
        read_metadata(path)
    with pytest.raises(MetadataError, match=message):
        open_runtime(path)


def test_truncated_tflite(debug_artifacts, tmp_path):
    content = debug_artifacts["tflite"].read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(content[: len(content) // 3])
    with pytest.raises(MetadataError, match="TFLite"):
        open_runtime(path)


def test_saved_model_without_metadata(debug_artifacts, tmp_path):
    folder = tmp_path / "copy_saved_model"
    shutil.copytree(debug_artifacts["savedmodel"], folder)
    metadata_file = folder / "assets" / "edgedet.json"
    metadata_file.write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_metadata(folder)
    metadata_file.unlink()
    with pytest.raises(MetadataError, match="no edgedet metadata.*assets/edgedet.json"):
        open_runtime(folder)


def test_onnx_without_metadata(debug_artifacts, tmp_path):
    import onnx

    model = onnx.load(str(debug_artifacts["onnx"]))
    del model.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    with pytest.raises(MetadataError, match=r"no edgedet metadata \(metadata_props\['edgedet'\]"):
        open_runtime(path)


def test_tflite_without_metadata(debug_artifacts, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(debug_artifacts["tflite"]))
    names = [m.name.decode() if isinstance(m.name, bytes) else m.name for m in model.metadata]
    assert "edgedet" in names
    model.metadata = [m for m, n in zip(model.metadata, names) if n != "edgedet"]
    path = tmp_path / "plain.tflite"
    flatbuffer_utils.write_model(model, str(path))
    with pytest.raises(MetadataError, match="no edgedet metadata.*no 'edgedet' entry"):
        read_metadata(path)


# -- runtime options -----------------------------------------------------------


def test_onnx_providers(debug_artifacts, images):
    from edgedet.runtimes.onnxrt import OnnxRuntime, default_providers

    assert default_providers()[-1] == "CPUExecutionProvider"
    with OnnxRuntime(debug_artifacts["onnx"], providers=["CPUExecutionProvider"]) as runtime:
        assert runtime.session.get_providers() == ["CPUExecutionProvider"]
        assert len(runtime.predict(images["17x23"][:1])) == 1
    with pytest.raises(ValueError, match=r"\['NoSuchExecutionProvider'\] are not available"):
        OnnxRuntime(debug_artifacts["onnx"], providers=["NoSuchExecutionProvider"]).__enter__()


def test_litert_without_xnnpack_matches(debug_artifacts, images):
    from edgedet.runtimes.litert import LiteRTRuntime

    batch = images["640x480"][:2]
    with LiteRTRuntime(debug_artifacts["tflite"]) as fast:
        expected = fast.infer(batch)
    with LiteRTRuntime(debug_artifacts["tflite"], use_xnnpack=False, num_threads=1) as plain:
        got = plain.infer(batch)
    assert (got["num_detections"] == expected["num_detections"]).all()
    assert abs(got["pre_nms_scores"] - expected["pre_nms_scores"]).max() < 1e-4
