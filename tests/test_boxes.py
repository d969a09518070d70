"""Tests for edgedet.boxes: formats, conversions, IoU and CIoU."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from edgedet import boxes as B

# One box, xyxy [10, 20, 30, 60], in an image of height 100 and width 200,
# written by hand in every format.
IMAGE_SHAPE = (100, 200)
KNOWN = {
    "xyxy": [10, 20, 30, 60],
    "yxyx": [20, 10, 60, 30],
    "xywh": [10, 20, 20, 40],
    "center_xywh": [20, 40, 20, 40],
    "center_yxhw": [40, 20, 40, 20],
    "rel_xyxy": [0.05, 0.2, 0.15, 0.6],
    "rel_yxyx": [0.2, 0.05, 0.6, 0.15],
    "rel_xywh": [0.05, 0.2, 0.1, 0.4],
    "rel_center_xywh": [0.1, 0.4, 0.1, 0.4],
}
PAIRS = list(itertools.product(B.FORMATS, B.FORMATS))


def test_formats_are_the_keras_names():
    assert set(KNOWN) == set(B.FORMATS)
    assert B.check_format("center_xywh") == "center_xywh"
    assert B.is_relative("rel_xywh") and not B.is_relative("xywh")


def test_import_does_not_import_tensorflow():
    code = "import sys, edgedet.boxes, edgedet.detections; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bad", ["xyWH", "xyxz", "corners", "", 3, None])
def test_unknown_format_error_lists_valid_names(bad):
    with pytest.raises(ValueError) as info:
        B.check_format(bad)
    message = str(info.value)
    assert repr(bad) in message and "rel_center_xywh" in message


def test_unknown_format_suggests_close_match():
    with pytest.raises(ValueError, match="Did you mean 'xywh'"):
        B.convert_format([[0, 0, 1, 1]], "xyWH", "xyxy")
    with pytest.raises(ValueError, match="Did you mean 'center_yxhw'"):
        B.convert_format([[0, 0, 1, 1]], "xyxy", "centre_yxhw")


@pytest.mark.parametrize("source,target", PAIRS)
def test_known_values_numpy(source, target):
    got = B.convert_format(np.array([KNOWN[source]]), source, target, image_shape=IMAGE_SHAPE)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, [KNOWN[target]], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("source,target", PAIRS)
def test_round_trip_numpy(source, target):
    rng = np.random.default_rng(0)
    xyxy = np.sort(rng.uniform(0, 100, size=(3, 5, 2, 2)), axis=-2).transpose(0, 1, 3, 2)
    xyxy = xyxy.reshape(3, 5, 4)  # [x1, y1, x2, y2], x1 <= x2, y1 <= y2
    start = B.convert_format(xyxy, "xyxy", source, image_shape=(120, 160), dtype="float64")
    there = B.convert_format(start, source, target, image_shape=(120, 160), dtype="float64")
    back = B.convert_format(there, target, source, image_shape=(120, 160), dtype="float64")
    assert back.shape == (3, 5, 4) and back.dtype == np.float64
    np.testing.assert_allclose(back, start, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("source,target", PAIRS)
def test_round_trip_and_known_values_tf(source, target):
    tf = pytest.importorskip("tensorflow")
    boxes = tf.constant([[KNOWN[source], KNOWN[source]]], tf.float32)  # [1, 2, 4]
    there = B.convert_format(boxes, source, target, image_shape=IMAGE_SHAPE)
    assert tf.is_tensor(there) and there.dtype == tf.float32
    np.testing.assert_allclose(there.numpy(), [[KNOWN[target]] * 2], rtol=1e-6, atol=1e-6)
    back = B.convert_format(there, target, source, image_shape=IMAGE_SHAPE)
    np.testing.assert_allclose(back.numpy(), boxes.numpy(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("fmt", [f for f in B.FORMATS if not f.startswith("rel_")])
def test_matches_keras_cv(fmt):
    keras_cv = pytest.importorskip("keras_cv")
    rng = np.random.default_rng(1)
    boxes = rng.uniform(0, 50, size=(2, 4, 4)).astype(np.float32)
    for target in ("xyxy", "rel_yxyx", "center_yxhw"):
        ours = B.convert_format(boxes, fmt, target, image_shape=(64, 80))
        theirs = keras_cv.bounding_box.convert_format(
            boxes, source=fmt, target=target, image_shape=(64, 80, 3)
        )
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-5)


def test_relative_formats_need_the_image_size():
    with pytest.raises(ValueError, match="'rel_xyxy' to 'xyxy' needs the image size"):
        B.convert_format([[0, 0, 1, 1]], "rel_xyxy", "xyxy")
    with pytest.raises(ValueError, match="needs the image size"):
        B.convert_format([[0, 0, 1, 1]], "xywh", "rel_center_xywh")
    # Relative to relative needs none.
    got = B.convert_format([KNOWN["rel_xyxy"]], "rel_xyxy", "rel_center_xywh")
    np.testing.assert_allclose(got, [KNOWN["rel_center_xywh"]], atol=1e-7)
    with pytest.raises(ValueError, match="not both"):
        B.convert_format([[0, 0, 1, 1]], "rel_xyxy", "xyxy", np.zeros((2, 2, 3)), (2, 2))
    with pytest.raises(ValueError, match="image_shape"):
        B.convert_format([[0, 0, 1, 1]], "rel_xyxy", "xyxy", image_shape=(2,))


def test_relative_with_images_uses_height_and_width():
    images = np.zeros((2, 100, 200, 3), np.uint8)
    boxes = np.array([[KNOWN["rel_xywh"]], [KNOWN["rel_xywh"]]])
    got = B.convert_format(boxes, "rel_xywh", "xyxy", images=images)
    np.testing.assert_allclose(got, [[KNOWN["xyxy"]]] * 2, rtol=1e-6)
    # image_shape with channels, as KerasCV takes it.
    got = B.convert_format(boxes[0], "rel_xywh", "xyxy", image_shape=(100, 200, 3))
    np.testing.assert_allclose(got, [KNOWN["xyxy"]], rtol=1e-6)


def test_tf_function_with_dynamic_image_size():
    tf = pytest.importorskip("tensorflow")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 4], tf.float32),
            tf.TensorSpec([None, None, None, 3], tf.uint8),
        ]
    )
    def to_relative(boxes, images):
        return B.convert_format(boxes, "xyxy", "rel_yxyx", images=images)

    got = to_relative(
        tf.constant([[KNOWN["xyxy"]]], tf.float32), tf.zeros((1, 100, 200, 3), tf.uint8)
    )
    np.testing.assert_allclose(got.numpy(), [[KNOWN["rel_yxyx"]]], rtol=1e-6)


def test_bad_box_shapes():
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 4\], received shape \(2, 3\)"):
        B.convert_format(np.zeros((2, 3)), "xyxy", "xywh")
    with pytest.raises(ValueError, match="received shape"):
        B.compute_iou(np.zeros(4), np.zeros((1, 5)))


# ---------------------------------------------------------------- IoU


def test_iou_hand_computed():
    a = [[0, 0, 2, 2]]
    b = [
        [1, 1, 3, 3],  # overlap 1, union 7
        [0, 0, 2, 2],  # identical
        [5, 5, 6, 6],  # disjoint
        [2, 0, 4, 2],  # touching edge
        [0.5, 0.5, 1.5, 1.5],  # contained: 1 / 4
        [0, 0, 4, 4],  # contains: 4 / 16
        [1, 1, 1, 1],  # zero area inside
    ]
    expected = [[1 / 7, 1, 0, 0, 0.25, 0.25, 0]]
    got = B.compute_iou(a, b)
    assert got.shape == (1, 7)
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_iou_zero_area_pairs_are_zero_not_nan():
    z = [[3, 3, 3, 3], [1, 1, 1, 5]]
    got = B.compute_iou(z, z)
    assert np.all(np.isfinite(got)) and np.all(got == 0)


def test_iou_other_formats_and_batch():
    a = B.convert_format([[0, 0, 2, 2], [0, 0, 1, 1]], "xyxy", "center_yxhw")
    b = B.convert_format([[1, 1, 3, 3]], "xyxy", "center_yxhw")
    np.testing.assert_allclose(B.compute_iou(a, b, "center_yxhw"), [[1 / 7], [0]], atol=1e-7)
    rel = B.convert_format([[0, 0, 2, 2], [1, 1, 3, 3]], "xyxy", "rel_xywh", image_shape=(3, 7))
    np.testing.assert_allclose(B.compute_iou(rel, rel, "rel_xywh")[0, 1], 1 / 7, rtol=1e-6)
    batch = np.stack([np.array([[0, 0, 2, 2.0]]), np.array([[1, 1, 3, 3.0]])])  # [2, 1, 4]
    got = B.compute_iou(batch, np.array([[1, 1, 3, 3.0]]))
    assert got.shape == (2, 1, 1)
    np.testing.assert_allclose(got[:, 0, 0], [1 / 7, 1], atol=1e-7)


def test_iou_matches_keras_cv_and_tf():
    keras_cv = pytest.importorskip("keras_cv")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 50, size=(9, 2))
    wh = rng.uniform(1, 30, size=(9, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    ours = B.compute_iou(boxes[:4], boxes[4:])
    theirs = keras_cv.bounding_box.compute_iou(boxes[:4], boxes[4:], "xyxy")
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-6)
    as_tensor = B.compute_iou(tf.constant(boxes[:4]), tf.constant(boxes[4:]))
    assert tf.is_tensor(as_tensor)
    np.testing.assert_allclose(as_tensor.numpy(), ours, rtol=1e-6)


# ---------------------------------------------------------------- CIoU


def _ciou_aspect_case():
    # w 4 h 2 versus w 2 h 4, same corner: IoU 4 / 12; centres (2, 1) and
    # (1, 2): rho^2 = 2; enclosing box 4 x 4: c^2 = 32.
    iou = 1 / 3
    v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(4 / 2)) ** 2
    alpha = v / (v - iou + 1)
    return iou - 2 / 32 - alpha * v


CIOU_CASES = [
    ([0, 0, 2, 2], [0, 0, 2, 2], 1.0),  # identical
    ([0, 0, 2, 2], [1, 1, 3, 3], 1 / 7 - 2 / 18),  # shifted, same shape: v = 0
    ([0, 0, 1, 1], [2, 0, 3, 1], 0 - 4 / 10),  # disjoint: rho^2 4, c^2 9 + 1
    ([0, 0, 4, 4], [1, 1, 3, 3], 0.25),  # contained, same centre and shape
    ([0, 0, 4, 2], [0, 0, 2, 4], _ciou_aspect_case()),
]


def test_ciou_hand_computed_numpy():
    a = np.array([c[0] for c in CIOU_CASES], np.float32)
    b = np.array([c[1] for c in CIOU_CASES], np.float32)
    got = B.compute_ciou(a, b)
    assert isinstance(got, np.ndarray) and got.shape == (len(CIOU_CASES),)
    np.testing.assert_allclose(got, [c[2] for c in CIOU_CASES], atol=1e-5)
    # Symmetric.
    np.testing.assert_allclose(B.compute_ciou(b, a), got, atol=1e-6)


def test_ciou_zero_area_is_finite():
    got = B.compute_ciou([[1, 1, 1, 1], [0, 0, 0, 0]], [[1, 1, 1, 1], [0, 0, 2, 2]])
    assert np.all(np.isfinite(got))
    assert got[1] < 0  # no overlap, centres apart


def test_ciou_tf_values_and_gradients():
    tf = pytest.importorskip("tensorflow")
    a = tf.Variable([c[0] for c in CIOU_CASES], dtype=tf.float32)
    b = tf.constant([c[1] for c in CIOU_CASES], tf.float32)
    with tf.GradientTape() as tape:
        ciou = B.compute_ciou(a, b)
        loss = tf.reduce_sum(1 - ciou)
    np.testing.assert_allclose(ciou.numpy(), [c[2] for c in CIOU_CASES], atol=1e-5)
    grad = tape.gradient(loss, a)
    assert grad is not None and np.all(np.isfinite(grad.numpy()))
    # a = [0, 0, 2, 2], b = [1, 1, 3, 3]: moving any edge of a toward b
    # (increasing it) raises the IoU and brings the centres closer.
    assert np.all(grad.numpy()[1] < 0)


def test_ciou_broadcasts_and_other_formats():
    a = B.convert_format([[0, 0, 4, 2]], "xyxy", "center_xywh")
    b = B.convert_format([[0, 0, 2, 4], [0, 0, 4, 2]], "xyxy", "center_xywh")
    got = B.compute_ciou(a, b, bounding_box_format="center_xywh")
    np.testing.assert_allclose(got, [_ciou_aspect_case(), 1.0], atol=1e-5)
