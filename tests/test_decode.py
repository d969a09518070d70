"""Anchors and DFL decoding on hand-made raw tensors."""

import numpy as np
import pytest
import tensorflow as tf

from edgedet.decode import decode, make_anchors, num_anchors


def test_anchor_order_and_centres():
    centers, strides = make_anchors(64)
    assert centers.shape == (84, 2) and strides.shape == (84,)
    assert num_anchors(64) == 84
    # stride 8: 8 x 8 grid, row-major (x varies fastest), +0.5 cell offset.
    np.testing.assert_array_equal(centers[:3], [[4, 4], [12, 4], [20, 4]])
    np.testing.assert_array_equal(centers[8], [4, 12])
    np.testing.assert_array_equal(centers[63], [60, 60])
    # then stride 16 (4 x 4), then stride 32 (2 x 2).
    np.testing.assert_array_equal(centers[64], [8, 8])
    np.testing.assert_array_equal(centers[80:], [[16, 16], [48, 16], [16, 48], [48, 48]])
    np.testing.assert_array_equal(strides, [8] * 64 + [16] * 16 + [32] * 4)
    assert num_anchors(640) == 8400 and make_anchors(640)[0].shape == (8400, 2)


def test_anchors_non_square_and_bad_size():
    centers, _ = make_anchors((32, 64))
    assert centers.shape == (4 * 8 + 2 * 4 + 1 * 2, 2)
    np.testing.assert_array_equal(centers[7], [60, 4])
    with pytest.raises(ValueError, match="multiple of every stride"):
        make_anchors(40)


def _one_hot_logits(bins_ltrb, reg_max=16):
    logits = np.zeros((4, reg_max), np.float32)
    for side, index in enumerate(bins_ltrb):
        logits[side, index] = 100.0  # softmax == one-hot to float32 precision
    return logits.reshape(-1)


def test_one_hot_bins_give_exact_distances():
    raw_boxes = np.zeros((2, 84, 64), np.float32)
    raw_boxes[0, 0] = _one_hot_logits([1, 2, 3, 4])  # centre (4, 4), stride 8
    raw_boxes[0, 70] = _one_hot_logits([0, 15, 5, 1])  # stride 16: row 1, col 2 -> (40, 24)
    raw_boxes[1, 83] = _one_hot_logits([2, 2, 2, 2])  # stride 32: (48, 48)
    raw_classes = np.zeros((2, 84, 3), np.float32)
    boxes, scores = decode(tf.constant(raw_boxes), tf.constant(raw_classes), 64)
    boxes = boxes.numpy()
    np.testing.assert_allclose(boxes[0, 0], [4 - 8, 4 - 16, 4 + 24, 4 + 32], atol=1e-4)
    np.testing.assert_allclose(boxes[0, 70], [40 - 0, 24 - 240, 40 + 80, 24 + 16], atol=1e-4)
    np.testing.assert_allclose(boxes[1, 83], [48 - 64, 48 - 64, 48 + 64, 48 + 64], atol=1e-4)
    # all-zero logits: uniform bins, expectation 7.5 bins on every side.
    np.testing.assert_allclose(boxes[1, 0], [4 - 60, 4 - 60, 4 + 60, 4 + 60], atol=1e-4)
    np.testing.assert_allclose(boxes[1, 64], [8 - 120, 8 - 120, 8 + 120, 8 + 120], atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), 0.5)


def test_scores_sigmoid_or_passthrough():
    raw_classes = np.array([[[0.0, 2.0, -3.0]] * 84], np.float32)
    raw_boxes = np.zeros((1, 84, 64), np.float32)
    _, scores = decode(raw_boxes, raw_classes, 64)
    np.testing.assert_allclose(scores.numpy()[0, 0], 1 / (1 + np.exp([-0.0, -2.0, 3.0])), rtol=1e-6)
    probabilities = np.full((1, 84, 3), 0.25, np.float32)
    _, scores = decode(raw_boxes, probabilities, 64, classes_are_logits=False)
    np.testing.assert_array_equal(scores.numpy(), probabilities)


def test_dynamic_batch():
    @tf.function(input_signature=[tf.TensorSpec([None, 84, 64]), tf.TensorSpec([None, 84, 2])])
    def run(raw_boxes, raw_classes):
        return decode(raw_boxes, raw_classes, 64)

    boxes, scores = run(np.zeros((3, 84, 64), np.float32), np.zeros((3, 84, 2), np.float32))
    assert boxes.shape == (3, 84, 4) and scores.shape == (3, 84, 2)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\[B, 84, 64\].*received shape \(1, 80, 64\)"):
        decode(np.zeros((1, 80, 64), np.float32), np.zeros((1, 80, 2), np.float32), 64)
    with pytest.raises(ValueError, match="raw classes"):
        decode(np.zeros((1, 84, 64), np.float32), np.zeros((1, 80, 2), np.float32), 64)


def test_matches_kerascv_decoding():
    yolo = pytest.importorskip("keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector")
    rng = np.random.default_rng(0)
    raw_boxes = rng.normal(0, 3, (2, 84, 64)).astype(np.float32)
    anchor_points, stride_tensor = yolo.get_anchors(image_shape=(64, 64))
    expected = yolo.dist2bbox(
        yolo.decode_regression_to_boxes(tf.constant(raw_boxes)), anchor_points[None]
    ) * stride_tensor[:, None]
    boxes, _ = decode(raw_boxes, np.zeros((2, 84, 1), np.float32), 64)
    np.testing.assert_allclose(boxes.numpy(), np.asarray(expected), atol=1e-3)


@pytest.mark.parametrize("hw", [(384, 640), (96, 160), (32, 64)])
def test_anchors_in_graph_equal_the_constants(hw):
    from edgedet.decode import make_anchors_in_graph

    centers, strides = make_anchors(hw)
    got_centers, got_strides = make_anchors_in_graph(tf.constant(hw[0]), tf.constant(hw[1]))
    np.testing.assert_array_equal(got_centers, centers)
    np.testing.assert_array_equal(got_strides, strides)
    raw_boxes = tf.random.stateless_normal((1, len(strides), 64), seed=(1, 2))
    raw_classes = tf.zeros((1, len(strides), 2))
    static = decode(raw_boxes, raw_classes, hw)
    dynamic = decode(raw_boxes, raw_classes, (tf.constant(hw[0]), tf.constant(hw[1])))
    np.testing.assert_array_equal(dynamic[0], static[0])
