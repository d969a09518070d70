"""Decode YOLOv8's raw head into boxes and scores (stage 3 of the contract).

The head predicts, for every anchor point, a distribution over `reg_max`
bins for each of the four distances left, top, right, bottom (DFL), and one
logit per class. Decoding takes the expectation of each distribution (in
units of the level's stride), and places the box around the anchor centre,
as KerasCV (`decode_regression_to_boxes` + `dist2bbox`) and Ultralytics do.

Anchor order: the stride-8 level first, then 16, then 32; within a level,
row-major (y outer, x inner), centres at `(col + 0.5) * stride`.
"""

import numpy as np

DEFAULT_STRIDES = (8, 16, 32)


def _image_hw(image_size):
    if np.ndim(image_size) == 0:
        return int(image_size), int(image_size)
    height, width = (int(v) for v in image_size)
    return height, width


def make_anchors(image_size, strides=DEFAULT_STRIDES):
    """Anchor centres and per-anchor strides, as numpy constants.

    Args:
        image_size: int or `(height, width)`. Side of the model input.
        strides: tuple of int. Feature-map strides, in anchor order.
            Defaults to `(8, 16, 32)`.

    Returns:
        `(centers, stride_per_anchor)`: float32 `[A, 2]` anchor centres
        `(x, y)` in input pixels and float32 `[A]` strides.

    Example:

    >>> centers, s = make_anchors(64)
    >>> centers.shape, centers[0].tolist(), centers[-1].tolist()
    ((84, 2), [4.0, 4.0], [48.0, 48.0])
    """
    height, width = _image_hw(image_size)
    centers, per_anchor = [], []
    for stride in strides:
        if height % stride or width % stride:
            raise ValueError(
                f"Invalid image_size {image_size!r} for stride {stride}: "
                f"expected a multiple of every stride in {tuple(strides)}."
            )
        ys = (np.arange(height // stride, dtype=np.float32) + 0.5) * stride
        xs = (np.arange(width // stride, dtype=np.float32) + 0.5) * stride
        grid_x, grid_y = np.meshgrid(xs, ys)  # row-major: y outer, x inner
        centers.append(np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1))
        per_anchor.append(np.full(grid_x.size, stride, dtype=np.float32))
    return np.concatenate(centers).astype(np.float32), np.concatenate(per_anchor)


def is_static_size(image_size):
    """Whether `image_size` is Python/numpy ints (else int32 tensors: a rect body)."""
    values = image_size if isinstance(image_size, (tuple, list)) else [image_size]
    return all(isinstance(v, (int, np.integer)) for v in values)


def make_anchors_in_graph(height, width, strides=DEFAULT_STRIDES):
    """`make_anchors` for a body whose shape is known only at run time.

    The same anchor order and centres, computed with `Range` ops so that an
    exported graph (ONNX, OpenVINO) follows its body shape.

    Args:
        height: int32 scalar tensor. Body height, a multiple of every stride.
        width: int32 scalar tensor. Body width, likewise.
        strides: tuple of int. Defaults to `(8, 16, 32)`.

    Returns:
        `(centers, stride_per_anchor)`: float32 tensors `[A, 2]` and `[A]`.
    """
    import tensorflow as tf

    centers, per_anchor = [], []
    for stride in strides:
        ys = (tf.cast(tf.range(height // stride), tf.float32) + 0.5) * stride
        xs = (tf.cast(tf.range(width // stride), tf.float32) + 0.5) * stride
        grid_x, grid_y = tf.meshgrid(xs, ys)  # row-major: y outer, x inner
        level = tf.stack([tf.reshape(grid_x, [-1]), tf.reshape(grid_y, [-1])], axis=-1)
        centers.append(level)
        per_anchor.append(tf.fill(tf.shape(level)[:1], float(stride)))
    return tf.concat(centers, axis=0), tf.concat(per_anchor, axis=0)


def num_anchors(image_size, strides=DEFAULT_STRIDES):
    """Number of anchors `A` for a model input size."""
    height, width = _image_hw(image_size)
    return sum((height // s) * (width // s) for s in strides)


def decode(raw_boxes, raw_classes, image_size, strides=DEFAULT_STRIDES, reg_max=16,
           classes_are_logits=True):
    """Decodes the raw head into xyxy boxes and class scores.

    Args:
        raw_boxes: float tensor `[B, A, 4 * reg_max]`, DFL logits, ordered
            left, top, right, bottom (each `reg_max` bins; for reg_max 1 the
            distances themselves, see `decode_distances`).
        raw_classes: float tensor `[B, A, C]`, class logits (or
            probabilities when `classes_are_logits=False`).
        image_size: int or `(height, width)`. Side of the model input; a
            `(height, width)` pair of int32 tensors for a body shaped at run
            time (`LetterboxConfig(shape="rect")`).
        strides: tuple of int. Defaults to `(8, 16, 32)`.
        reg_max: int. Bins per side. Defaults to 16.
        classes_are_logits: bool. Apply a sigmoid to `raw_classes`. False for
            KerasCV models, whose head already applies it. Defaults to True.

    Returns:
        `(boxes, scores)`: float32 `[B, A, 4]` xyxy boxes in model-input
        (letterboxed) pixels, and float32 `[B, A, C]` scores in [0, 1].
    """
    import tensorflow as tf

    if is_static_size(image_size):
        centers, stride_per_anchor = make_anchors(image_size, strides)
        center_xy = tf.constant(centers)[None]  # [1, A, 2]
        anchors = centers.shape[0]
    else:
        centers, stride_per_anchor = make_anchors_in_graph(*image_size, strides)
        center_xy = centers[None]
        anchors = None
    raw_boxes = tf.cast(raw_boxes, tf.float32)
    raw_classes = tf.cast(raw_classes, tf.float32)
    dynamic = () if anchors else (raw_boxes.shape[1],)  # Any count: the body shape is run-time.
    if raw_boxes.shape.rank != 3 or raw_boxes.shape[1] not in (anchors, None, *dynamic) or (
        raw_boxes.shape[2] not in (4 * reg_max, None)
    ):
        raise ValueError(
            f"Expected raw boxes of shape [B, {anchors}, {4 * reg_max}] for image_size "
            f"{image_size}, strides {tuple(strides)} and reg_max {reg_max}; "
            f"received shape {raw_boxes.shape}."
        )
    if raw_classes.shape.rank != 3 or raw_classes.shape[1] not in (anchors, None, *dynamic):
        raise ValueError(
            f"Expected raw classes of shape [B, {anchors}, C]; received shape "
            f"{raw_classes.shape}."
        )
    # [B, A, 4] ltrb, in bins (reg_max 1: the head predicts them, no DFL).
    distances = raw_boxes if reg_max == 1 else dfl_expectation(raw_boxes, reg_max)
    distances = distances * stride_per_anchor[:, None]
    top_left = center_xy - distances[..., :2]
    bottom_right = center_xy + distances[..., 2:]
    boxes = tf.concat([top_left, bottom_right], axis=-1)
    scores = tf.sigmoid(raw_classes) if classes_are_logits else raw_classes
    return boxes, scores


def decode_distances(raw_boxes, raw_classes, image_size, strides=DEFAULT_STRIDES, reg_max=1,
                     classes_are_logits=True):
    """Decodes a head without DFL (YOLO26, reg_max 1) into xyxy boxes and class scores.

    `raw_boxes` `[B, A, 4]` are the left, top, right, bottom distances from
    the anchor centre in units of the level's stride, as Ultralytics'
    `Detect` (`dfl` is `nn.Identity` for reg_max 1) then `dist2bbox(xywh=False)
    * stride` read them. Otherwise as `decode`.

    Raises:
        ValueError: for a reg_max other than 1 (a DFL head: use `decode`).
    """
    if reg_max != 1:
        raise ValueError(
            f"decode_distances decodes heads of reg_max 1 (four distances per anchor); "
            f"received reg_max {reg_max}. A DFL head is decoded by edgedet.decode.decode."
        )
    return decode(raw_boxes, raw_classes, image_size, strides, 1, classes_are_logits)


def dfl_expectation(raw_boxes, reg_max=16):
    """Expected ltrb distances `[B, A, 4]`, in bins, from DFL logits `[B, A, 4 * reg_max]`.

    Softmax over each side's `reg_max` bins, then the expected bin index.
    Shared by the decoder and the training loss.
    """
    import tensorflow as tf

    anchors = raw_boxes.shape[1]
    # A static anchor count keeps the exported graphs' shapes static.
    shape = ([-1, anchors, 4, reg_max] if anchors is not None
             else [tf.shape(raw_boxes)[0], -1, 4, reg_max])
    probabilities = tf.nn.softmax(tf.reshape(raw_boxes, shape), axis=-1)
    projection = tf.constant(np.arange(reg_max), dtype=raw_boxes.dtype)
    return tf.reduce_sum(probabilities * projection, axis=-1)


__all__ = ["DEFAULT_STRIDES", "decode", "decode_distances", "dfl_expectation",
           "is_static_size", "make_anchors", "make_anchors_in_graph", "num_anchors"]
