"""Task-aligned assigner (TOOD), as Ultralytics' `TaskAlignedAssigner`.

For every ground-truth box, the anchors whose centre lies inside it are
scored by the alignment metric `t = s^alpha * u^beta` (`s`: the predicted
probability of the box's class, `u`: the CIoU of the predicted box with the
ground truth, clamped at 0); the `topk` best become positives. An anchor
claimed by several boxes keeps the one it overlaps most. The classification
target of a positive is its class one-hot, scaled by its metric normalised
per box so that the best anchor of a box gets that box's best IoU.

Dense TensorFlow ops on padded ground truth (no Python loops), batched.
"""

from edgedet.boxes import compute_ciou


def select_candidates_in_gts(anchor_points, gt_bboxes, eps=1e-9):
    """Anchors whose centre lies strictly inside each box.

    Args:
        anchor_points: float `[A, 2]` anchor centres `(x, y)` in pixels.
        gt_bboxes: float `[B, M, 4]` xyxy in pixels.
        eps: float. Margin. Defaults to 1e-9.

    Returns:
        float32 `[B, M, A]`: 1 inside, 0 outside.
    """
    import tensorflow as tf

    xy = anchor_points[None, None]  # [1, 1, A, 2]
    top_left = xy - gt_bboxes[:, :, None, :2]
    bottom_right = gt_bboxes[:, :, None, 2:] - xy
    deltas = tf.concat([top_left, bottom_right], axis=-1)
    return tf.cast(tf.reduce_min(deltas, axis=-1) > eps, tf.float32)


def task_aligned_assign(
    pd_scores,
    pd_bboxes,
    anchor_points,
    gt_labels,
    gt_bboxes,
    mask_gt,
    topk=10,
    alpha=0.5,
    beta=6.0,
    eps=1e-9,
):
    """Assigns ground truth to anchors; returns the training targets.

    Args:
        pd_scores: float `[B, A, C]` predicted class probabilities (no
            gradient needed).
        pd_bboxes: float `[B, A, 4]` predicted xyxy boxes in pixels.
        anchor_points: float `[A, 2]` anchor centres in pixels.
        gt_labels: int `[B, M]` class ids (padding rows: any value).
        gt_bboxes: float `[B, M, 4]` xyxy in pixels.
        mask_gt: float or bool `[B, M]`: 1 for real boxes, 0 for padding.
        topk: int. Candidates per box. Defaults to 10.
        alpha: float. Exponent of the class score. Defaults to 0.5.
        beta: float. Exponent of the IoU. Defaults to 6.0.
        eps: float. Defaults to 1e-9.

    Returns:
        dict: `"labels"` int32 `[B, A]`, `"bboxes"` float32 `[B, A, 4]`,
        `"scores"` float32 `[B, A, C]` (soft class targets), `"fg_mask"`
        bool `[B, A]`, `"gt_index"` int32 `[B, A]` (the assigned box).
    """
    import tensorflow as tf

    pd_scores = tf.stop_gradient(tf.cast(pd_scores, tf.float32))
    pd_bboxes = tf.stop_gradient(tf.cast(pd_bboxes, tf.float32))
    anchor_points = tf.cast(anchor_points, tf.float32)
    gt_bboxes = tf.cast(gt_bboxes, tf.float32)
    num_classes = pd_scores.shape[-1]
    num_anchors = tf.shape(pd_scores)[1]
    num_boxes = tf.shape(gt_bboxes)[1]
    gt_labels = tf.clip_by_value(tf.cast(gt_labels, tf.int32), 0, num_classes - 1)
    mask_gt = tf.cast(mask_gt, tf.float32)[:, :, None]  # [B, M, 1]

    mask_in_gts = select_candidates_in_gts(anchor_points, gt_bboxes)
    candidate = mask_in_gts * mask_gt  # [B, M, A]
    # Class score of each anchor for each box's class: [B, M, A].
    scores = tf.gather(tf.transpose(pd_scores, [0, 2, 1]), gt_labels, batch_dims=1)
    overlaps = compute_ciou(gt_bboxes[:, :, None, :], pd_bboxes[:, None, :, :], eps=1e-7)
    overlaps = tf.maximum(overlaps, 0.0) * candidate
    scores = scores * candidate
    align_metric = tf.pow(scores, alpha) * tf.pow(overlaps, beta)

    k = tf.minimum(topk, num_anchors)
    _, top_indices = tf.math.top_k(align_metric, k=k)  # [B, M, k], distinct per row
    # Scatter ones at the top-k anchors of every box (top_k never repeats an
    # index, so Ultralytics' "count > 1" case only concerns padding rows,
    # which `mask_gt` removes).
    shape = tf.shape(top_indices)
    b_index = tf.broadcast_to(tf.range(shape[0])[:, None, None], shape)
    m_index = tf.broadcast_to(tf.range(shape[1])[None, :, None], shape)
    indices = tf.stack([b_index, m_index, top_indices], axis=-1)
    mask_topk = tf.scatter_nd(
        tf.reshape(indices, [-1, 3]), tf.ones([tf.size(top_indices)], tf.float32),
        tf.shape(align_metric),
    )
    mask_topk = mask_topk * mask_gt
    mask_pos = mask_topk * mask_in_gts * mask_gt  # [B, M, A]

    # An anchor claimed by several boxes keeps the one it overlaps most.
    fg_count = tf.reduce_sum(mask_pos, axis=1)  # [B, A]
    multi = (fg_count > 1)[:, None, :]
    best = tf.one_hot(tf.argmax(overlaps, axis=1), num_boxes, axis=1, dtype=tf.float32)
    mask_pos = tf.where(multi, best, mask_pos)
    fg_mask = tf.reduce_sum(mask_pos, axis=1) > 0  # [B, A]
    gt_index = tf.cast(tf.argmax(mask_pos, axis=1), tf.int32)  # [B, A]

    labels = tf.gather(gt_labels, gt_index, batch_dims=1)  # [B, A]
    bboxes = tf.gather(gt_bboxes, gt_index, batch_dims=1)  # [B, A, 4]
    target_scores = tf.one_hot(labels, num_classes, dtype=tf.float32)
    target_scores = target_scores * tf.cast(fg_mask, tf.float32)[..., None]

    align_metric = align_metric * mask_pos
    pos_align = tf.reduce_max(align_metric, axis=-1, keepdims=True)  # [B, M, 1]
    pos_overlaps = tf.reduce_max(overlaps * mask_pos, axis=-1, keepdims=True)
    norm = tf.reduce_max(align_metric * pos_overlaps / (pos_align + eps), axis=1)  # [B, A]
    target_scores = target_scores * norm[..., None]
    return {
        "labels": labels,
        "bboxes": bboxes,
        "scores": target_scores,
        "fg_mask": fg_mask,
        "gt_index": gt_index,
    }
