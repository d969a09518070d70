"""Batched NMS on hand-made boxes, plus a randomized check against greedy NMS."""

import numpy as np
import pytest
import tensorflow as tf

from edgedet.config import NMSConfig
from edgedet.nms import non_max_suppression


def run(boxes, scores, pre_nms_topk=1000, **config):
    config = NMSConfig(**{"iou_threshold": 0.5, "confidence_threshold": 0.25, **config})
    out = non_max_suppression(
        tf.constant(boxes, tf.float32), tf.constant(scores, tf.float32), config, pre_nms_topk
    )
    return {name: value.numpy() for name, value in out.items()}


def one_image(rows, num_classes=2):
    """rows: (box, class, score) -> boxes [1, A, 4], scores [1, A, C]."""
    boxes = np.array([[box for box, _, _ in rows]], np.float32)
    scores = np.zeros((1, len(rows), num_classes), np.float32)
    for i, (_, cls, score) in enumerate(rows):
        scores[0, i, cls] = score
    return boxes, scores


# IoU([0, 0, 10, 10], [1, 1, 11, 11]) = 81 / 119 = 0.68.
A = [0, 0, 10, 10]
B = [1, 1, 11, 11]
FAR = [100, 100, 120, 130]


def test_class_aware_keeps_overlapping_boxes_of_different_classes():
    boxes, scores = one_image([(A, 0, 0.9), (B, 1, 0.8)])
    out = run(boxes, scores)
    assert out["num_detections"].tolist() == [2]
    np.testing.assert_array_equal(out["boxes"][0, :2], [A, B])
    np.testing.assert_allclose(out["confidence"][0, :2], [0.9, 0.8])
    assert out["classes"][0, :2].tolist() == [0, 1]

    agnostic = run(boxes, scores, class_aware=False)
    assert agnostic["num_detections"].tolist() == [1]
    np.testing.assert_array_equal(agnostic["boxes"][0, 0], A)
    assert agnostic["classes"][0, :2].tolist() == [0, -1]


def test_iou_threshold_is_strict_greater():
    boxes, scores = one_image([(A, 0, 0.9), (B, 0, 0.8)])
    assert run(boxes, scores, iou_threshold=0.6)["num_detections"].tolist() == [1]
    assert run(boxes, scores, iou_threshold=0.7)["num_detections"].tolist() == [2]


def test_confidence_threshold_keeps_equal_scores():
    boxes, scores = one_image([(A, 0, 0.5), (FAR, 1, np.nextafter(np.float32(0.5), 0))])
    out = run(boxes, scores, confidence_threshold=0.5)
    assert out["num_detections"].tolist() == [1]
    assert out["classes"][0, :2].tolist() == [0, -1]


def test_best_class_per_anchor():
    boxes = np.array([[A, FAR]], np.float32)
    scores = np.array([[[0.3, 0.9, 0.1], [0.6, 0.2, 0.7]]], np.float32)
    out = run(boxes, scores, max_detections=3)
    assert out["classes"][0].tolist() == [1, 2, -1]
    np.testing.assert_allclose(out["confidence"][0], [0.9, 0.7, 0.0])


def test_max_detections_truncates_and_pads():
    rows = [([20 * i, 0, 20 * i + 10, 10], i % 2, s)
            for i, s in enumerate([0.3, 0.9, 0.5, 0.7, 0.8])]
    boxes, scores = one_image(rows)
    out = run(boxes, scores, max_detections=3)
    assert out["num_detections"].tolist() == [3]
    np.testing.assert_allclose(out["confidence"][0], [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(out["boxes"][0], [rows[1][0], rows[4][0], rows[3][0]])
    # More rows than detections (and than anchors): padding rows.
    out = run(boxes, scores, max_detections=8)
    assert out["boxes"].shape == (1, 8, 4) and out["num_detections"].tolist() == [5]
    np.testing.assert_allclose(out["confidence"][0], [0.9, 0.8, 0.7, 0.5, 0.3, 0, 0, 0])
    assert out["classes"][0, 5:].tolist() == [-1, -1, -1]
    assert not out["boxes"][0, 5:].any()
    assert out["classes"].dtype == np.int32 and out["num_detections"].dtype == np.int32


def test_batch_images_never_suppress_each_other():
    # The same boxes in every image, with different scores per image.
    boxes = np.array([[A, B, FAR]] * 3, np.float32)
    scores = np.zeros((3, 3, 2), np.float32)
    scores[0, :, 0] = [0.9, 0.8, 0.7]  # B suppressed by A -> 2 detections
    scores[1, :, 0] = [0.1, 0.8, 0.2]  # only B passes -> 1
    scores[2, :, 0] = [0.0, 0.0, 0.0]  # nothing -> 0
    out = run(boxes, scores, max_detections=3)
    assert out["num_detections"].tolist() == [2, 1, 0]
    np.testing.assert_array_equal(out["boxes"][0, :2], [A, FAR])
    np.testing.assert_array_equal(out["boxes"][1, :1], [B])
    np.testing.assert_allclose(out["confidence"][:, :2], [[0.9, 0.7], [0.8, 0], [0, 0]])
    assert out["classes"][2].tolist() == [-1, -1, -1]


def test_ties_lower_anchor_index_wins():
    boxes, scores = one_image([(FAR, 0, 0.6), (B, 0, 0.6), (A, 0, 0.6)])
    out = run(boxes, scores)
    # FAR first (index 0), then B (index 1) suppresses A (index 2).
    assert out["num_detections"].tolist() == [2]
    np.testing.assert_array_equal(out["boxes"][0, :2], [FAR, B])


def test_pre_nms_topk_limits_candidates():
    rows = [([20 * i, 0, 20 * i + 10, 10], 0, 0.9 - 0.1 * i) for i in range(5)]
    boxes, scores = one_image(rows)
    out = run(boxes, scores, pre_nms_topk=2)
    assert out["num_detections"].tolist() == [2]
    np.testing.assert_allclose(out["confidence"][0, :3], [0.9, 0.8, 0.0])


def test_dynamic_batch_in_one_trace():
    config = NMSConfig(iou_threshold=0.5, max_detections=4)

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 4]), tf.TensorSpec([None, 3, 2])])
    def nms(boxes, scores):
        return non_max_suppression(boxes, scores, config)

    for batch in (1, 5):
        out = nms(np.array([[A, B, FAR]] * batch, np.float32),
                  np.full((batch, 3, 2), 0.5, np.float32))
        assert out["boxes"].shape == (batch, 4, 4)
        assert out["num_detections"].numpy().tolist() == [2] * batch


def test_rejects_bad_arguments():
    boxes, scores = one_image([(A, 0, 0.9)])
    with pytest.raises(ValueError, match="pre_nms_topk"):
        run(boxes, scores, pre_nms_topk=0)
    with pytest.raises(ValueError, match=r"\[B, A, 4\]"):
        non_max_suppression(tf.zeros((1, 3, 5)), tf.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match=r"\[B, 3, C\]"):
        non_max_suppression(tf.zeros((1, 3, 4)), tf.zeros((1, 4, 2)))


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def greedy_nms(boxes, scores, config):
    """Textbook greedy NMS, one image at a time (the test oracle)."""
    results = []
    for image_boxes, image_scores in zip(boxes, scores):
        best, classes = image_scores.max(-1), image_scores.argmax(-1)
        kept = []
        for i in np.argsort(-best, kind="stable"):
            if best[i] < config.confidence_threshold or len(kept) == config.max_detections:
                break
            if all(
                (config.class_aware and classes[j] != classes[i])
                or _iou(image_boxes[i], image_boxes[j]) <= config.iou_threshold
                for j in kept
            ):
                kept.append(i)
        results.append(kept)
    return results


@pytest.mark.parametrize("class_aware", [True, False])
def test_matches_greedy_nms_on_random_boxes(class_aware):
    rng = np.random.default_rng(1 if class_aware else 2)
    xy = rng.uniform(0, 100, (4, 300, 2))
    wh = rng.uniform(5, 40, (4, 300, 2))
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (4, 300, 3)).astype(np.float32) ** 3
    config = NMSConfig(
        iou_threshold=0.45, confidence_threshold=0.3, max_detections=30, class_aware=class_aware
    )
    out = run(boxes, scores, **config.to_dict())
    for b, kept in enumerate(greedy_nms(boxes, scores, config)):
        n = len(kept)
        assert out["num_detections"][b] == n
        np.testing.assert_array_equal(out["boxes"][b, :n], boxes[b, kept])
        np.testing.assert_array_equal(out["classes"][b, :n], scores[b, kept].argmax(-1))
        np.testing.assert_array_equal(out["confidence"][b, :n], scores[b, kept].max(-1))
    assert out["num_detections"].min() > 3  # the check is not vacuous


@pytest.mark.parametrize("pre_nms_topk", [50, 1000])
def test_dynamic_anchor_count_equals_static(pre_nms_topk):
    # A rect letterbox body gives a run-time anchor count: the anchors are padded
    # (score -1) up to pre_nms_topk, which must not change what is kept.
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (2, 300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (2, 300, 2))], -1).astype(np.float32)
    scores = (rng.uniform(0, 1, (2, 300, 3)) ** 3).astype(np.float32)
    config = NMSConfig(iou_threshold=0.45, confidence_threshold=0.0, max_detections=40)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None, 3])])
    def dynamic(boxes, scores):
        return non_max_suppression(boxes, scores, config, pre_nms_topk)

    expected = non_max_suppression(boxes, scores, config, pre_nms_topk)
    got = dynamic(boxes, scores)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
