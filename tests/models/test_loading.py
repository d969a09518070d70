"""Tests for edgedet.models.load_model / describe_model."""

import json
import zipfile

import numpy as np
import pytest

from edgedet.models import ModelLoadError, YOLOV8Detector, describe_model, load_model

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    model = YOLOV8Detector.from_preset(
        "tiny",
        class_names=["person", "car"],
        bounding_box_format="xywh",
        letterbox={"size": 96, "pad_position": "center", "pad_value": 114},
    )
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path)
    return model, path


def test_keras_round_trip_gives_identical_outputs(saved_tiny):
    model, path = saved_tiny
    loaded = load_model(path)
    assert isinstance(loaded, YOLOV8Detector)
    assert loaded.get_config() == model.get_config()
    assert list(loaded.class_names) == ["person", "car"]
    assert loaded.letterbox.pad_position == "center"
    assert loaded.bounding_box_format == "xywh"
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 64, 3)).astype("float32")
    a, b = model(x), loaded(x)
    for key in ("boxes", "classes"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_load_accepts_pathlike_and_str(saved_tiny):
    _, path = saved_tiny
    assert load_model(str(path)).num_classes == 2


def test_describe_model(saved_tiny):
    model, _ = saved_tiny
    info = describe_model(model)
    assert json.loads(json.dumps(info)) == info
    assert info["preset"] == "tiny"
    assert info["heads"] == ["one2many"]
    assert info["num_classes"] == 2
    assert info["class_names"] == ["person", "car"]
    assert info["input_size"] == 96
    assert info["num_anchors"] == 12 * 12 + 6 * 6 + 3 * 3
    assert info["parameters"] == model.count_params()
    assert info["trainable_parameters"] < info["parameters"]  # BN moving statistics
    assert info["layout"]["stackwise_channels"] == [8, 16, 32, 64]
    assert info["layout"]["strides"] == [8, 16, 32]
    assert info["letterbox"] == {"size": 96, "pad_position": "center", "pad_value": 114}


def test_describe_model_rejects_other_models():
    with pytest.raises(ValueError, match="Sequential"):
        describe_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="No such model file"):
        load_model(tmp_path / "nope.keras")


def test_not_a_zip(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelLoadError, match="not a zip archive"):
        load_model(path)


def test_truncated_file(saved_tiny, tmp_path):
    _, good = saved_tiny
    path = tmp_path / "truncated.keras"
    path.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ModelLoadError, match="not a valid .keras file"):
        load_model(path)


def test_zip_without_config(tmp_path):
    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(path)


def test_folder_and_other_suffixes(tmp_path):
    with pytest.raises(ModelLoadError, match="is a folder"):
        load_model(tmp_path)
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="weights only"):
        load_model(weights)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="expected a '.keras' file"):
        load_model(other)


def test_lambda_file_is_refused_in_safe_mode(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double_it")(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelLoadError, match="Lambda layer 'double_it'") as info:
        load_model(path)
    assert "safe_mode" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_plain_keras_model_is_not_yolov8(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)], name="plain")
    path = tmp_path / "plain.keras"
    model.save(path)
    with pytest.raises(ModelLoadError, match="head is not YOLOv8-shaped"):
        load_model(path)
