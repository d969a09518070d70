"""Batched, class-aware non-max suppression that converts everywhere.

Stage 4 of the end-to-end graph. The obvious TensorFlow ops do not survive
conversion: `tf.image.combined_non_max_suppression` has no ONNX or TFLite
builtin equivalent, the batched `tf.image.non_max_suppression_padded` is a
while-loop, and `tf.map_fn` over images becomes a loop in both. So this
module runs ONE single-image `NonMaxSuppressionV4` over the whole batch,
which tf2onnx turns into ONNX `NonMaxSuppression` and the TFLite converter
into the builtin `NON_MAX_SUPPRESSION_V4`:

1. every anchor scores its best class (`reduce_max`);
2. each image keeps its `pre_nms_topk` best anchors (`top_k`, sorted), and
   only those get their class (`argmax` over `[B, k, C]`, not `[B, A, C]`);
3. the boxes of all images are flattened into one list and shifted so that
   groups never overlap: by `batch_index * span` along y, and, when
   class-aware, by `class_id * span` along x, where `span` is the extent of
   all candidate boxes plus one pixel. The 2-D layout keeps coordinates
   small: with up to 80 classes and 80 images at 640 pixels they stay below
   ~2**17, so float32 rounding moves a corner by < 0.01 px, identically in
   every runtime since the shift is part of the graph;
4. one NMS runs over the `B * k` boxes with `max_output_size = B * k`.
   Its scores are the candidates' ranks within their image (k down to 1),
   not the confidences: equal confidences are then ordered the same way
   (lower anchor index first, as `top_k` orders them) by TensorFlow,
   ONNX Runtime and TFLite, whose NMS kernels break ties differently.
   Candidates under `confidence_threshold` get rank -1 and are dropped by
   the NMS's `score_threshold=0` (so weak boxes cost nothing);
5. the kept candidates are ranked within their image (`cumsum`), the first
   `max_detections` are kept and compacted into `[B, max_detections]` rows
   (`top_k` on the rank keys), padding rows being box 0, confidence 0,
   class -1.

Semantics: a detection needs `confidence >= confidence_threshold`; a box is
suppressed by a higher-ranked kept box of the same group when their IoU is
strictly greater than `iou_threshold`; rows are sorted by decreasing
confidence, ties by anchor index.

Converted ops (checked with tf2onnx 1.17 opset 17 / ONNX Runtime and the
TF 2.21 TFLite converter with builtins only, dynamic B, H, W): TopKV2,
GatherV2, NonMaxSuppressionV4 (ONNX `NonMaxSuppression`, TFLite
`NON_MAX_SUPPRESSION_V4`), ScatterNd, Cumsum, SelectV2, reductions.
"""

import numpy as np

from edgedet.config import NMSConfig

# Candidates per image that enter the NMS. Results are exact whenever at most
# this many anchors of an image pass the confidence threshold (always the case
# for a trained model at the usual thresholds); NMS cost grows with the square
# of the candidates of the whole batch.
DEFAULT_PRE_NMS_TOPK = 1000
# Names of the NMS candidates `[B, k, ...]` in the graph (and so in the ONNX):
# boxes (shifted by one constant, no group offsets), rank scores (-1 under
# the threshold), best class.
CANDIDATE_BOXES = "nms_candidate_boxes"
CANDIDATE_SCORES = "nms_candidate_scores"
CANDIDATE_CLASSES = "nms_candidate_classes"


def non_max_suppression(boxes, scores, config=None, pre_nms_topk=DEFAULT_PRE_NMS_TOPK):
    """Batched NMS with fixed-size, KerasCV-named outputs.

    Args:
        boxes: float32 tensor `[B, A, 4]`, xyxy (any pixel space). B may be
            dynamic; so may A (a rect letterbox body): the anchors are then
            padded with score -1 up to `pre_nms_topk` (never kept), so the
            candidate count stays static.
        scores: float32 tensor `[B, A, C]`, per-class scores in [0, 1].
        config: `NMSConfig`. Defaults to `NMSConfig()`.
        pre_nms_topk: int. Best anchors per image that enter the NMS (see
            the module docstring). Defaults to 1000.

    Returns:
        A dict of `boxes` float32 `[B, max_det, 4]` (same space as the input),
        `confidence` float32 `[B, max_det]`, `classes` int32 `[B, max_det]`
        and `num_detections` int32 `[B]`; rows are sorted by decreasing
        confidence, padding rows have box 0, confidence 0 and class -1.
    """
    import tensorflow as tf

    config = NMSConfig() if config is None else config
    if not isinstance(pre_nms_topk, int) or pre_nms_topk < 1:
        raise ValueError(f"Invalid pre_nms_topk: {pre_nms_topk!r}. Expected an int >= 1.")
    boxes = tf.cast(boxes, tf.float32)
    scores = tf.cast(scores, tf.float32)
    if boxes.shape.rank != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"Expected boxes of shape [B, A, 4], received shape {boxes.shape}.")
    if scores.shape.rank != 3 or scores.shape[1] != boxes.shape[1]:
        raise ValueError(
            f"Expected scores of shape [B, {boxes.shape[1]}, C], received shape {scores.shape}."
        )
    if boxes.shape[1] is None:
        boxes, scores = pad_anchors(boxes, scores, pre_nms_topk)
        anchors = tf.shape(boxes)[1]
    else:
        anchors = boxes.shape[1]
    max_det = config.max_detections
    k = pre_nms_topk if boxes.shape[1] is None else min(anchors, pre_nms_topk)
    batch = tf.shape(boxes)[0]

    # 1-2. Best score per anchor, the k best anchors of each image, then the
    # best class of those k only (an argmax over [B, A, C] costs OpenVINO
    # more than the whole NMS; over [B, k, C] it is k / A of that).
    best_score = tf.reduce_max(scores, axis=-1)
    top_score, top_index = tf.math.top_k(best_score, k=k, sorted=True)  # [B, k]
    batch_index = tf.range(batch)[:, None]  # [B, 1]
    flat_index = top_index + batch_index * anchors
    top_box = tf.gather(tf.reshape(boxes, [-1, 4]), flat_index)  # [B, k, 4]
    top_scores = tf.gather(tf.reshape(scores, [-1, scores.shape[-1]]), flat_index)  # [B, k, C]
    # The named tensor is an int32 Cast (ONNX ArgMax is int64), as the Gather was.
    top_class = tf.cast(tf.math.argmax(top_scores, axis=-1), tf.int32,
                        name=CANDIDATE_CLASSES)  # [B, k]

    # 3. Shift the groups apart (2-D layout: images along y, classes along x).
    low = tf.reduce_min(top_box)
    span = tf.reduce_max(top_box) - low + 1.0
    offset_y = tf.cast(batch_index, tf.float32) * span * tf.ones_like(top_score)
    if config.class_aware:
        offset_x = tf.cast(top_class, tf.float32) * span
    else:
        offset_x = tf.zeros_like(top_score)
    offsets = tf.stack([offset_x, offset_y, offset_x, offset_y], axis=-1)
    # Named so the TensorRT ONNX can run the same NMS per image
    # (`edgedet.exporters.trt_nms`): the candidates without the offsets.
    candidate_boxes = tf.subtract(top_box, low, name=CANDIDATE_BOXES)
    nms_boxes = tf.reshape(candidate_boxes + offsets, [-1, 4])

    # 4. One single-image NMS over the whole batch. Its scores are the ranks
    # within the image (k for the best candidate down to 1), so equal scores
    # cannot be ordered differently by different runtimes; candidates under
    # the threshold get -1 and are dropped by `score_threshold=0`.
    passed = top_score >= np.float32(config.confidence_threshold)
    rank_score = tf.cast(tf.range(k, 0, -1), tf.float32)[None] * tf.ones_like(top_score)
    candidate_scores = tf.where(passed, rank_score, -tf.ones_like(top_score),
                                name=CANDIDATE_SCORES)
    selected = _single_image_nms(
        nms_boxes,
        tf.reshape(candidate_scores, [-1]),
        max_output_size=batch * k,
        iou_threshold=float(config.iou_threshold),
        score_threshold=0.0,
    )
    kept = tf.scatter_nd(
        selected[:, None], tf.ones_like(selected), tf.reshape(batch * k, [1])
    )
    kept = tf.logical_and(tf.reshape(kept, [-1, k]) > 0, passed)

    # 5. Rank within each image (candidates are sorted by score), keep max_det.
    kept_int = tf.cast(kept, tf.int32)
    kept = tf.logical_and(kept, tf.cumsum(kept_int, axis=1) <= max_det)
    num_detections = tf.reduce_sum(tf.cast(kept, tf.int32), axis=1)
    keys = tf.where(kept, rank_score, tf.zeros_like(top_score))  # earlier = larger
    if k < max_det:
        keys = tf.pad(keys, [[0, 0], [0, max_det - k]])
    key_top, order = tf.math.top_k(keys, k=max_det, sorted=True)  # [B, max_det]
    valid = key_top > 0
    order = tf.minimum(order, k - 1) + batch_index * k
    out_boxes = tf.gather(tf.reshape(top_box, [-1, 4]), order)
    out_scores = tf.gather(tf.reshape(top_score, [-1]), order)
    out_classes = tf.gather(tf.reshape(top_class, [-1]), order)
    return {
        "boxes": tf.where(valid[..., None], out_boxes, tf.zeros_like(out_boxes)),
        "confidence": tf.where(valid, out_scores, tf.zeros_like(out_scores)),
        "classes": tf.where(valid, out_classes, -tf.ones_like(out_classes)),
        "num_detections": num_detections,
    }


def pad_anchors(boxes, scores, count):
    """Pads `[B, A, 4]` boxes and `[B, A, C]` scores (score -1) to at least `count` anchors."""
    import tensorflow as tf

    missing = tf.maximum(count - tf.shape(boxes)[1], 0)
    zero = missing * 0
    rows = tf.reshape(tf.stack([zero, zero, zero, missing, zero, zero]), [3, 2])
    padded = tf.pad(boxes, rows), tf.pad(scores, rows, constant_values=-1.0)
    for tensor, original in zip(padded, (boxes, scores)):
        tensor.set_shape(original.shape)  # The dynamic pad loses the static box and class widths.
    return padded


def _single_image_nms(boxes, scores, max_output_size, iou_threshold, score_threshold):
    """Indices (unique, in selection order) kept by one `NonMaxSuppressionV4`."""
    import tensorflow as tf

    selected, num_valid = tf.raw_ops.NonMaxSuppressionV4(
        boxes=boxes,
        scores=scores,
        max_output_size=max_output_size,
        iou_threshold=tf.constant(iou_threshold, tf.float32),
        score_threshold=tf.constant(score_threshold, tf.float32),
        pad_to_max_output_size=True,
    )
    return selected[:num_valid]


__all__ = ["DEFAULT_PRE_NMS_TOPK", "non_max_suppression"]
