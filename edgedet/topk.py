"""One-to-one (NMS-free) selection: the stage that replaces the NMS for YOLO26's head.

Stage 4 of the end-to-end graph when `InferenceConfig.head` is `"one2one"`
(`edgedet.nms` otherwise). A one-to-one head is trained to give each object
one anchor, so no NMS is needed: Ultralytics' `Detect.postprocess`
(`get_topk_index`, `nn/modules/head.py`) keeps the best pairs directly:

1. each anchor scores its best class; the `k = min(max_det, A)` best anchors
   are kept (`top_k`, sorted);
2. over those `k x C` (anchor, class) pairs, the `k` best (`top_k` again):
   pair `i` is anchor slot `i // C`, class `i - (i // C) * C`. The class index
   is an integer floor division and a subtraction, never an ONNX `Mod`, which
   TensorRT before 8.5 cannot parse (ultralytics#24607). These `k` pairs are
   exactly the `k` best of all `A x C` pairs: a pair outside the `k` best
   anchors has `k` anchors scoring above it;
3. pairs under `confidence_threshold` become padding (`>=` keeps, as the NMS
   does; Ultralytics' predictor keeps `>`).

With `class_aware=False` (Ultralytics' `agnostic_nms`) an anchor gives at
most one pair, its best class. The outputs are the NMS stage's: `boxes`
float32 `[B, max_det, 4]` (xyxy, letterboxed pixels; the caller undoes the
letterbox), `confidence` float32 `[B, max_det]`, `classes` int32
`[B, max_det]` (-1 on padding rows), `num_detections` int32 `[B]`. Equal
scores keep the lower index first, as TensorFlow's, ONNX's and TFLite's
`TopK` do. `one_to_one_select_numpy` is the same selection in numpy, for tests.
"""

import numpy as np


def one_to_one_select(boxes, scores, config):
    """Ultralytics' NMS-free top-k selection, as TensorFlow ops (see the module).

    Args:
        boxes: float32 `[B, A, 4]` xyxy boxes (letterboxed pixels).
        scores: float32 `[B, A, C]` class probabilities, C static (A may be
            dynamic: a rect body).
        config: `NMSConfig`: `confidence_threshold`, `max_detections` and
            `class_aware` are read (`iou_threshold` is not).

    Returns:
        A dict `boxes`, `confidence`, `classes`, `num_detections`.
    """
    import tensorflow as tf

    max_det = int(config.max_detections)
    num_classes = int(scores.shape[2])
    if scores.shape[1] is None:  # A rect body: the anchor count is known at run time only.
        from edgedet.nms import pad_anchors

        # Ultralytics keeps min(max_det, A) pairs: `limit` cuts the padded ones.
        limit = tf.minimum(tf.shape(scores)[1], max_det)
        boxes, scores = pad_anchors(boxes, scores, max_det)  # Score -1: never kept.
        anchors, k = tf.shape(scores)[1], max_det
    else:
        anchors = int(scores.shape[1])
        k = limit = min(max_det, anchors)
    batch = tf.shape(scores)[0]
    batch_index = tf.range(batch)[:, None]  # [B, 1]
    flat_scores = tf.reshape(scores, [-1, num_classes])  # [B * A, C]
    best = tf.reduce_max(scores, axis=-1)  # [B, A]
    top_best, anchor = tf.math.top_k(best, k=k, sorted=True)  # [B, k]
    flat_anchor = anchor + batch_index * anchors
    if config.class_aware and num_classes > 1:
        pairs = tf.reshape(tf.gather(flat_scores, flat_anchor), [-1, k * num_classes])
        top_score, pair = tf.math.top_k(pairs, k=k, sorted=True)  # [B, k]
        slot = tf.math.floordiv(pair, num_classes)  # no Mod: see the module
        top_class = pair - slot * num_classes
        flat_anchor = tf.gather(tf.reshape(flat_anchor, [-1]), slot + batch_index * k)
    else:
        top_score = top_best
        top_class = tf.cast(tf.math.argmax(tf.gather(flat_scores, flat_anchor), axis=-1),
                            tf.int32)
    top_box = tf.gather(tf.reshape(boxes, [-1, 4]), flat_anchor)  # [B, k, 4]
    valid = top_score >= np.float32(config.confidence_threshold)  # a prefix: sorted
    if not isinstance(limit, int):
        valid = valid & (tf.range(k)[None, :] < limit)
    if k < max_det:
        pad = [[0, 0], [0, max_det - k]]
        valid = tf.pad(valid, pad, constant_values=False)
        top_score = tf.pad(top_score, pad)
        top_class = tf.pad(top_class, pad)
        top_box = tf.pad(top_box, pad + [[0, 0]])
    return {
        "boxes": tf.where(valid[..., None], top_box, tf.zeros_like(top_box)),
        "confidence": tf.where(valid, top_score, tf.zeros_like(top_score)),
        "classes": tf.where(valid, top_class, -tf.ones_like(top_class)),
        "num_detections": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
    }


def one_to_one_select_numpy(boxes, scores, config):
    """`one_to_one_select` in numpy, image by image (the tests' reference).

    Args:
        boxes: `[B, A, 4]` array. scores: `[B, A, C]` array.
        config: `NMSConfig`.

    Returns:
        A dict of numpy arrays, as `one_to_one_select`.
    """
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    batch, anchors, num_classes = scores.shape
    max_det = int(config.max_detections)
    k = min(max_det, anchors)
    out = {"boxes": np.zeros((batch, max_det, 4), np.float32),
           "confidence": np.zeros((batch, max_det), np.float32),
           "classes": np.full((batch, max_det), -1, np.int32),
           "num_detections": np.zeros((batch,), np.int32)}
    for b in range(batch):
        anchor = np.argsort(-scores[b].max(axis=-1), kind="stable")[:k]
        if config.class_aware and num_classes > 1:
            pairs = scores[b][anchor].reshape(-1)
            pair = np.argsort(-pairs, kind="stable")[:k]
            score, chosen, cls = pairs[pair], anchor[pair // num_classes], pair % num_classes
        else:
            chosen = anchor
            score, cls = scores[b][anchor].max(axis=-1), scores[b][anchor].argmax(axis=-1)
        keep = score >= np.float32(config.confidence_threshold)
        n = int(keep.sum())
        out["boxes"][b, :n] = boxes[b][chosen[keep]]
        out["confidence"][b, :n] = score[keep]
        out["classes"][b, :n] = cls[keep]
        out["num_detections"][b] = n
    return out


__all__ = ["one_to_one_select", "one_to_one_select_numpy"]
