"""Tests for edgedet.models.YOLOV8Detector and its presets."""

import math

import numpy as np
import pytest

from edgedet.config import InferenceConfig, LetterboxConfig
from edgedet.models import YOLOV8Detector, get_preset, preset_names

keras = pytest.importorskip("keras")

# Ultralytics' model summaries (ultralytics/cfg/models/v8/yolov8.yaml, 80 classes)
# count the 16 fixed DFL weights, which edgedet does not have (decoding is outside
# the model): so edgedet's trainable parameters must be these minus 16.
ULTRALYTICS_PARAMS = {
    "yolov8n": 3_157_200,
    "yolov8s": 11_166_560,
    "yolov8m": 25_902_640,
    "yolov8l": 43_691_520,
    "yolov8x": 68_229_648,
}
DFL_FIXED_WEIGHTS = 16


def trainable_params(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def num_anchors(h, w):
    return sum((h // s) * (w // s) for s in (8, 16, 32))


@pytest.fixture(scope="module")
def tiny():
    return YOLOV8Detector.from_preset("tiny", class_names=["cat", "dog", "bird"])


@pytest.mark.parametrize("shape", [(2, 64, 64), (1, 96, 160)])
@pytest.mark.parametrize("num_classes", [1, 7])
def test_output_shapes_and_dtypes(shape, num_classes):
    model = YOLOV8Detector.from_preset("tiny", num_classes=num_classes)
    b, h, w = shape
    out = model(np.random.default_rng(0).uniform(0, 255, (b, h, w, 3)).astype("float32"))
    assert set(out) == {"boxes", "classes"}
    assert tuple(out["boxes"].shape) == (b, num_anchors(h, w), 64)
    assert tuple(out["classes"].shape) == (b, num_anchors(h, w), num_classes)
    assert out["boxes"].dtype == "float32" and out["classes"].dtype == "float32"


def test_anchor_order_is_stride_8_16_32_row_major(tiny):
    """Each level's anchors are its head conv's output flattened y-major."""
    level_outputs = [
        tiny.get_layer(f"yolo_v8_head_{i}_{branch}_3_conv").output
        for i in (1, 2, 3)
        for branch in ("box", "class")
    ]
    probe = keras.Model(tiny.input, [*level_outputs, tiny.output["boxes"], tiny.output["classes"]])
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 96, 3)).astype("float32")
    *levels, boxes, classes = [np.asarray(t) for t in probe(x)]
    start = 0
    for i, stride in enumerate((8, 16, 32)):
        box_map, class_map = levels[2 * i], levels[2 * i + 1]
        h, w = 64 // stride, 96 // stride
        assert box_map.shape[1:3] == (h, w)
        end = start + h * w
        np.testing.assert_array_equal(boxes[0, start:end], box_map[0].reshape(h * w, 64))
        np.testing.assert_array_equal(classes[0, start:end], class_map[0].reshape(h * w, 3))
        start = end
    assert start == boxes.shape[1]


def test_classes_are_logits_not_probabilities(tiny):
    finals = [tiny.get_layer(f"yolo_v8_head_{i}_class_3_conv") for i in (1, 2, 3)]
    saved = [layer.get_weights() for layer in finals]
    for layer, (kernel, bias) in zip(finals, saved):
        layer.set_weights([kernel, bias - 20.0])
    try:
        out = tiny(np.full((1, 64, 64, 3), 128.0, "float32"))
        assert float(np.max(out["classes"])) < -5.0  # a sigmoid could not go below 0
    finally:
        for layer, weights in zip(finals, saved):
            layer.set_weights(weights)


def test_attributes(tiny):
    assert tiny.strides == (8, 16, 32)
    assert tiny.reg_max == 16
    assert tiny.num_classes == 3
    assert list(tiny.class_names) == ["cat", "dog", "bird"]
    assert tiny.letterbox == LetterboxConfig.kerascv(64)
    assert tiny.preset == "tiny"
    config = tiny.default_inference_config()
    assert isinstance(config, InferenceConfig)
    assert config.letterbox == tiny.letterbox
    assert config.bounding_box_format == "xyxy"


def test_default_class_names_and_letterbox():
    model = YOLOV8Detector(
        num_classes=2, stackwise_channels=[8, 16, 32, 64], stackwise_depth=[1, 1, 1, 1]
    )
    assert list(model.class_names) == ["class_0", "class_1"]
    assert model.letterbox == LetterboxConfig.kerascv(640)
    assert model.include_rescaling


def test_layer_names_are_deterministic_and_kerascv_style():
    names_a = [layer.name for layer in YOLOV8Detector.from_preset("tiny", num_classes=2).layers]
    names_b = [layer.name for layer in YOLOV8Detector.from_preset("tiny", num_classes=2).layers]
    assert names_a == names_b
    for expected in (
        "stem_1_conv",
        "stack1_c2f_pre_conv",
        "stack4_spp_fast_output_conv",
        "pa_fpn_p4p5_pre_0_1_conv",
        "pa_fpn_p3p4p5_downsample2_block_output_bn",
        "yolo_v8_head_1_box_1_conv",
        "yolo_v8_head_3_class_3_conv",
    ):
        assert expected in names_a


def test_rescaling_is_inside_the_model():
    with_rescaling = YOLOV8Detector.from_preset("tiny", num_classes=2)
    without = YOLOV8Detector.from_preset("tiny", num_classes=2, include_rescaling=False)
    without.set_weights(with_rescaling.get_weights())
    x = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    a, b = with_rescaling(x), without(x / 255.0)
    np.testing.assert_allclose(np.asarray(a["boxes"]), np.asarray(b["boxes"]), atol=1e-5)


@pytest.mark.parametrize(
    "name, channels, depth, neck",
    [
        ("yolov8n", [32, 64, 128, 256], [1, 2, 2, 1], [1, 1, 1, 1]),
        ("yolov8s", [64, 128, 256, 512], [1, 2, 2, 1], [1, 1, 1, 1]),
        ("yolov8m", [96, 192, 384, 576], [2, 4, 4, 2], [2, 2, 2, 2]),
        ("yolov8l", [128, 256, 512, 512], [3, 6, 6, 3], [3, 3, 3, 3]),
        ("yolov8x", [160, 320, 640, 640], [3, 6, 6, 3], [3, 3, 3, 3]),
    ],
)
def test_preset_layouts(name, channels, depth, neck):
    preset = get_preset(name)
    assert preset["stackwise_channels"] == channels
    assert preset["stackwise_depth"] == depth
    assert preset["neck_depths"] == neck


@pytest.mark.parametrize(
    "name",
    [
        "yolov8n",
        "yolov8s",
        pytest.param("yolov8m", marks=pytest.mark.slow),
        pytest.param("yolov8l", marks=pytest.mark.slow),
        pytest.param("yolov8x", marks=pytest.mark.slow),
    ],
)
def test_preset_parameter_counts_match_ultralytics(name):
    model = YOLOV8Detector.from_preset(name, num_classes=80)
    assert trainable_params(model) == ULTRALYTICS_PARAMS[name] - DFL_FIXED_WEIGHTS


def test_head_class_channels_rule():
    def class_width(model):
        return model.get_layer("yolo_v8_head_1_class_1_conv").kernel.shape[-1]

    # tiny: P3 has 16 channels; Ultralytics rule max(16, min(num_classes, 100)).
    assert class_width(YOLOV8Detector.from_preset("tiny", num_classes=3)) == 16
    assert class_width(YOLOV8Detector.from_preset("tiny", num_classes=40)) == 40
    assert class_width(YOLOV8Detector.from_preset("tiny", num_classes=150)) == 100
    explicit = YOLOV8Detector.from_preset("tiny", num_classes=3, head_class_channels=24)
    assert class_width(explicit) == 24
    box_width = explicit.get_layer("yolo_v8_head_1_box_1_conv").kernel.shape[-1]
    assert box_width == 64


def test_unknown_preset_suggests_close_match():
    with pytest.raises(ValueError, match=r"yolov8nn.*Did you mean 'yolov8n'"):
        YOLOV8Detector.from_preset("yolov8nn")
    v8 = ["yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x", "pico", "tiny"]
    assert preset_names()[:7] == v8  # then the other families' (yolo11n, ...)


def test_from_preset_num_classes_from_class_names():
    model = YOLOV8Detector.from_preset("tiny", class_names=["a", "b"])
    assert model.num_classes == 2
    with pytest.raises(ValueError, match="2 class_names for num_classes=3"):
        YOLOV8Detector.from_preset("tiny", num_classes=3, class_names=["a", "b"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_classes": 0}, "num_classes: 0"),
        ({"stackwise_channels": [8, 16, 32]}, "stackwise_channels"),
        ({"stackwise_channels": [8, 16, 33, 64]}, "even"),
        ({"neck_depths": [1, 1, 0, 1]}, "neck_depths"),
        ({"bounding_box_format": "xyxz"}, "xyxz"),
        ({"letterbox": {"size": 100}}, "letterbox size"),
        ({"class_names": "abc", "num_classes": 3}, "class_names"),
    ],
)
def test_invalid_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        YOLOV8Detector.from_preset("tiny", **overrides)


def test_get_config_round_trip(tiny):
    config = tiny.get_config()
    clone = YOLOV8Detector.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(tiny.get_weights())
    x = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(tiny(x)["classes"]), np.asarray(clone(x)["classes"]))


def test_mixed_precision_outputs_are_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = YOLOV8Detector.from_preset("tiny", num_classes=2)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("stem_1_conv").compute_dtype == "float16"
    out = model(np.zeros((1, 64, 64, 3), "float32"))
    assert out["boxes"].dtype == "float32" and out["classes"].dtype == "float32"


def test_presets_import_without_keras():
    """`edgedet --help` can list presets without importing Keras."""
    import subprocess
    import sys

    code = (
        "import sys, edgedet.models as m; names = m.preset_names(); "
        "assert 'keras' not in sys.modules, 'keras imported'; print(names)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "yolov8n" in result.stdout and "yolo11n" in result.stdout
