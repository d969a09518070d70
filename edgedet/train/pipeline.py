"""The tf.data input pipeline: decode, letterbox, augment, pad, batch.

Images are letterboxed with `edgedet.letterbox.letterbox`, the very function
the exported graph runs, and boxes are moved with the same geometry
(`letterbox_geometry`), so the network trains on exactly what it sees after
export. Augmentations then work in the letterboxed square, moving the boxes
with the pixels: mosaic (4 images on a 2x2 canvas, cropped back to the model
size), scale/translate, horizontal flip and HSV colour jitter.

Every element is `(images, {"boxes", "classes"})`: float32 pixels
`[B, S, S, 3]` in 0-255 (the model's input), xyxy boxes `[B, max_boxes, 4]`
in letterboxed pixels and int32 classes `[B, max_boxes]`, padded with `-1`.
"""

import dataclasses

import numpy as np

from edgedet.config import LetterboxConfig


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations (Ultralytics-like defaults).

    Args:
        mosaic: float. Probability that an image is a 4-image mosaic.
            Defaults to 0.5.
        scale: float. Random zoom in `[1 - scale, 1 + scale]`. Defaults to 0.3.
        translate: float. Random shift, as a fraction of the size.
            Defaults to 0.1.
        flip: float. Probability of a horizontal flip. Defaults to 0.5.
        hsv_h: float. Hue jitter (fraction of the hue circle). Defaults to 0.015.
        hsv_s: float. Saturation gain jitter. Defaults to 0.5.
        hsv_v: float. Value gain jitter. Defaults to 0.3.
        min_visible: float. A box cut by a crop is kept when at least this
            fraction of its area stays in the image. Defaults to 0.4.
        min_side: float. Smallest kept box side, in pixels. Defaults to 2.
    """

    mosaic: float = 0.5
    scale: float = 0.3
    translate: float = 0.1
    flip: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.3
    min_visible: float = 0.4
    min_side: float = 2.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"Invalid {field.name}: {value!r}. Expected a number >= 0.")
        for name in ("mosaic", "flip", "min_visible", "scale", "translate"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"Invalid {name}: {getattr(self, name)!r}. Expected a value in [0, 1]."
                )

    @classmethod
    def none(cls):
        """No augmentation at all."""
        return cls(mosaic=0, scale=0, translate=0, flip=0, hsv_h=0, hsv_s=0, hsv_v=0)


def _tf():
    import tensorflow as tf

    return tf


def letterbox_sample(image, boxes, config):
    """Letterboxes one image with the exported graph's function, and its boxes.

    Args:
        image: uint8 tensor `[H, W, 3]`.
        boxes: float32 tensor `[N, 4]`, xyxy in image pixels.
        config: `LetterboxConfig`.

    Returns:
        `(pixels, boxes)`: float32 `[S, S, 3]` in 0-255 and float32 `[N, 4]`
        xyxy in letterboxed pixels.
    """
    from edgedet.letterbox import letterbox

    tf = _tf()
    pixels, params = letterbox(image[None], config)
    f = tf.cast
    scale_x = f(params.new_width, tf.float32) / f(params.width, tf.float32)
    scale_y = f(params.new_height, tf.float32) / f(params.height, tf.float32)
    scale = tf.stack([scale_x, scale_y, scale_x, scale_y])
    offset = f(tf.stack([params.pad_left, params.pad_top] * 2), tf.float32)
    return pixels[0], boxes * scale + offset


def pad_boxes(boxes, classes, max_boxes):
    """Pads (or truncates) `[N, 4]` boxes and `[N]` classes to `max_boxes` rows.

    Padding rows are zero boxes with class `-1`.
    """
    tf = _tf()
    boxes, classes = boxes[:max_boxes], tf.cast(classes[:max_boxes], tf.int32)
    missing = max_boxes - tf.shape(classes)[0]
    boxes = tf.pad(boxes, [[0, missing], [0, 0]])
    classes = tf.pad(classes, [[0, missing]], constant_values=-1)
    return tf.reshape(boxes, [max_boxes, 4]), tf.reshape(classes, [max_boxes])


def compact(boxes, classes, max_boxes):
    """Moves the valid rows (class >= 0) first, keeping their order, and keeps `max_boxes`."""
    tf = _tf()
    order = tf.argsort(tf.cast(classes < 0, tf.int32), stable=True)[:max_boxes]
    return tf.gather(boxes, order), tf.gather(classes, order)


def filter_boxes(new_boxes, old_area, classes, size, config):
    """Clips boxes to the `size` square; drops the ones mostly cut away."""
    tf = _tf()
    clipped = tf.clip_by_value(new_boxes, 0.0, float(size))
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    keep = (
        (classes >= 0)
        & (w >= config.min_side)
        & (h >= config.min_side)
        & (w * h >= config.min_visible * old_area)
    )
    classes = tf.where(keep, classes, -1)
    clipped = tf.where(keep[:, None], clipped, 0.0)
    return clipped, classes


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def mosaic4(images, boxes, classes, size, config, seed=None):
    """Builds one mosaic from 4 letterboxed images.

    The 4 images are tiled on a `2S x 2S` canvas (top-left, top-right,
    bottom-left, bottom-right) and an `S x S` window whose top-left corner
    is uniform in `[S/4, 3S/4]` is cropped, so all four contribute.

    Args:
        images: float32 `[4, S, S, C]`.
        boxes: float32 `[4, M, 4]`.
        classes: int32 `[4, M]`.
        size: int. S.
        config: `AugmentConfig`.
        seed: unused; randomness comes from `tf.random`.

    Returns:
        `(image [S, S, C], boxes [M, 4], classes [M])`.
    """
    tf = _tf()
    max_boxes = boxes.shape[1]
    top = tf.concat([images[0], images[1]], axis=1)
    bottom = tf.concat([images[2], images[3]], axis=1)
    canvas = tf.concat([top, bottom], axis=0)
    oy, ox = tf.unstack(tf.random.uniform([2], size // 4, 3 * size // 4 + 1, dtype=tf.int32))
    image = canvas[oy : oy + size, ox : ox + size]
    image = tf.reshape(image, [size, size, images.shape[-1]])
    s = float(size)
    shifts = tf.constant([[0, 0], [s, 0], [0, s], [s, s]], tf.float32)  # (dx, dy) per tile
    shift = tf.tile(shifts, [1, 2])[:, None, :]  # [4, 1, 4]
    crop = tf.cast(tf.stack([ox, oy, ox, oy]), tf.float32)
    moved = tf.reshape(boxes + shift - crop, [-1, 4])
    flat_classes = tf.reshape(classes, [-1])
    moved, flat_classes = filter_boxes(
        moved, _area(tf.reshape(boxes, [-1, 4])), flat_classes, size, config
    )
    moved, flat_classes = compact(moved, flat_classes, max_boxes)
    return image, moved, flat_classes


def scale_translate(image, boxes, classes, size, config, pad_value=0.0):
    """Random zoom in `[1 - scale, 1 + scale]` and shift by up to `translate * S`."""
    tf = _tf()
    factor = tf.random.uniform([], 1.0 - config.scale, 1.0 + config.scale)
    new = tf.maximum(tf.cast(tf.round(factor * size), tf.int32), 8)
    resized = tf.image.resize(image, tf.stack([new, new]), method="bilinear")
    max_shift = int(config.translate * size)
    jitter = tf.random.uniform([2], -max_shift, max_shift + 1, dtype=tf.int32)
    offset = (size - new) // 2 + jitter  # (oy, ox) of the resized image's corner
    result = place(resized, offset[0], offset[1], size, pad_value)
    ratio = tf.cast(new, tf.float32) / float(size)
    shift = tf.cast(tf.stack([offset[1], offset[0], offset[1], offset[0]]), tf.float32)
    moved = boxes * ratio + shift
    moved, classes = filter_boxes(moved, _area(boxes) * ratio * ratio, classes, size, config)
    return result, moved, classes


def place(image, oy, ox, size, pad_value=0.0):
    """Puts `image` `[n, n, C]` with its corner at `(oy, ox)` on a `size` square.

    Parts outside the square are cut; the uncovered area is `pad_value`.
    """
    tf = _tf()
    n = tf.shape(image)[0]
    src_y, src_x = tf.maximum(-oy, 0), tf.maximum(-ox, 0)
    dst_y, dst_x = tf.maximum(oy, 0), tf.maximum(ox, 0)
    h = tf.clip_by_value(tf.minimum(n - src_y, size - dst_y), 0, size)
    w = tf.clip_by_value(tf.minimum(n - src_x, size - dst_x), 0, size)
    dst_y, dst_x = tf.minimum(dst_y, size - h), tf.minimum(dst_x, size - w)
    crop = image[src_y : src_y + h, src_x : src_x + w]
    paddings = [[dst_y, size - dst_y - h], [dst_x, size - dst_x - w], [0, 0]]
    result = tf.pad(crop, paddings, constant_values=pad_value)
    return tf.reshape(result, [size, size, image.shape[-1]])


def flip_horizontal(image, boxes, classes, size):
    """Mirrors the image left-right and its boxes (padding rows stay zero)."""
    tf = _tf()
    image = image[:, ::-1]
    flipped = tf.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], -1)
    boxes = tf.where((classes >= 0)[:, None], flipped, boxes)
    return image, boxes


def hsv_jitter(image, config):
    """Random hue shift and saturation / value gains on the first 3 channels."""
    tf = _tf()
    rgb, rest = image[..., :3], image[..., 3:]
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(rgb, 0.0, 255.0) / 255.0)
    h, s, v = tf.unstack(hsv, axis=-1)
    h = tf.math.floormod(h + tf.random.uniform([], -config.hsv_h, config.hsv_h), 1.0)
    s = tf.clip_by_value(s * tf.random.uniform([], 1 - config.hsv_s, 1 + config.hsv_s), 0, 1)
    v = tf.clip_by_value(v * tf.random.uniform([], 1 - config.hsv_v, 1 + config.hsv_v), 0, 1)
    rgb = tf.image.hsv_to_rgb(tf.stack([h, s, v], axis=-1)) * 255.0
    return tf.concat([rgb, rest], axis=-1)


def augment_one(image, boxes, classes, size, config, pad_value=0.0):
    """Scale/translate, flip and HSV jitter for one letterboxed image.

    Works on any channel count `C >= 3` (only the first 3 get the colour
    jitter), so tests can push ground-truth masks through the same geometry.
    """
    tf = _tf()
    if config.scale or config.translate:
        image, boxes, classes = scale_translate(image, boxes, classes, size, config, pad_value)
    if config.flip:
        image, boxes = tf.cond(
            tf.random.uniform([]) < config.flip,
            lambda: flip_horizontal(image, boxes, classes, size),
            lambda: (image, boxes),
        )
    if config.hsv_h or config.hsv_s or config.hsv_v:
        image = hsv_jitter(image, config)
    boxes, classes = compact(boxes, classes, boxes.shape[0])
    return image, boxes, classes


def mosaic_group(images, boxes, classes, size, config):
    """Maps a group of 4 samples to 4 samples, each a mosaic with probability `mosaic`.

    Output k is a mosaic of the group rolled by k (so each output has its own
    layout), or sample k itself.
    """
    tf = _tf()
    outputs = []
    for k in range(4):
        order = [(k + j) % 4 for j in range(4)]

        def make(order=order):
            return mosaic4(
                tf.gather(images, order), tf.gather(boxes, order), tf.gather(classes, order),
                size, config,
            )

        outputs.append(
            tf.cond(
                tf.random.uniform([]) < config.mosaic,
                make,
                lambda k=k: (images[k], boxes[k], classes[k]),
            )
        )
    return tuple(tf.stack(parts) for parts in zip(*outputs))


def _signature():
    tf = _tf()
    return (
        tf.TensorSpec([None, None, 3], tf.uint8),
        tf.TensorSpec([None, 4], tf.float32),
        tf.TensorSpec([None], tf.int32),
    )


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc(mmap_threshold=32 << 20, trim_threshold=128 << 20):
    """Undoes the malloc setting tf.data's generator dataset makes, on glibc.

    The first `Dataset.from_generator` iterator of a process sets glibc's
    `M_TRIM_THRESHOLD` to 128 KiB ("Memory patch applied" in the log). That
    also switches off glibc's dynamic mmap threshold, so from then on every
    tensor over 128 KiB is a fresh `mmap` whose pages fault in again at each
    training step: measured here (yolov8n, 320 px, batch 16, 2 cores) 3-5x the
    page faults and 20% or more of a CPU training step in kernel time. This
    sets the thresholds back to glibc's own dynamic ceiling (32 MiB) and a
    trim threshold that keeps a step's freed activations for the next step.
    No library offers this; it is one `mallopt` call through ctypes.

    Returns:
        bool. True when both settings were applied (Linux with glibc).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
                and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


def _generator(dataset, indices):
    def generate():
        tune_malloc()  # runs after tf.data's own setting; see `tune_malloc`
        for index in indices:
            item = dataset[int(index)]
            yield (
                np.asarray(item["image"], np.uint8),
                np.asarray(item["boxes"], np.float32).reshape(-1, 4),
                np.asarray(item["classes"], np.int32).reshape(-1),
            )

    return generate


def make_dataset(
    dataset,
    batch_size,
    letterbox=None,
    max_boxes=64,
    augment=None,
    shuffle=False,
    seed=0,
    cache=True,
    repeat=False,
    drop_remainder=False,
):
    """Builds a `tf.data.Dataset` of letterboxed, augmented, padded batches.

    Example:

    ```python
    data = load_dataset("synthetic:shapes?n=200&size=256")
    train = make_dataset(data, 16, LetterboxConfig.kerascv(256), augment=AugmentConfig())
    images, labels = next(iter(train))  # [16, 256, 256, 3], {"boxes", "classes"}
    ```

    Args:
        dataset: `edgedet.data.DetectionDataset` with `"xyxy"` pixel boxes.
        batch_size: int. Images per batch.
        letterbox: `edgedet.config.LetterboxConfig` or dict. The model's.
            Defaults to `LetterboxConfig()`.
        max_boxes: int. Rows of the dense box tensors (extra boxes are
            dropped, mosaic keeps the first ones). Defaults to 64.
        augment: `AugmentConfig` or None (no augmentation). Defaults to None.
        shuffle: bool. Shuffle the images every epoch. Defaults to False.
        seed: int. Shuffle seed. Defaults to 0.
        cache: bool. Keep the decoded images in memory after the first
            epoch. Defaults to True.
        repeat: bool. Repeat forever (use `steps_per_epoch` in `fit`).
            Defaults to False.
        drop_remainder: bool. Drop the last incomplete batch.
            Defaults to False.

    Returns:
        `tf.data.Dataset` of `(images, {"boxes", "classes"})`.

    Raises:
        ValueError: an empty dataset, a bad batch size, or a dataset whose
            boxes are not `"xyxy"` pixels.
    """
    tf = _tf()
    if len(dataset) == 0:
        raise ValueError(f"The dataset {dataset!r} is empty: no image to train or evaluate on.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Invalid batch_size: {batch_size!r}. Expected an int >= 1.")
    if not isinstance(max_boxes, int) or max_boxes < 1:
        raise ValueError(f"Invalid max_boxes: {max_boxes!r}. Expected an int >= 1.")
    box_format = getattr(dataset, "bounding_box_format", "xyxy")
    if box_format != "xyxy":
        raise ValueError(
            f"Expected a dataset with 'xyxy' pixel boxes, received {box_format!r}."
        )
    config = LetterboxConfig() if letterbox is None else LetterboxConfig.from_dict(letterbox)
    size, pad_value = config.size, float(config.pad_value)
    auto = tf.data.AUTOTUNE
    indices = np.arange(len(dataset))
    data = tf.data.Dataset.from_generator(
        _generator(dataset, indices), output_signature=_signature()
    )
    if cache:
        data = data.cache()
    if shuffle:
        data = data.shuffle(min(len(dataset), 4096), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()

    def prepare(image, boxes, classes):
        pixels, boxes = letterbox_sample(image, boxes, config)
        boxes, classes = pad_boxes(boxes, classes, max_boxes)
        return pixels, boxes, classes

    data = data.map(prepare, num_parallel_calls=auto)
    if augment is not None and augment.mosaic > 0:
        data = data.batch(4, drop_remainder=True).map(
            lambda i, b, c: mosaic_group(i, b, c, size, augment), num_parallel_calls=auto
        ).unbatch()
    if augment is not None:
        data = data.map(
            lambda i, b, c: augment_one(i, b, c, size, augment, pad_value),
            num_parallel_calls=auto,
        )
    data = data.map(lambda i, b, c: (i, {"boxes": b, "classes": c}))
    return data.batch(batch_size, drop_remainder=drop_remainder).prefetch(auto)


def draw_batch(images, labels, path, class_names=None, columns=4):
    """Draws a batch with its boxes into one PNG grid, to check that labels line up.

    Args:
        images: float `[B, S, S, 3]` pixels in 0-255 (tensor or array).
        labels: dict with `"boxes"` `[B, M, 4]` xyxy and `"classes"` `[B, M]`
            (rows with class `-1` are padding).
        path: str or path-like. The PNG to write.
        class_names: sequence of str or None. Defaults to None (class ids).
        columns: int. Images per row. Defaults to 4.

    Returns:
        The path written.
    """
    from PIL import Image, ImageDraw

    images = np.clip(np.asarray(images, np.float32), 0, 255).astype(np.uint8)
    boxes, classes = np.asarray(labels["boxes"]), np.asarray(labels["classes"])
    count, size = images.shape[0], images.shape[1]
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * size, rows * size), (40, 40, 40))
    palette = [(255, 56, 56), (56, 255, 56), (56, 120, 255), (255, 200, 0), (255, 0, 255),
               (0, 255, 255), (255, 128, 0), (128, 0, 255)]
    for k in range(count):
        tile = Image.fromarray(images[k])
        draw = ImageDraw.Draw(tile)
        for box, class_id in zip(boxes[k], classes[k]):
            if class_id < 0:
                continue
            colour = palette[int(class_id) % len(palette)]
            draw.rectangle([float(v) for v in box], outline=colour, width=1)
            name = class_names[class_id] if class_names is not None else str(int(class_id))
            draw.text((float(box[0]) + 1, float(box[1]) + 1), name, fill=colour)
        sheet.paste(tile, ((k % columns) * size, (k // columns) * size))
    sheet.save(path)
    return path
