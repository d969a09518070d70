"""Task-aligned assigner and YOLOv8 loss on hand-computed cases."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from edgedet.train.assigner import select_candidates_in_gts, task_aligned_assign  # noqa: E402
from edgedet.train.losses import (  # noqa: E402
    DetectionLoss,
    LossConfig,
    bbox2dist,
    distribution_focal_loss,
    trim_padding_columns,
)

# Four anchors on a 2x2 grid of an 8x8 image.
ANCHORS = np.array([[2, 2], [6, 2], [2, 6], [6, 6]], np.float32)


def _assign(scores, pd_boxes, labels, gt_boxes, mask, topk=2):
    out = task_aligned_assign(
        np.array([scores], np.float32), np.array([pd_boxes], np.float32), ANCHORS,
        np.array([labels], np.int32), np.array([gt_boxes], np.float32),
        np.array([mask], np.float32), topk=topk,
    )
    return {k: v.numpy()[0] for k, v in out.items()}


def test_candidates_are_anchors_strictly_inside():
    boxes = np.array([[[0, 0, 8, 8], [4, 0, 8, 4], [2, 2, 7, 7]]], np.float32)
    inside = select_candidates_in_gts(ANCHORS, boxes).numpy()[0]
    # The centre (2, 2) on the edge of [2, 2, 7, 7] is not strictly inside.
    np.testing.assert_array_equal(inside, [[1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 1]])


def test_assigner_hand_computed():
    # gt0 covers all anchors (class 1); gt1 only anchor 1 (class 0); row 2 is padding.
    gt_boxes = [[0, 0, 8, 8], [4, 0, 8, 4], [0, 0, 0, 0]]
    # Predicted boxes: anchors 0 and 2 predict gt0 exactly, anchor 1 predicts
    # gt1 exactly (CIoU with gt0 = 0.25 - 8/128 = 0.1875), anchor 3 is far away.
    pd_boxes = [[0, 0, 8, 8], [4, 0, 8, 4], [0, 0, 8, 8], [20, 20, 24, 24]]
    scores = [[0.1, 0.64], [0.81, 0.25], [0.5, 0.36], [0.5, 0.16]]
    out = _assign(scores, pd_boxes, [1, 0, -1], gt_boxes, [1, 1, 0])
    # gt0 metrics: a0 sqrt(.64)*1 = .8, a1 sqrt(.25)*.1875^6 ~ 2e-5, a2 .6, a3 0
    # -> top-2 {a0, a2}; gt1: a1 sqrt(.81) = .9. Normalised by the best metric
    # of each box times its best IoU (1): a0 1, a2 .6/.8 = .75, a1 1.
    np.testing.assert_array_equal(out["fg_mask"], [True, True, True, False])
    np.testing.assert_array_equal(out["gt_index"][:3], [0, 1, 0])
    np.testing.assert_array_equal(out["labels"][:3], [1, 0, 1])
    np.testing.assert_allclose(
        out["scores"], [[0, 1], [1, 0], [0, 0.75], [0, 0]], atol=1e-5
    )
    np.testing.assert_allclose(out["bboxes"][:3], [gt_boxes[0], gt_boxes[1], gt_boxes[0]])


def test_assigner_anchor_claimed_twice_keeps_the_best_overlap():
    # Both boxes contain anchor 0 and pick it; it predicts gt1 exactly
    # (CIoU 1) but gt0 only partly (IoU 36/64 minus centre term 2/128).
    gt_boxes = [[0, 0, 8, 8], [0, 0, 6, 6]]
    pd_boxes = [[0, 0, 6, 6], [20, 20, 24, 24], [20, 20, 24, 24], [20, 20, 24, 24]]
    scores = [[0.25, 0.49], [0.1, 0.1], [0.1, 0.1], [0.1, 0.1]]
    out = _assign(scores, pd_boxes, [1, 0], gt_boxes, [1, 1], topk=1)
    np.testing.assert_array_equal(out["fg_mask"], [True, False, False, False])
    assert out["gt_index"][0] == 1 and out["labels"][0] == 0
    # Its own box's metric is the best of that box: normalised to IoU 1.
    np.testing.assert_allclose(out["scores"][0], [1.0, 0.0], atol=1e-5)


def test_assigner_without_boxes_assigns_nothing():
    out = _assign([[0.9, 0.9]] * 4, [[0, 0, 8, 8]] * 4, [-1, -1], [[0, 0, 0, 0]] * 2, [0, 0])
    assert not out["fg_mask"].any()
    assert not out["scores"].any()


def test_dfl_hand_computed():
    # Uniform logits over 4 bins: both cross-entropies are ln 4, whatever the target.
    loss = distribution_focal_loss(tf.zeros([1, 16]), tf.constant([[1.3, 0.0, 2.5, 2.98]]),
                                   reg_max=4)
    np.testing.assert_allclose(loss.numpy(), [math.log(4)], rtol=1e-6)
    # Target 1.25 with probabilities (.1, .6, .2, .1): .75 * -ln .6 + .25 * -ln .2.
    logits = np.log(np.array([0.1, 0.6, 0.2, 0.1], np.float32))
    loss = distribution_focal_loss(tf.constant(np.tile(logits, 4)[None]),
                                   tf.constant([[1.25] * 4]), reg_max=4)
    expected = 0.75 * -math.log(0.6) + 0.25 * -math.log(0.2)
    np.testing.assert_allclose(loss.numpy(), [expected], rtol=1e-5)


def test_bbox2dist_clips_to_the_last_bin():
    ltrb = bbox2dist(tf.constant([[2.0, 2.0]]), tf.constant([[0.0, 1.0, 30.0, 3.0]]), 15.0)
    np.testing.assert_allclose(ltrb.numpy(), [[2.0, 1.0, 14.99, 1.0]], rtol=1e-6)


def _perfect_outputs(loss_fn, gt_box, gt_class, num_classes, logit=30.0):
    """Raw head whose DFL decodes every anchor to `gt_box` where that is exact."""
    anchors, strides = loss_fn.anchor_grid, loss_fn.strides
    box = np.asarray(gt_box, np.float32)
    ltrb = np.concatenate([anchors - box[:2] / strides, box[2:] / strides - anchors], 1)
    bins = np.clip(np.round(ltrb), 0, 15).astype(int)
    raw = np.full((len(anchors), 4, 16), -logit, np.float32)
    for a in range(len(anchors)):
        for side in range(4):
            raw[a, side, bins[a, side]] = logit
    classes = np.full((len(anchors), num_classes), -logit, np.float32)
    return {"boxes": tf.constant(raw.reshape(1, -1, 64)), "classes": tf.constant(classes[None])}


def test_loss_is_near_zero_for_exact_boxes_and_counts_classes():
    # The 3x3 stride-8 anchors inside decode exactly; topk=9 keeps only them.
    loss_fn = DetectionLoss(image_size=64, num_classes=2, config=LossConfig(topk=9))
    # Edges at 4 + 8k: whole-bin distances from the stride-8 anchor centres (8k + 4).
    gt_box = [4.0, 4.0, 36.0, 36.0]
    labels = {"boxes": tf.constant([[gt_box, [0, 0, 0, 0]]]),
              "classes": tf.constant([[1, -1]])}
    outputs = _perfect_outputs(loss_fn, gt_box, 1, 2)
    total, parts = loss_fn(labels, outputs)
    assert parts["box_loss"].numpy() < 1e-4
    assert parts["dfl_loss"].numpy() < 1e-4
    # Class logits are -30 everywhere: BCE of a positive with soft target t
    # is about 30 t; the sum over positives is 30 * sum(t), divided by sum(t).
    np.testing.assert_allclose(parts["cls_loss"].numpy(), 0.5 * 30.0, rtol=1e-3)
    np.testing.assert_allclose(total.numpy(), sum(p.numpy() for p in parts.values()), rtol=1e-6)


def test_loss_weights_scale_each_term():
    labels = {"boxes": tf.constant([[[8.0, 8.0, 30.0, 44.0]]]), "classes": tf.constant([[0]])}
    rng = np.random.default_rng(0)
    outputs = {"boxes": tf.constant(rng.normal(size=(1, 84, 64)), tf.float32),
               "classes": tf.constant(rng.normal(size=(1, 84, 3)), tf.float32)}
    _, base = DetectionLoss(64, 3, config=LossConfig(box=1, cls=1, dfl=1))(labels, outputs)
    _, weighted = DetectionLoss(64, 3)(labels, outputs)
    for key, weight in (("box_loss", 7.5), ("cls_loss", 0.5), ("dfl_loss", 1.5)):
        np.testing.assert_allclose(weighted[key].numpy(), weight * base[key].numpy(), rtol=1e-5)
        assert base[key].numpy() > 0


def test_loss_without_objects_is_only_the_class_term():
    loss_fn = DetectionLoss(64, 2)
    labels = {"boxes": tf.zeros([2, 3, 4]), "classes": -tf.ones([2, 3], tf.int32)}
    outputs = {"boxes": tf.zeros([2, 84, 64]), "classes": tf.zeros([2, 84, 2])}
    total, parts = loss_fn(labels, outputs)
    assert parts["box_loss"].numpy() == 0 and parts["dfl_loss"].numpy() == 0
    # All targets 0, logits 0: BCE ln 2 per entry, divided by max(sum, 1) = 1.
    np.testing.assert_allclose(total.numpy(), 0.5 * 2 * 84 * 2 * math.log(2), rtol=1e-5)


def test_trimming_padding_columns_keeps_every_box_and_the_loss():
    # Image 0 has a padding row between two boxes; image 1 one box; 6 columns.
    boxes = np.zeros((2, 6, 4), np.float32)
    boxes[0, 0], boxes[0, 2], boxes[1, 0] = [8, 8, 30, 44], [20, 4, 60, 30], [2, 30, 40, 62]
    classes = np.full((2, 6), -1, np.int32)
    classes[0, 0], classes[0, 2], classes[1, 0] = 0, 2, 1
    trimmed_boxes, trimmed_classes = trim_padding_columns(tf.constant(boxes),
                                                          tf.constant(classes))
    np.testing.assert_array_equal(trimmed_classes.numpy(), classes[:, :3])
    np.testing.assert_array_equal(trimmed_boxes.numpy(), boxes[:, :3])
    empty = trim_padding_columns(tf.zeros([2, 6, 4]), -tf.ones([2, 6], tf.int32))[1]
    assert empty.shape == (2, 1)

    rng = np.random.default_rng(1)
    outputs = {"boxes": tf.constant(rng.normal(size=(2, 84, 64)), tf.float32),
               "classes": tf.constant(rng.normal(size=(2, 84, 3)), tf.float32)}
    labels = {"boxes": tf.constant(boxes), "classes": tf.constant(classes)}
    full, full_parts = DetectionLoss(64, 3, trim_padding=False)(labels, outputs)
    trimmed, trimmed_parts = DetectionLoss(64, 3, trim_padding=True)(labels, outputs)
    np.testing.assert_allclose(trimmed.numpy(), full.numpy(), rtol=1e-6)
    for key in full_parts:
        np.testing.assert_allclose(trimmed_parts[key].numpy(), full_parts[key].numpy(),
                                   rtol=1e-6)
    assert full_parts["box_loss"].numpy() > 0
