"""YOLOv8 detection loss: CIoU box loss, distribution focal loss, BCE classes.

Follows Ultralytics' `v8DetectionLoss` / `BboxLoss`: the assigner runs on
the detached predictions (boxes in pixels, sigmoid scores); the box and DFL
terms are computed in units of each anchor's stride, weighted by the soft
class target of each positive anchor, and every term is divided by the sum
of the soft targets (at least 1). Weights: box 7.5, cls 0.5, dfl 1.5.

Unlike Ultralytics, the total is not multiplied by the batch size: Keras
optimizers expect a per-batch mean-like loss (learning rates are chosen for
that; with AdamW the scale barely matters).
"""

import dataclasses

import numpy as np

from edgedet.boxes import compute_ciou
from edgedet.decode import dfl_expectation, make_anchors
from edgedet.train.assigner import task_aligned_assign


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights and assigner settings.

    Args:
        box: float. CIoU loss weight. Defaults to 7.5.
        cls: float. BCE class loss weight. Defaults to 0.5.
        dfl: float. Distribution focal loss weight. Defaults to 1.5.
        topk: int. Assigner candidates per box. Defaults to 10.
        alpha: float. Assigner class-score exponent. Defaults to 0.5.
        beta: float. Assigner IoU exponent. Defaults to 6.0.
    """

    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5
    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0


def dist2bbox(distances, anchor_points):
    """ltrb distances `[..., 4]` around points `[..., 2]` to xyxy boxes."""
    import tensorflow as tf

    return tf.concat([anchor_points - distances[..., :2], anchor_points + distances[..., 2:]], -1)


def bbox2dist(anchor_points, bboxes, limit):
    """xyxy boxes to ltrb distances from the anchor points, clipped to `[0, limit - 0.01]`."""
    import tensorflow as tf

    ltrb = tf.concat([anchor_points - bboxes[..., :2], bboxes[..., 2:] - anchor_points], -1)
    return tf.clip_by_value(ltrb, 0.0, limit - 0.01)


def distribution_focal_loss(raw_boxes, target_ltrb, reg_max=16):
    """DFL per anchor: mean over the 4 sides of the two-bin cross-entropy.

    Args:
        raw_boxes: float `[..., 4 * reg_max]` logits.
        target_ltrb: float `[..., 4]` target distances in bins, in
            `[0, reg_max - 1)`.
        reg_max: int. Defaults to 16.

    Returns:
        float `[...]`.
    """
    import tensorflow as tf

    shape = tf.concat([tf.shape(target_ltrb), [reg_max]], axis=0)
    logits = tf.reshape(raw_boxes, shape)
    left = tf.floor(target_ltrb)
    right = left + 1.0
    weight_left = right - target_ltrb
    weight_right = 1.0 - weight_left
    log_probabilities = tf.nn.log_softmax(logits, axis=-1)
    left_index = tf.cast(left, tf.int32)
    right_index = tf.minimum(left_index + 1, reg_max - 1)
    ce_left = -tf.gather(log_probabilities, left_index[..., None],
                         batch_dims=target_ltrb.shape.rank)
    ce_right = -tf.gather(
        log_probabilities, right_index[..., None], batch_dims=target_ltrb.shape.rank
    )
    loss = ce_left[..., 0] * weight_left + ce_right[..., 0] * weight_right
    return tf.reduce_mean(loss, axis=-1)


def trim_padding_columns(boxes, classes):
    """Cuts `[B, M, ...]` labels after the last column any image uses (keeps at least 1).

    Padding rows (class `-1`) may sit anywhere; only the columns after the
    last real box of every image go, so no box is lost.
    """
    import tensorflow as tf

    columns = tf.range(1, tf.shape(classes)[1] + 1)[None, :]
    used = tf.maximum(tf.reduce_max(tf.where(classes >= 0, columns, 0)), 1)
    return boxes[:, :used], classes[:, :used]


class DetectionLoss:
    """The YOLOv8 loss on the raw head of a `YOLOV8Detector`.

    Example:

    ```python
    loss_fn = DetectionLoss(image_size=256, num_classes=5)
    total, parts = loss_fn(labels, model(images, training=True))
    ```

    Args:
        image_size: int. Side of the (square) model input.
        num_classes: int.
        strides: tuple of int. Defaults to `(8, 16, 32)`.
        reg_max: int. DFL bins, at least 2 (a head without DFL, reg_max 1 as
            YOLO26's, is not trained by this loss). Defaults to 16.
        config: `LossConfig`. Defaults to `LossConfig()`.
        trim_padding: bool. Drop the label columns that no image of the
            batch uses before the assigner, whose tensors are `[B, M, A]`
            (same result, less work; the shape becomes dynamic, so set it
            False under XLA). Defaults to True.
    """

    def __init__(self, image_size, num_classes, strides=(8, 16, 32), reg_max=16, config=None,
                 trim_padding=True):
        self.image_size = int(image_size)
        self.trim_padding = bool(trim_padding)
        self.num_classes = int(num_classes)
        self.reg_max = int(reg_max)
        if self.reg_max < 2:
            raise ValueError(
                f"Invalid reg_max: {reg_max!r}. edgedet's detection loss trains DFL heads "
                "(reg_max >= 2); a head that predicts the box distances directly (reg_max 1, "
                "YOLO26) cannot be trained by edgedet yet: train it with Ultralytics and "
                "`edgedet import ultralytics` the weights."
            )
        self.config = LossConfig() if config is None else config
        centers, per_anchor = make_anchors(self.image_size, strides)
        self.anchor_pixels = centers
        self.strides = per_anchor[:, None].astype(np.float32)
        self.anchor_grid = centers / self.strides

    def __call__(self, labels, outputs):
        """Computes the loss.

        Args:
            labels: dict with `"boxes"` float `[B, M, 4]` xyxy in model-input
                pixels and `"classes"` int `[B, M]` (`-1` for padding).
            outputs: the model's raw head, `{"boxes": [B, A, 64],
                "classes": [B, A, C]}`.

        Returns:
            `(total, {"box_loss", "cls_loss", "dfl_loss"})`: scalar float32
            tensors; the parts are already weighted.
        """
        import tensorflow as tf

        cfg = self.config
        raw_boxes = tf.cast(outputs["boxes"], tf.float32)
        raw_classes = tf.cast(outputs["classes"], tf.float32)
        gt_boxes = tf.cast(labels["boxes"], tf.float32)
        gt_classes = tf.cast(labels["classes"], tf.int32)
        if self.trim_padding:
            gt_boxes, gt_classes = trim_padding_columns(gt_boxes, gt_classes)
        mask_gt = tf.cast(gt_classes >= 0, tf.float32)

        anchor_grid = tf.constant(self.anchor_grid)
        strides = tf.constant(self.strides)
        pred_grid = dist2bbox(dfl_expectation(raw_boxes, self.reg_max), anchor_grid)
        targets = task_aligned_assign(
            tf.sigmoid(raw_classes),
            pred_grid * strides,
            tf.constant(self.anchor_pixels),
            gt_classes,
            gt_boxes,
            mask_gt,
            topk=cfg.topk,
            alpha=cfg.alpha,
            beta=cfg.beta,
        )
        target_scores = targets["scores"]
        score_sum = tf.maximum(tf.reduce_sum(target_scores), 1.0)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=target_scores, logits=raw_classes)
        cls_loss = tf.reduce_sum(bce) / score_sum

        fg = tf.cast(targets["fg_mask"], tf.float32)
        weight = tf.reduce_sum(target_scores, axis=-1) * fg  # [B, A]
        target_grid = targets["bboxes"] / strides
        ciou = compute_ciou(pred_grid, target_grid, eps=1e-7)
        box_loss = tf.reduce_sum((1.0 - ciou) * weight) / score_sum
        target_ltrb = bbox2dist(anchor_grid, target_grid, float(self.reg_max - 1))
        dfl = distribution_focal_loss(raw_boxes, target_ltrb, self.reg_max)
        dfl_loss = tf.reduce_sum(dfl * weight) / score_sum

        parts = {
            "box_loss": box_loss * cfg.box,
            "cls_loss": cls_loss * cfg.cls,
            "dfl_loss": dfl_loss * cfg.dfl,
        }
        return parts["box_loss"] + parts["cls_loss"] + parts["dfl_loss"], parts
