"""Tests for edgedet.models.YOLO11Detector, its presets and its attention block."""

import math
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edgedet.models import YOLO11Detector, families, load_model  # noqa: E402

# Ultralytics' model summaries (ultralytics/cfg/models/11/yolo11.yaml, 80 classes)
# count the 16 fixed DFL weights, which edgedet does not have (decoding is outside
# the model): so edgedet's trainable parameters must be these minus 16.
ULTRALYTICS_PARAMS = {
    "yolo11n": 2_624_080,
    "yolo11s": 9_458_752,
    "yolo11m": 20_114_688,
    "yolo11l": 25_372_160,
    "yolo11x": 56_966_176,
}
DFL_FIXED_WEIGHTS = 16


def trainable_params(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def tiny():
    return YOLO11Detector.from_preset("yolo11_tiny", num_classes=3)


@pytest.mark.parametrize(
    "name",
    [
        "yolo11n",
        "yolo11s",
        pytest.param("yolo11m", marks=pytest.mark.slow),
        pytest.param("yolo11l", marks=pytest.mark.slow),
        pytest.param("yolo11x", marks=pytest.mark.slow),
    ],
)
def test_preset_parameter_counts_match_ultralytics(name):
    model = YOLO11Detector.from_preset(name, num_classes=80)
    assert trainable_params(model) == ULTRALYTICS_PARAMS[name] - DFL_FIXED_WEIGHTS


def test_presets_follow_the_yaml_scales():
    get = families.get_family("yolo11").get_preset
    assert get("yolo11n")["stackwise_channels"] == [16, 32, 64, 128, 256]
    assert get("yolo11m")["stackwise_channels"] == [64, 128, 256, 512, 512]
    assert get("yolo11x")["stackwise_channels"] == [96, 192, 384, 768, 768]
    assert get("yolo11s")["c3k"] == [False, False, True, True, False, False, False, True]
    assert get("yolo11l")["c3k"] == [True] * 8  # parse_model forces c3k for m/l/x
    assert get("yolo11n")["c3k2_depths"] == [1] * 8 and get("yolo11l")["psa_depth"] == 2


@pytest.mark.parametrize("shape", [(1, 64, 64, 3), (2, 96, 64, 3)])
def test_outputs_are_the_raw_detect_head(tiny, shape):
    out = tiny(np.zeros(shape, "float32"))
    anchors = sum((shape[1] // s) * (shape[2] // s) for s in (8, 16, 32))
    assert tuple(out["boxes"].shape) == (shape[0], anchors, 64)
    assert tuple(out["classes"].shape) == (shape[0], anchors, 3)
    assert out["boxes"].dtype == "float32" and out["classes"].dtype == "float32"


def test_head_output_layers_are_the_last_convolutions_of_the_head():
    family = families.get_family("yolo11")
    model = YOLO11Detector.from_preset("yolo11_tiny", num_classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    for name in family.head_output_layers:
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    outputs = model(images)
    assert not np.any(outputs["boxes"]) and not np.any(outputs["classes"])


def test_attention_equals_a_numpy_reference():
    from edgedet.models.csp_attention_blocks import MultiHeadAttention2D

    heads, kd, hd, h, w = 2, 4, 8, 3, 5
    rng = np.random.default_rng(1)
    qkv = rng.normal(size=(2, h, w, heads * (2 * kd + hd))).astype("float32")
    attended, v = MultiHeadAttention2D(heads, kd, hd)(qkv)
    # Ultralytics: view(B, heads, 2kd + hd, N) of the NCHW map, split, softmax over keys.
    x = qkv.transpose(0, 3, 1, 2).reshape(2, heads, 2 * kd + hd, h * w)
    q, k, vv = x[:, :, :kd], x[:, :, kd:2 * kd], x[:, :, 2 * kd:]
    scores = np.einsum("bhdn,bhdm->bhnm", q * kd ** -0.5, k)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = np.einsum("bhdm,bhnm->bhdn", vv, weights).reshape(2, heads * hd, h, w)
    np.testing.assert_allclose(np.asarray(attended), out.transpose(0, 2, 3, 1), atol=1e-5)
    np.testing.assert_allclose(np.asarray(v), vv.reshape(2, heads * hd, h, w)
                               .transpose(0, 2, 3, 1), atol=0)


def test_keras_save_load_round_trip_after_import_edgedet(tiny, tmp_path):
    path = tmp_path / "tiny11.keras"
    tiny.save(path)
    images = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    for loaded in (keras.saving.load_model(path), load_model(path)):
        assert isinstance(loaded, YOLO11Detector)
        np.testing.assert_allclose(loaded(images)["classes"], tiny(images)["classes"], atol=1e-5)
    assert loaded.get_config() == tiny.get_config()
    # A fresh process: `import edgedet` is enough for Keras to find the classes.
    code = (f"import edgedet, keras; m = keras.saving.load_model({str(path)!r}); "
            "print(type(m).__name__, m.preset)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("YOLO11Detector yolo11_tiny")


def test_describe_model_names_the_family(tiny):
    from edgedet.models import describe_model

    info = describe_model(tiny)
    assert info["model"] == "YOLO11Detector" and info["family"] == "yolo11"
    assert info["layout"]["c3k"] == [False, False, True, True, False, False, False, True]
    assert info["layout"]["strides"] == [8, 16, 32]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"stackwise_channels": [8, 8, 16]}, "stackwise_channels"),
        ({"c3k": [True] * 7}, "c3k"),
        ({"c3k2_depths": [0] * 8}, "c3k2_depths"),
    ],
)
def test_invalid_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        YOLO11Detector.from_preset("yolo11_tiny", **overrides)
