"""Letterbox: any-size uint8 images to the square model input, and back.

The first and last stages of the end-to-end graph (DESIGN.md, "The one
contract"). Everything is written with TensorFlow ops that convert to ONNX
(tf2onnx) and to TFLite builtins, with a dynamic batch, height and width:
`Shape`, integer arithmetic, `ResizeBilinear(half_pixel_centers=True)`,
`PadV2` with computed paddings and a final `Reshape` that restores the static
`[B, size, size, 3]` shape the network needs.

The rounding is the one documented in `edgedet.config.LetterboxConfig`:
for `m = max(h, w)` the resized height is `max(1, (2 * h * size + m) // (2 * m))`
and likewise the width, so every runtime agrees to the pixel.
"""

import dataclasses

from edgedet.config import MAX_IMAGE_SIDE, LetterboxConfig


@dataclasses.dataclass(frozen=True)
class LetterboxParams:
    """Where the resized image sits inside the letterboxed square.

    All fields are scalar int32 tensors (one image size per batch).

    Args:
        height: original image height.
        width: original image width.
        new_height: height of the resized image inside the square.
        new_width: width of the resized image inside the square.
        pad_top: rows of padding above the resized image.
        pad_left: columns of padding left of the resized image.
    """

    height: object
    width: object
    new_height: object
    new_width: object
    pad_top: object
    pad_left: object


def letterbox_geometry(height, width, size, pad_position="bottom_right", shape="square",
                       stride=32):
    """Resized size and pad offsets for an image of `height x width`.

    Works on Python ints (for documentation and tests) and on int32 tensors
    (inside the graph): only `+ * // max` are used.

    Args:
        height: int or int32 tensor. Original height, >= 1.
        width: int or int32 tensor. Original width, >= 1.
        size: int. Side of the square model input.
        pad_position: str. `"bottom_right"` or `"center"`.
            Defaults to `"bottom_right"`.
        shape: str. `"square"` or `"rect"` (see `body_size`). Defaults to
            `"square"`.
        stride: int. The model's largest stride (`"rect"` only). Defaults to 32.

    Returns:
        `(new_height, new_width, pad_top, pad_left)`.
    """
    longest = _maximum(height, width)
    new_height = _maximum((2 * height * size + longest) // (2 * longest), 1)
    new_width = _maximum((2 * width * size + longest) // (2 * longest), 1)
    body_height, body_width = body_size(new_height, new_width, size, shape, stride)
    if pad_position == "center":
        pad_top = (body_height - new_height) // 2
        pad_left = (body_width - new_width) // 2
    else:
        pad_top = new_height * 0
        pad_left = new_width * 0
    return new_height, new_width, pad_top, pad_left


def body_size(new_height, new_width, size, shape="square", stride=32):
    """`(height, width)` of the padded network input (the body).

    `"square"`: `(size, size)`. `"rect"`: each resized side rounded up to a
    multiple of `stride`, as Ultralytics' `LetterBox(auto=True)` pads (its
    `(size - new) % stride`, `size` being a multiple of `stride`).

    Example:

    >>> body_size(360, 640, 640, "rect")
    (384, 640)
    """
    if shape == "square":
        return size, size
    return ((new_height + stride - 1) // stride * stride,
            (new_width + stride - 1) // stride * stride)


def _maximum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    import tensorflow as tf

    return tf.maximum(a, b)


def letterbox(images, config=None, stride=32):
    """Resizes and pads a batch of uint8 images to the model input.

    Args:
        images: uint8 tensor `[B, H, W, 3]`, RGB. B, H and W may be dynamic;
            H and W must be between 1 and `edgedet.config.MAX_IMAGE_SIDE`
            (larger sides could overflow the int32 rounding arithmetic).
            TensorFlow raises `InvalidArgumentError` otherwise; ONNX and
            TFLite artifacts do not check (their converters drop Assert ops),
            so their runtimes must.
        config: `LetterboxConfig`. Defaults to `LetterboxConfig()`.
        stride: int. The model's largest stride: a `"rect"` body's sides are
            multiples of it. Defaults to 32.

    Returns:
        `(pixels, params)`: float32 pixels in 0-255, `[B, size, size, 3]`
        (static) or, with `config.shape == "rect"`, `[B, H', W', 3]` with
        H' and W' depending on the image (`body_size`); and the
        `LetterboxParams` that `unletterbox` needs.
    """
    import tensorflow as tf

    config = LetterboxConfig() if config is None else config
    size = config.size
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise ValueError(f"letterbox expects uint8 images, received dtype {images.dtype.name}.")
    if images.shape.rank is not None and (
        images.shape.rank != 4 or images.shape[-1] not in (3, None)
    ):
        raise ValueError(
            f"letterbox expects images of shape [B, H, W, 3], received shape {images.shape}."
        )
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    # Raise in TensorFlow (eager, tf.function, SavedModel); tf2onnx and the
    # TFLite converter drop Assert ops, so those artifacts rely on the runtime.
    checks = [
        tf.debugging.assert_greater_equal(
            shape[1:3], 1, message="letterbox: image height and width must be >= 1"
        ),
        tf.debugging.assert_less_equal(
            shape[1:3],
            MAX_IMAGE_SIDE,
            message=f"letterbox: image height and width must be <= {MAX_IMAGE_SIDE}",
        ),
    ]
    with tf.control_dependencies(checks):
        height, width = tf.identity(height), tf.identity(width)
    new_height, new_width, pad_top, pad_left = letterbox_geometry(
        height, width, size, config.pad_position, config.shape, stride
    )
    body_height, body_width = body_size(new_height, new_width, size, config.shape, stride)
    pixels = tf.raw_ops.ResizeBilinear(
        images=tf.cast(images, tf.float32),
        size=tf.stack([new_height, new_width]),
        align_corners=False,
        half_pixel_centers=True,
    )
    pad_bottom = body_height - new_height - pad_top
    pad_right = body_width - new_width - pad_left
    zero = pad_top * 0
    paddings = tf.reshape(
        tf.stack([zero, zero, pad_top, pad_bottom, pad_left, pad_right, zero, zero]), [4, 2]
    )
    pixels = tf.pad(pixels, paddings, constant_values=float(config.pad_value))
    # Static [B, size, size, 3] for the network (and for TFLite's shape inference).
    pixels = tf.reshape(pixels, [-1, size, size, 3] if config.shape == "square"
                        else [-1, body_height, body_width, 3])
    params = LetterboxParams(height, width, new_height, new_width, pad_top, pad_left)
    return pixels, params


def unletterbox(boxes, params):
    """Maps xyxy boxes from letterboxed pixels back to original-image pixels.

    The pad offset is subtracted, then x is scaled by `width / new_width` and
    y by `height / new_height` (per-axis ratios of the actual resize, not a
    single gain), and boxes are clipped to `[0, width] x [0, height]`.

    Args:
        boxes: float32 tensor `[..., 4]`, xyxy in letterboxed pixels.
        params: `LetterboxParams` from `letterbox`.

    Returns:
        float32 tensor of the same shape, xyxy in original-image pixels.
    """
    import tensorflow as tf

    scale_x, scale_y, offset_x, offset_y, width, height = _mapping(params)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    x1 = tf.clip_by_value((x1 - offset_x) * scale_x, 0.0, width)
    x2 = tf.clip_by_value((x2 - offset_x) * scale_x, 0.0, width)
    y1 = tf.clip_by_value((y1 - offset_y) * scale_y, 0.0, height)
    y2 = tf.clip_by_value((y2 - offset_y) * scale_y, 0.0, height)
    return tf.stack([x1, y1, x2, y2], axis=-1)


def unletterbox_unclipped(boxes, params):
    """Like `unletterbox` but without clipping (for debugging outputs)."""
    import tensorflow as tf

    scale_x, scale_y, offset_x, offset_y, _, _ = _mapping(params)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.stack(
        [
            (x1 - offset_x) * scale_x,
            (y1 - offset_y) * scale_y,
            (x2 - offset_x) * scale_x,
            (y2 - offset_y) * scale_y,
        ],
        axis=-1,
    )


def _mapping(params):
    import tensorflow as tf

    def f(value):
        return tf.cast(value, tf.float32)

    return (
        f(params.width) / f(params.new_width),
        f(params.height) / f(params.new_height),
        f(params.pad_left),
        f(params.pad_top),
        f(params.width),
        f(params.height),
    )


__all__ = [
    "MAX_IMAGE_SIDE",
    "LetterboxParams",
    "body_size",
    "letterbox",
    "letterbox_geometry",
    "unletterbox",
    "unletterbox_unclipped",
]
