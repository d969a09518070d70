"""Bounding box formats, conversions and overlap measures.

Every function here accepts numpy arrays (and lists) or TensorFlow tensors.
A numpy input gives a numpy result computed in numpy; a tensor input gives a
tensor computed with TensorFlow ops (so the functions work inside
`tf.function` graphs and under `tf.GradientTape`). The math is written once,
against a tiny array-namespace shim (`_numpy_ops` / `_tf_ops`).

TensorFlow is imported lazily, only when a tensor is passed, so importing this
module costs nothing (it is imported by `edgedet.config` and the CLI).

Formats (the names and semantics of `keras_cv.bounding_box` and
`keras.utils.bounding_boxes`), each the last axis of a `[..., 4]` array:

- `"xyxy"`: `[left, top, right, bottom]` in pixels.
- `"yxyx"`: `[top, left, bottom, right]` in pixels.
- `"xywh"`: `[left, top, width, height]` in pixels.
- `"center_xywh"`: `[center_x, center_y, width, height]` in pixels.
- `"center_yxhw"`: `[center_y, center_x, height, width]` in pixels.
- `"rel_xyxy"`, `"rel_yxyx"`, `"rel_xywh"`, `"rel_center_xywh"`: the same
  layouts with x and widths divided by the image width and y and heights by
  the image height (values in `[0, 1]` for boxes inside the image).

Format names are case-sensitive lower case; a mistyped name gets a
"Did you mean" hint.
"""

import math
import sys

import numpy as np

from edgedet.suggest import closest

FORMATS = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)


def check_format(name):
    """Checks that `name` is a supported bounding box format.

    Args:
        name: str. A format name, one of `FORMATS`.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: naming the bad value, the valid names and a close match.
    """
    if not isinstance(name, str) or name not in FORMATS:
        hint = closest(name.lower(), FORMATS) if isinstance(name, str) else ""
        raise ValueError(
            f"Invalid bounding_box_format: {name!r}. Expected one of {list(FORMATS)}." + hint
        )
    return name


def is_relative(name):
    """Returns True for the `rel_*` formats (coordinates divided by image size)."""
    return check_format(name).startswith("rel_")


# --------------------------------------------------------------------------
# Array-namespace shim: the handful of ops the math below needs.


class _NumpyOps:
    is_tensor = False
    stack = staticmethod(np.stack)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    atan = staticmethod(np.arctan)
    where = staticmethod(np.where)

    @staticmethod
    def cast(x, dtype):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def stop_gradient(x):
        return x

    @staticmethod
    def image_hw(images):
        shape = np.shape(images)
        return shape[-3], shape[-2]


class _TFOps:
    is_tensor = True

    def __init__(self):
        import tensorflow as tf

        self.tf = tf
        self.stack = tf.stack
        self.maximum = tf.maximum
        self.minimum = tf.minimum
        self.atan = tf.atan
        self.where = tf.where
        self.stop_gradient = tf.stop_gradient

    def cast(self, x, dtype):
        return self.tf.cast(x, dtype)

    def image_hw(self, images):
        shape = self.tf.shape(images)
        return shape[-3], shape[-2]


_numpy_ops = _NumpyOps()
_tf_ops_singleton = []


def _is_tf_tensor(x):
    tf = sys.modules.get("tensorflow")
    if tf is None or not hasattr(tf, "is_tensor"):
        return False
    return tf.is_tensor(x) or isinstance(x, tf.Variable)


def _ops_for(*values):
    """Returns the TF shim if any value is a TF tensor, else the numpy shim."""
    if any(_is_tf_tensor(v) for v in values):
        if not _tf_ops_singleton:
            _tf_ops_singleton.append(_TFOps())
        return _tf_ops_singleton[0]
    return _numpy_ops


def _as_boxes(boxes, ops, dtype, what="boxes"):
    boxes = ops.cast(boxes, dtype)
    if ops.is_tensor and boxes.shape.rank is None:
        return boxes  # Unknown rank inside a graph: checked by the ops themselves.
    shape = tuple(boxes.shape)
    if not shape or (shape[-1] is not None and shape[-1] != 4):
        raise ValueError(f"Expected `{what}` of shape [..., 4], received shape {shape}.")
    return boxes


# --------------------------------------------------------------------------
# Conversions, through xyxy. Each takes the 4 components and (height, width).


def _to_xyxy(fmt, c, hw):
    a, b, p, q = c
    if fmt == "xyxy":
        return a, b, p, q
    if fmt == "yxyx":
        return b, a, q, p
    if fmt == "xywh":
        return a, b, a + p, b + q
    if fmt == "center_xywh":
        return a - p / 2.0, b - q / 2.0, a + p / 2.0, b + q / 2.0
    if fmt == "center_yxhw":
        return b - q / 2.0, a - p / 2.0, b + q / 2.0, a + p / 2.0
    height, width = hw
    x1, y1, x2, y2 = _to_xyxy(fmt[len("rel_") :], c, None)
    return x1 * width, y1 * height, x2 * width, y2 * height


def _from_xyxy(fmt, c, hw):
    x1, y1, x2, y2 = c
    if fmt == "xyxy":
        return x1, y1, x2, y2
    if fmt == "yxyx":
        return y1, x1, y2, x2
    if fmt == "xywh":
        return x1, y1, x2 - x1, y2 - y1
    if fmt == "center_xywh":
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1
    if fmt == "center_yxhw":
        return (y1 + y2) / 2.0, (x1 + x2) / 2.0, y2 - y1, x2 - x1
    height, width = hw
    scaled = (x1 / width, y1 / height, x2 / width, y2 / height)
    return _from_xyxy(fmt[len("rel_") :], scaled, None)


def _image_hw(images, image_shape, ops, dtype, source, target):
    if images is not None and image_shape is not None:
        raise ValueError("Pass either `images` or `image_shape`, not both.")
    if images is not None:
        if len(images.shape) < 3:
            raise ValueError(
                "Expected `images` of shape [..., height, width, channels], "
                f"received shape {tuple(images.shape)}."
            )
        height, width = ops.image_hw(images)
    elif image_shape is not None:
        size = image_shape.shape[0] if hasattr(image_shape, "shape") else len(image_shape)
        if size not in (2, 3):
            raise ValueError(
                "Expected `image_shape` as (height, width) or (height, width, channels), "
                f"received: {image_shape!r}."
            )
        height, width = image_shape[0], image_shape[1]
    else:
        raise ValueError(
            f"Converting boxes from '{source}' to '{target}' needs the image size: "
            "pass `image_shape=(height, width)` or `images`."
        )
    return ops.cast(height, dtype), ops.cast(width, dtype)


def convert_format(boxes, source, target, images=None, image_shape=None, dtype="float32"):
    """Converts boxes from one format to another.

    Conversions between two relative formats, or two absolute ones, need no
    image size. Conversions between a relative and an absolute format need
    `images` or `image_shape`.

    Example:

    ```python
    convert_format(np.array([[10, 20, 30, 60]]), "xyxy", "center_xywh")
    # array([[20., 40., 20., 40.]], dtype=float32)
    convert_format(boxes, "rel_yxyx", "xyxy", image_shape=(480, 640))
    ```

    Args:
        boxes: array-like or `tf.Tensor` of shape `[..., 4]`, any leading rank.
        source: str. Format of `boxes`, one of `FORMATS`.
        target: str. Format to convert to, one of `FORMATS`.
        images: array or tensor of shape `[..., height, width, channels]`;
            only its shape is used. Defaults to None.
        image_shape: `(height, width)` or `(height, width, channels)`, ints or
            scalar tensors, for the relative formats. Defaults to None.
        dtype: str. Result dtype. Defaults to `"float32"`.

    Returns:
        The converted boxes, a numpy array for numpy input, a tensor for a
        tensor input, in `dtype`.
    """
    check_format(source)
    check_format(target)
    shape_parts = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else ()
    ops = _ops_for(boxes, images, image_shape, *shape_parts)
    boxes = _as_boxes(boxes, ops, dtype)
    if source == target:
        return boxes
    src_rel, tgt_rel = source.startswith("rel_"), target.startswith("rel_")
    if src_rel and tgt_rel:
        source, target = source[len("rel_") :], target[len("rel_") :]
    hw = None
    if src_rel != tgt_rel:
        hw = _image_hw(images, image_shape, ops, dtype, source, target)
    components = tuple(boxes[..., i] for i in range(4))
    xyxy = _to_xyxy(source, components, hw)
    return ops.stack(list(_from_xyxy(target, xyxy, hw)), axis=-1)


def _xyxy_components(boxes, bounding_box_format, ops, dtype, what):
    """Boxes in xyxy (or rel_xyxy: IoU does not depend on the scale)."""
    check_format(bounding_box_format)
    target = "rel_xyxy" if bounding_box_format.startswith("rel_") else "xyxy"
    boxes = _as_boxes(boxes, ops, dtype, what)
    boxes = convert_format(boxes, bounding_box_format, target, dtype=dtype)
    return tuple(boxes[..., i] for i in range(4))


def _safe_divide(num, den, ops):
    """num / den, and 0 where den <= 0 (e.g. the union of two empty boxes)."""
    positive = den > 0
    return ops.where(positive, num / ops.where(positive, den, ops.cast(1, den.dtype)), 0 * num)


def compute_iou(boxes1, boxes2, bounding_box_format="xyxy", dtype="float32"):
    """Pairwise intersection over union.

    Boxes with zero area have IoU 0 with everything (including themselves).
    Boxes with negative width or height are treated as empty.

    Example:

    ```python
    compute_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2]])
    # array([[0.14285715, 1.]], dtype=float32)
    ```

    Args:
        boxes1: array-like or tensor `[..., N, 4]`.
        boxes2: array-like or tensor `[..., M, 4]`; leading axes broadcast
            against those of `boxes1`.
        bounding_box_format: str. Format of both inputs, one of `FORMATS`.
            Relative formats need no image size. Defaults to `"xyxy"`.
        dtype: str. Computation and result dtype. Defaults to `"float32"`.

    Returns:
        IoU of shape `[..., N, M]`, numpy or tensor like the inputs.
    """
    ops = _ops_for(boxes1, boxes2)
    a = _xyxy_components(boxes1, bounding_box_format, ops, dtype, "boxes1")
    b = _xyxy_components(boxes2, bounding_box_format, ops, dtype, "boxes2")
    a = tuple(c[..., :, None] for c in a)  # [..., N, 1]
    b = tuple(c[..., None, :] for c in b)  # [..., 1, M]
    return _iou_parts(a, b, ops)[0]


def _iou_parts(a, b, ops):
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    zero = ops.cast(0, ax1.dtype)
    inter_w = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), zero)
    inter_h = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), zero)
    inter = inter_w * inter_h
    area_a = ops.maximum(ax2 - ax1, zero) * ops.maximum(ay2 - ay1, zero)
    area_b = ops.maximum(bx2 - bx1, zero) * ops.maximum(by2 - by1, zero)
    union = area_a + area_b - inter
    return _safe_divide(inter, union, ops), inter, union


def compute_ciou(boxes1, boxes2, bounding_box_format="xyxy", eps=1e-7, dtype="float32"):
    """Elementwise Complete IoU (Zheng et al., 2020), as Ultralytics computes it.

    `CIoU = IoU - rho^2 / c^2 - alpha * v`, where `rho` is the distance
    between the box centers, `c` the diagonal of the smallest enclosing box,
    `v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2` and
    `alpha = v / (v - IoU + 1 + eps)`. As in Ultralytics'
    `bbox_iou(CIoU=True)`, `eps` is added to the heights, the union and
    `c^2`, and no gradient flows through `alpha`. The loss is `1 - CIoU`.
    Values lie in `[-1.5, 1]`; identical boxes give 1.

    Args:
        boxes1: array-like or tensor `[..., 4]`.
        boxes2: array-like or tensor `[..., 4]`, broadcastable with `boxes1`.
        bounding_box_format: str. Format of both inputs, one of `FORMATS`.
            Defaults to `"xyxy"`.
        eps: float. Numerical guard. Defaults to 1e-7.
        dtype: str. Computation and result dtype. Defaults to `"float32"`.

    Returns:
        CIoU of the broadcast shape of the inputs without the last axis.
    """
    ops = _ops_for(boxes1, boxes2)
    ax1, ay1, ax2, ay2 = _xyxy_components(boxes1, bounding_box_format, ops, dtype, "boxes1")
    bx1, by1, bx2, by2 = _xyxy_components(boxes2, bounding_box_format, ops, dtype, "boxes2")
    zero = ops.cast(0, ax1.dtype)
    w1, h1 = ax2 - ax1, ay2 - ay1 + eps
    w2, h2 = bx2 - bx1, by2 - by1 + eps
    inter_w = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), zero)
    inter_h = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), zero)
    inter = inter_w * inter_h
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = ops.maximum(ax2, bx2) - ops.minimum(ax1, bx1)
    ch = ops.maximum(ay2, by2) - ops.minimum(ay1, by1)
    c2 = cw * cw + ch * ch + eps
    dx = bx1 + bx2 - ax1 - ax2
    dy = by1 + by2 - ay1 - ay2
    rho2 = (dx * dx + dy * dy) / 4.0
    dv = ops.atan(w2 / h2) - ops.atan(w1 / h1)
    v = (4.0 / math.pi**2) * dv * dv
    alpha = ops.stop_gradient(v / (v - iou + (1.0 + eps)))
    return iou - (rho2 / c2 + v * alpha)
