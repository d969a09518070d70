"""KerasCV 0.9 compatibility: imported weights reproduce KerasCV's raw head."""

import numpy as np
import pytest

keras_cv = pytest.importorskip("keras_cv")
keras = pytest.importorskip("keras")

from edgedet.models import (  # noqa: E402
    KerasCVImportError,
    YOLOV8Detector,
    from_kerascv,
    load_model,
)
from edgedet.models.kerascv_import import copy_weights, edgedet_config_from_kerascv  # noqa: E402

TOLERANCE = 1e-4
CONFIGS = {
    "xs": {"stackwise_channels": [32, 64, 128, 256], "stackwise_depth": [1, 2, 2, 1]},
    "s": {"stackwise_channels": [64, 128, 256, 512], "stackwise_depth": [1, 2, 2, 1]},
}
SHAPES = [(2, 64, 64, 3), (1, 96, 160, 3)]


def kerascv_detector(stackwise_channels, stackwise_depth, num_classes=5, fpn_depth=1, seed=0):
    """A KerasCV detector with random weights and non-trivial BN statistics."""
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=stackwise_channels,
        stackwise_depth=stackwise_depth,
        include_rescaling=True,
    )
    detector = keras_cv.models.YOLOV8Detector(
        backbone=backbone,
        num_classes=num_classes,
        bounding_box_format="xyxy",
        fpn_depth=fpn_depth,
    )
    rng = np.random.default_rng(seed)
    for layer in backbone.layers + detector.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.2, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape))
    return detector


def max_differences(detector, model, x):
    expected, got = detector(x), model(x)
    boxes = np.abs(np.asarray(expected["boxes"]) - np.asarray(got["boxes"])).max()
    probabilities = 1.0 / (1.0 + np.exp(-np.asarray(got["classes"], dtype="float64")))
    classes = np.abs(np.asarray(expected["classes"]) - probabilities).max()
    return boxes, classes


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pair(request):
    detector = kerascv_detector(**CONFIGS[request.param])
    return detector, from_kerascv(detector, class_names=["a", "b", "c", "d", "e"])


@pytest.mark.parametrize("shape", SHAPES)
def test_raw_head_matches_kerascv(pair, shape):
    detector, model = pair
    x = np.random.default_rng(1).uniform(0, 255, shape).astype("float32")
    boxes, classes = max_differences(detector, model, x)
    assert boxes <= TOLERANCE
    assert classes <= TOLERANCE


def test_one_changed_weight_is_detected(pair):
    """The comparison above can fail: perturbing one neck weight breaks it."""
    detector, model = pair
    layer = model.get_layer("pa_fpn_p3p4p5_downsample1_block_pre_0_1_conv")
    kernel = layer.kernel.numpy()
    layer.kernel.assign(kernel + 0.5)
    try:
        x = np.random.default_rng(1).uniform(0, 255, SHAPES[0]).astype("float32")
        boxes, classes = max_differences(detector, model, x)
        assert max(boxes, classes) > 10 * TOLERANCE
    finally:
        layer.kernel.assign(kernel)


def test_imported_config(pair):
    detector, model = pair
    channels = detector.backbone.stackwise_channels
    assert list(model.neck_depths) == [1, 1, 2, 2]
    assert model.head_class_channels == max(5, channels[1])
    assert model.include_rescaling
    assert model.bounding_box_format == "xyxy"
    assert list(model.class_names) == ["a", "b", "c", "d", "e"]
    assert model.letterbox.pad_position == "bottom_right" and model.letterbox.pad_value == 0
    assert model.count_params() == detector.count_params()


def test_xs_80_classes_parameter_count():
    """KerasCV yolo_v8_xs + 80 classes + fpn_depth 1 has 3,578,912 parameters."""
    config = {"num_classes": 80, "stackwise_channels": [32, 64, 128, 256]}
    config.update(stackwise_depth=[1, 2, 2, 1], neck_depths=[1, 1, 2, 2], head_class_channels=80)
    assert YOLOV8Detector(**config).count_params() == 3_578_912


@pytest.fixture(scope="module")
def small_detector():
    return kerascv_detector([8, 16, 32, 64], [1, 1, 1, 1], num_classes=3, seed=2)


def test_from_keras_file_and_load_model(small_detector, tmp_path):
    path = tmp_path / "kerascv.keras"
    small_detector.save(path)
    x = np.random.default_rng(3).uniform(0, 255, SHAPES[1]).astype("float32")
    for model in (from_kerascv(path), load_model(path)):
        assert isinstance(model, YOLOV8Detector)
        boxes, classes = max_differences(small_detector, model, x)
        assert boxes <= TOLERANCE and classes <= TOLERANCE


def test_from_weights_file(small_detector, tmp_path):
    path = tmp_path / "kerascv.weights.h5"
    small_detector.save_weights(path)
    config = {
        "stackwise_channels": [8, 16, 32, 64],
        "stackwise_depth": [1, 1, 1, 1],
        "num_classes": 3,
        "fpn_depth": 1,
        "include_rescaling": True,
        "bounding_box_format": "xyxy",
    }
    model = from_kerascv(path, config=config)
    x = np.random.default_rng(4).uniform(0, 255, SHAPES[0]).astype("float32")
    boxes, classes = max_differences(small_detector, model, x)
    assert boxes <= TOLERANCE and classes <= TOLERANCE
    with pytest.raises(KerasCVImportError, match=r"missing keys \['fpn_depth'\]"):
        from_kerascv(path, config={k: v for k, v in config.items() if k != "fpn_depth"})


def test_mismatched_tensor_is_named_with_both_shapes(small_detector):
    config = edgedet_config_from_kerascv(small_detector)
    config["num_classes"] = 4
    with pytest.raises(KerasCVImportError) as info:
        copy_weights(small_detector, YOLOV8Detector(**config))
    message = str(info.value)
    assert "yolo_v8_head_1_class_3_conv/kernel" in message
    assert "(1, 1, 16, 3)" in message and "(1, 1, 16, 4)" in message


def test_missing_tensor_is_named(small_detector):
    config = edgedet_config_from_kerascv(small_detector)
    config["neck_depths"] = [2, 1, 2, 2]
    with pytest.raises(KerasCVImportError, match="pa_fpn_p4p5_pre_1_1_conv/kernel: missing"):
        copy_weights(small_detector, YOLOV8Detector(**config))


def test_rejects_other_sources():
    with pytest.raises(KerasCVImportError, match="Expected a keras_cv YOLOV8Detector"):
        from_kerascv(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    with pytest.raises(KerasCVImportError, match="No such KerasCV model file"):
        from_kerascv("/nonexistent/model.keras")
