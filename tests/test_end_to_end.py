"""The end-to-end graph with a stand-in model whose detections are known."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from edgedet import boxes as box_utils
from edgedet.backend import keras
from edgedet.config import InferenceConfig, LetterboxConfig, NMSConfig
from edgedet.end_to_end import OUTPUT_NAMES, build_end_to_end
from edgedet.letterbox import letterbox, letterbox_geometry

keras = keras()
SIZE = 64  # anchors: 64 (stride 8) + 16 (stride 16) + 4 (stride 32) = 84
ANCHORS = 84
NMS = NMSConfig(iou_threshold=0.5, confidence_threshold=0.25, max_detections=5)


def _bins(ltrb):
    logits = np.zeros((4, 16), np.float32)
    logits[np.arange(4), ltrb] = 100.0
    return logits.reshape(-1)


# Anchor 28: stride 8, row 3, col 4, centre (36, 28); bins (2, 1, 2, 1) -> box (20, 20, 52, 36).
# Anchor 64: stride 16, row 0, col 0, centre (8, 8); bins (0, 0, 1, 1) -> box (8, 8, 24, 24).
LETTERBOXED = {28: [20.0, 20.0, 52.0, 36.0], 64: [8.0, 8.0, 24.0, 24.0]}
RAW_BOXES = np.zeros((ANCHORS, 64), np.float32)
RAW_BOXES[28] = _bins([2, 1, 2, 1])
RAW_BOXES[64] = _bins([0, 0, 1, 1])
RAW_CLASSES = np.full((ANCHORS, 2), -10.0, np.float32)
RAW_CLASSES[64, 0] = 3.0  # always detected, class 0, score sigmoid(3)
BRIGHT_LOGIT = 15.0  # anchor 28 class 1 reaches logit 5 (score sigmoid(5)) in bright images


class KnownHead(keras.layers.Layer):
    """Raw YOLOv8 head with known detections; anchor 28 fires only when the
    letterboxed image has a pixel >= 128 (pads are darker)."""

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")

    def call(self, pixels):
        batch = tf.shape(pixels)[0]
        bright = tf.cast(tf.reduce_max(pixels, axis=[1, 2, 3]) >= 128.0, tf.float32)
        raw_boxes = tf.tile(tf.constant(RAW_BOXES)[None] * self.gain, [batch, 1, 1])
        delta = np.zeros((ANCHORS, 2), np.float32)
        delta[28, 1] = BRIGHT_LOGIT
        raw_classes = RAW_CLASSES[None] + bright[:, None, None] * delta[None]
        return raw_boxes, raw_classes


def stand_in_model(size=SIZE):
    images = keras.Input((size, size, 3))
    raw_boxes, raw_classes = KnownHead()(images)
    return keras.Model(images, {"boxes": raw_boxes, "classes": raw_classes})


@pytest.fixture(scope="module")
def model():
    return stand_in_model()


def config(letterbox=None, fmt="xyxy", nms=NMS):
    return InferenceConfig(
        letterbox=letterbox or LetterboxConfig.kerascv(SIZE), nms=nms, bounding_box_format=fmt
    )


def expected_box(anchor, height, width, letterbox):
    """Letterboxed box of `anchor` mapped to the original image, clipped."""
    new_h, new_w, top, left = letterbox_geometry(
        height, width, letterbox.size, letterbox.pad_position
    )
    x1, y1, x2, y2 = LETTERBOXED[anchor]
    xs = np.clip((np.array([x1, x2]) - left) * width / new_w, 0, width)
    ys = np.clip((np.array([y1, y2]) - top) * height / new_h, 0, height)
    return [xs[0], ys[0], xs[1], ys[1]]


def images(batch_brightness, height, width):
    return np.stack(
        [np.full((height, width, 3), value, np.uint8) for value in batch_brightness]
    )


SIZES = [(480, 640), (640, 480), (1, 2000), (2000, 1), (17, 23), (SIZE, SIZE)]
LETTERBOXES = [LetterboxConfig.kerascv(SIZE), LetterboxConfig.ultralytics(SIZE)]


@pytest.mark.parametrize("letterbox", LETTERBOXES, ids=["bottom_right", "center"])
def test_known_boxes_at_odd_sizes(model, letterbox):
    e2e = build_end_to_end(model, config(letterbox))
    for height, width in SIZES:
        out = {k: v.numpy() for k, v in e2e.serve(images([255], height, width)).items()}
        assert out["num_detections"].tolist() == [2], (height, width)
        np.testing.assert_allclose(
            out["boxes"][0, :2],
            [expected_box(28, height, width, letterbox),
             expected_box(64, height, width, letterbox)],
            rtol=1e-5, atol=1e-3, err_msg=f"{(height, width)}",
        )
        np.testing.assert_allclose(out["confidence"][0, :2], 1 / (1 + np.exp([-5.0, -3.0])),
                                   rtol=1e-5)
        assert out["classes"][0].tolist() == [1, 0, -1, -1, -1]
        assert not out["boxes"][0, 2:].any() and not out["confidence"][0, 2:].any()


def test_hand_computed_boxes_for_a_one_row_image(model):
    # 1 x 2000 -> 1 x 64 letterboxed; centred: row 31. x scale 2000 / 64 = 31.25.
    centred = build_end_to_end(model, config(LetterboxConfig.ultralytics(SIZE)))
    out = centred.serve(images([255], 1, 2000))
    np.testing.assert_allclose(out["boxes"][0, :2], [[625, 0, 1625, 1], [250, 0, 750, 0]])
    bottom_right = build_end_to_end(model, config())
    out = bottom_right.serve(images([255], 1, 2000))
    np.testing.assert_allclose(out["boxes"][0, :2], [[625, 1, 1625, 1], [250, 1, 750, 1]])


@pytest.mark.parametrize("letterbox", LETTERBOXES, ids=["bottom_right", "center"])
def test_batch_of_four_with_different_counts(model, letterbox):
    e2e = build_end_to_end(model, config(letterbox))
    out = {k: v.numpy() for k, v in e2e.serve(images([255, 0, 200, 100], 17, 23)).items()}
    assert out["num_detections"].tolist() == [2, 1, 2, 1]
    box28, box64 = expected_box(28, 17, 23, letterbox), expected_box(64, 17, 23, letterbox)
    for b, expected in enumerate([[box28, box64], [box64], [box28, box64], [box64]]):
        n = len(expected)
        np.testing.assert_allclose(out["boxes"][b, :n], expected, rtol=1e-5, atol=1e-3)
        assert out["classes"][b].tolist() == ([1, 0] if n == 2 else [0]) + [-1] * (5 - n)


@pytest.mark.parametrize("fmt", [f for f in box_utils.FORMATS if f != "xyxy"])
def test_output_box_formats(model, fmt):
    reference = build_end_to_end(model, config()).serve(images([255], 17, 23))
    out = build_end_to_end(model, config(fmt=fmt)).serve(images([255], 17, 23))
    expected = box_utils.convert_format(
        reference["boxes"].numpy(), "xyxy", fmt, image_shape=(17, 23)
    )
    np.testing.assert_allclose(out["boxes"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not out["boxes"].numpy()[0, 2:].any()  # padding rows stay zero


def test_debug_outputs(model):
    e2e = build_end_to_end(model, config(LetterboxConfig.ultralytics(SIZE)), debug=True)
    out = e2e.serve(images([255, 0], 10, 40))
    assert list(out) == list(OUTPUT_NAMES) + ["pre_nms_boxes", "pre_nms_scores"]
    assert out["pre_nms_boxes"].shape == (2, ANCHORS, 4)
    assert out["pre_nms_scores"].shape == (2, ANCHORS, 2)
    # Unclipped: anchor 64's box starts above the image. 10 x 40 -> 16 x 64 at top 24.
    x1, y1, x2, y2 = LETTERBOXED[64]
    unclipped = [x1 * 40 / 64, (y1 - 24) * 10 / 16, x2 * 40 / 64, (y2 - 24) * 10 / 16]
    assert unclipped[1] == -10
    np.testing.assert_allclose(out["pre_nms_boxes"][1, 64], unclipped, rtol=1e-5)
    scores = out["pre_nms_scores"].numpy()
    np.testing.assert_allclose(scores[0, 28], 1 / (1 + np.exp([10.0, -5.0])), rtol=1e-5)
    np.testing.assert_allclose(scores[1, 28], 1 / (1 + np.exp([10.0, 10.0])), rtol=1e-5)


def test_signature_and_variables(model):
    e2e = build_end_to_end(model, config())
    function = e2e.serve.get_concrete_function()
    (spec,) = function.structured_input_signature[0]
    assert (spec.name == "images" and spec.dtype == tf.uint8
            and spec.shape.as_list() == [None] * 3 + [3])
    outputs = function.structured_outputs
    assert sorted(outputs) == sorted(OUTPUT_NAMES)
    assert {k: v.dtype for k, v in outputs.items()} == {
        "boxes": tf.float32, "confidence": tf.float32, "classes": tf.int32,
        "num_detections": tf.int32,
    }
    assert outputs["boxes"].shape.as_list() == [None, 5, 4]
    assert outputs["num_detections"].shape.as_list() == [None]
    assert e2e.model is model and e2e.config.nms == NMS


def test_saved_model_tracks_the_model_variables(model, tmp_path):
    e2e = build_end_to_end(model, config())
    # Keras 3 variables wrap tf.Variables; the module exposes those.
    assert len(e2e.variables) == len(model.weights) == 1
    tf.saved_model.save(e2e, str(tmp_path), signatures={"serving_default": e2e.serve})
    saved = [name for name, _ in tf.train.list_variables(str(tmp_path / "variables" / "variables"))]
    assert any("gain" in name for name in saved), saved
    loaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    batch = images([255, 0], 17, 23)
    got = loaded(images=tf.constant(batch))
    for name, value in e2e.serve(batch).items():
        np.testing.assert_array_equal(got[name].numpy(), value.numpy())


def test_rejects_models_that_are_not_yolov8():
    images_in = keras.Input((SIZE, SIZE, 3))
    flat = keras.layers.GlobalAveragePooling2D()(images_in)
    with pytest.raises(ValueError, match=r"raw head.*received \w*Tensor of shape \(None, 3\)"):
        build_end_to_end(keras.Model(images_in, flat), config())
    wrong_anchors = keras.Model(
        images_in,
        {
            "boxes": keras.layers.Reshape((80, 64))(keras.layers.Dense(80 * 64)(flat)),
            "classes": keras.layers.Reshape((80, 2))(keras.layers.Dense(160)(flat)),
        },
    )
    with pytest.raises(ValueError, match=r"boxes \[B, 84, 64\].*received boxes \(None, 80, 64\)"):
        build_end_to_end(wrong_anchors, config())
    with pytest.raises(ValueError, match=r"input shape \(None, 64, 64, 3\).*letterbox size 96"):
        build_end_to_end(stand_in_model(), config(LetterboxConfig.kerascv(96)))


def test_edgedet_yolov8_detector():
    from edgedet.models import YOLOV8Detector

    detector = YOLOV8Detector.from_preset(
        "tiny", num_classes=3, letterbox=LetterboxConfig.ultralytics(SIZE)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's letterbox is used: no warning
        e2e = build_end_to_end(detector, debug=True)
    assert e2e.config.letterbox == LetterboxConfig.ultralytics(SIZE)
    batch = np.random.default_rng(0).integers(0, 256, (2, 30, 50, 3), dtype=np.uint8)
    out = e2e.serve(batch)
    assert out["boxes"].shape == (2, 100, 4) and out["pre_nms_scores"].shape == (2, ANCHORS, 3)
    pixels, _ = letterbox(tf.constant(batch), e2e.config.letterbox)
    logits = detector(pixels, training=False)["classes"]
    np.testing.assert_allclose(out["pre_nms_scores"], tf.sigmoid(logits), atol=1e-5)
    with pytest.warns(UserWarning, match="differs from the one the model"):
        build_end_to_end(detector, config(LetterboxConfig.kerascv(SIZE)))


def test_kerascv_detector_scores_are_not_sigmoided_twice():
    keras_cv = pytest.importorskip("keras_cv")
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=[8, 8, 8, 8], stackwise_depth=[1, 1, 1, 1], include_rescaling=True
    )
    detector = keras_cv.models.YOLOV8Detector(
        num_classes=2, bounding_box_format="xyxy", backbone=backbone, fpn_depth=1
    )
    e2e = build_end_to_end(detector, config(), debug=True)
    assert e2e.classes_are_logits is False
    image = np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    out = e2e.serve(image)
    expected = detector(image.astype(np.float32), training=False)["classes"]
    np.testing.assert_allclose(out["pre_nms_scores"], expected, atol=1e-6)


def test_converts_to_onnx_with_dynamic_batch_and_size(model):
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    e2e = build_end_to_end(model, config(LetterboxConfig.ultralytics(SIZE)))
    proto, _ = tf2onnx.convert.from_function(
        e2e.serve, input_signature=e2e.serve.input_signature, opset=17
    )
    assert "NonMaxSuppression" in {node.op_type for node in proto.graph.node}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for batch in (images([255], 17, 23), images([255, 0, 255], 2000, 1)):
        got = dict(zip(names, session.run(None, {"images": batch})))
        for name, value in e2e.serve(batch).items():
            np.testing.assert_allclose(got[name], value.numpy(), atol=1e-4, err_msg=name)


def test_converts_to_tflite_builtins_with_dynamic_batch_and_size(model):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    e2e = build_end_to_end(model, config(LetterboxConfig.ultralytics(SIZE)))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [e2e.serve.get_concrete_function()], e2e
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = litert.Interpreter(model_content=converter.convert()).get_signature_runner()
    for batch in (images([255], 17, 23), images([255, 0, 255], 2000, 1)):
        got = runner(images=batch)
        assert sorted(got) == sorted(OUTPUT_NAMES)
        for name, value in e2e.serve(batch).items():
            np.testing.assert_allclose(got[name], value.numpy(), atol=1e-4, err_msg=name)
