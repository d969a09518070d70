"""Synthetic shapes: a detection dataset generated from a seed, for tests and demos.

Each image has a textured background (gradient, smooth colour noise, stripes
or blurred blotches) and 0 or more filled shapes (circle, square, triangle,
ring, cross) of varied size, aspect ratio, rotation and colour, drawn with
Pillow. Every box is the exact extent of the pixels the object shows in the
final image (objects drawn later may hide parts of earlier ones; how much is
capped by `max_occlusion`), in `"xyxy"` pixels with exclusive right/bottom
edges. Image `i` depends only on `(seed, split, i)`: the same arguments give
byte-identical images, in any order and on any platform numpy supports.

Nothing here imports TensorFlow.
"""

import math
import urllib.parse
import zlib

import numpy as np

from edgedet.data.dataset import DetectionDataset

CLASSES = ("circle", "square", "triangle", "ring", "cross")
BACKGROUNDS = ("gradient", "noise", "stripes", "blotches")
MIN_SIDE = 16
# Minimum colour distance (RGB, Euclidean) between an object and the pixels
# it is drawn over (5th percentile), so every object stays visible.
MIN_CONTRAST = 90.0
_PLACEMENT_TRIES = 40


def _parse_size(image_size):
    """Returns `((hmin, hmax), (wmin, wmax))` from an int, `(H, W)` or ranges."""

    def side(value):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            low = high = int(value)
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            low, high = (int(v) for v in value)
        else:
            raise ValueError
        if low < MIN_SIDE or high < low:
            raise ValueError
        return low, high

    try:
        if isinstance(image_size, (int, np.integer)):
            return side(image_size), side(image_size)
        if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
            return side(image_size[0]), side(image_size[1])
        raise ValueError
    except (ValueError, TypeError):
        raise ValueError(
            f"Invalid image_size: {image_size!r}. Expected an int, (height, width), or "
            f"((min_height, max_height), (min_width, max_width)), sides >= {MIN_SIDE}."
        ) from None


class SyntheticShapes(DetectionDataset):
    """Procedurally generated shapes with exact tight boxes.

    Example:

    ```python
    dataset = SyntheticShapes(num_images=200, image_size=320, seed=0)
    sample = dataset[0]  # {"image", "boxes", "classes", "image_id", "file_name"}
    dataset.write("/tmp/shapes", format="yolo", split="train")
    ```

    Args:
        num_images: int. Number of images. Defaults to 100.
        image_size: int, `(height, width)` or `((min_h, max_h), (min_w, max_w))`.
            With ranges every image draws its own size (inclusive bounds).
            Defaults to 320.
        seed: int. Non-negative. Defaults to 0.
        classes: sequence of str. Shapes to draw, a subset of `CLASSES` in
            any order (the order defines the class ids). Defaults to `CLASSES`.
        min_objects: int. Defaults to 0 (some images are empty).
        max_objects: int. Defaults to 6.
        min_object_size: int. Smallest object extent in pixels. Defaults to 8.
        max_object_size: int. Largest object extent in pixels, or None for half
            the image's shorter side. Defaults to None.
        max_occlusion: float. Largest fraction of an object that later objects
            may cover. Defaults to 0.3.
        noise: int. Largest amplitude of the uniform per-pixel noise added at
            the end (each image draws an amplitude in `[0, noise]`). Defaults
            to 8.
        split: str. Mixed into the seed so that splits differ. Defaults to
            `"train"`.
    """

    def __init__(
        self,
        num_images=100,
        image_size=320,
        seed=0,
        classes=CLASSES,
        min_objects=0,
        max_objects=6,
        min_object_size=8,
        max_object_size=None,
        max_occlusion=0.3,
        noise=8,
        split="train",
    ):
        if not isinstance(num_images, (int, np.integer)) or num_images < 0:
            raise ValueError(f"Invalid num_images: {num_images!r}. Expected an int >= 0.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Invalid seed: {seed!r}. Expected an int >= 0.")
        classes = tuple(classes)
        unknown = [c for c in classes if c not in CLASSES]
        if not classes or unknown or len(set(classes)) != len(classes):
            raise ValueError(
                f"Invalid classes: {classes!r}. Expected distinct names from {list(CLASSES)}."
            )
        if not 0 <= min_objects <= max_objects:
            raise ValueError(
                f"Invalid object counts: min_objects={min_objects!r}, "
                f"max_objects={max_objects!r}. Expected 0 <= min_objects <= max_objects."
            )
        self.heights, self.widths = _parse_size(image_size)
        shortest = min(self.heights[0], self.widths[0])
        if max_object_size is None:
            max_object_size = shortest // 2
        if not 2 <= min_object_size <= max_object_size <= shortest:
            raise ValueError(
                f"Invalid object sizes: min_object_size={min_object_size!r}, "
                f"max_object_size={max_object_size!r}. Expected 2 <= min <= max <= {shortest} "
                "(the shortest image side)."
            )
        if not 0.0 <= max_occlusion < 1.0:
            raise ValueError(f"Invalid max_occlusion: {max_occlusion!r}. Expected [0, 1).")
        if not isinstance(noise, (int, np.integer)) or not 0 <= noise <= 64:
            raise ValueError(f"Invalid noise: {noise!r}. Expected an int in [0, 64].")
        self.num_images = int(num_images)
        self.seed = int(seed)
        self.class_names = classes
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.min_object_size, self.max_object_size = int(min_object_size), int(max_object_size)
        self.max_occlusion = float(max_occlusion)
        self.noise = int(noise)
        self.split = str(split)
        self._stream = zlib.crc32(self.split.encode("utf-8"))

    def __len__(self):
        return self.num_images

    def __repr__(self):
        return (
            f"SyntheticShapes(num_images={self.num_images}, seed={self.seed}, "
            f"split={self.split!r}, heights={self.heights}, widths={self.widths})"
        )

    def get(self, index):
        return self.generate(index)

    def generate(self, index, return_masks=False):
        """Draws image `index`.

        Args:
            index: int. In `[0, num_images)`.
            return_masks: bool. Also return `"masks"`: bool `[N, H, W]`, the
                visible pixels of each object. Defaults to False.

        Returns:
            A sample dict (see `edgedet.data.dataset`).
        """
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, self._stream, index])
        height = int(rng.integers(self.heights[0], self.heights[1] + 1))
        width = int(rng.integers(self.widths[0], self.widths[1] + 1))
        image = np.array(_background(rng, height, width))
        labels = np.full((height, width), -1, np.int16)
        areas, visible = [], []
        regions = []
        classes = []
        largest = min(self.max_object_size, min(height, width))
        for _ in range(int(rng.integers(self.min_objects, self.max_objects + 1))):
            class_id = int(rng.integers(len(self.class_names)))
            placed = self._place(rng, labels, areas, visible, self.class_names[class_id], largest)
            if placed is None:
                continue
            y, x, mask = placed
            region = image[y : y + mask.shape[0], x : x + mask.shape[1]]
            region[mask] = _contrasting_colour(rng, region[mask])
            regions.append((y, x, mask.shape[0], mask.shape[1]))
            classes.append(class_id)
        amplitude = int(rng.integers(0, self.noise + 1))
        if amplitude:
            grain = rng.integers(-amplitude, amplitude + 1, size=image.shape, dtype=np.int16)
            image = np.clip(image + grain, 0, 255).astype(np.uint8)
        boxes = np.zeros((len(regions), 4), np.float32)
        for k, (y, x, h, w) in enumerate(regions):
            mine = labels[y : y + h, x : x + w] == k
            rows, cols = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
            boxes[k] = (x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1)
        sample = {
            "image": image,
            "boxes": boxes,
            "classes": np.asarray(classes, np.int32),
            "image_id": index,
            "file_name": f"shapes_{self.split}_{self.seed}_{index:06d}.png",
        }
        if return_masks:
            ids = np.arange(len(regions), dtype=np.int16)[:, None, None]
            sample["masks"] = labels[None] == ids
        return sample

    def _place(self, rng, labels, areas, visible, shape, largest):
        """Finds a spot for one shape; returns `(y, x, mask)` or None.

        Draws on `labels` (object index per pixel) and appends to `areas` /
        updates `visible` (drawn / still visible pixels per object) when it
        succeeds.
        """
        height, width = labels.shape
        low_px = self.min_object_size
        low = math.log(low_px)
        for attempt in range(_PLACEMENT_TRIES):
            # Shrink the size range after repeated failures in crowded images.
            high = math.log(max(self.min_object_size, largest * 0.5 ** (attempt // 10)))
            size = math.exp(rng.uniform(low, high)) if high > low else self.min_object_size
            mask = _shape_mask(rng, shape, size)
            h, w = mask.shape
            if h > height or w > width or not low_px <= max(h, w) <= self.max_object_size:
                continue
            y = int(rng.integers(0, height - h + 1))
            x = int(rng.integers(0, width - w + 1))
            under = labels[y : y + h, x : x + w]
            counts = np.bincount(under[mask].astype(np.int64) + 1, minlength=len(areas) + 1)[1:]
            hidden = np.asarray(areas) - np.asarray(visible) + counts
            if np.any(hidden > self.max_occlusion * np.asarray(areas, np.float64)):
                continue
            for j in np.flatnonzero(counts):
                visible[j] -= int(counts[j])
            under[mask] = len(areas)
            areas.append(int(mask.sum()))
            visible.append(areas[-1])
            return y, x, mask
        return None


def _unit_polygon(rng, shape):
    """Returns `(outer, inner)`: float `[K, 2]` polygons around the origin."""
    if shape in ("circle", "ring"):
        t = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
        outer = np.stack([np.cos(t), np.sin(t)], axis=1)
        inner = outer * rng.uniform(0.45, 0.7) if shape == "ring" else None
        return outer, inner
    if shape == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64), None
    if shape == "triangle":
        angles = np.radians([90, 210, 330] + rng.uniform(-25, 25, size=3))
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), None
    # cross: a plus sign with arms of half-width t.
    t = rng.uniform(0.2, 0.4)
    outer = np.array(
        [[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t],
         [t, 1], [-t, 1], [-t, t], [-1, t], [-1, -t], [-t, -t]],
        np.float64,
    )  # fmt: skip
    return outer, None


def _shape_mask(rng, shape, size):
    """Rasterizes one shape whose larger extent is about `size` pixels."""
    from PIL import Image, ImageDraw

    outer, inner = _unit_polygon(rng, shape)
    aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    if shape == "square":
        aspect = math.exp(rng.uniform(math.log(0.7), math.log(1.4)))
    angle = rng.uniform(0.0, math.pi)
    scale = np.array([math.sqrt(aspect), 1.0 / math.sqrt(aspect)])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    outer = outer * scale @ rotation.T
    low, high = outer.min(axis=0), outer.max(axis=0)
    factor = max(size - 1.0, 1.0) / float(np.max(high - low))
    offset = -low * factor + 0.5
    side_w, side_h = (np.ceil((high - low) * factor) + 2).astype(int)
    canvas = Image.new("L", (int(side_w), int(side_h)), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([tuple(p) for p in outer * factor + offset], fill=255)
    if inner is not None:
        inner = inner * scale @ rotation.T
        draw.polygon([tuple(p) for p in inner * factor + offset], fill=0)
    mask = np.asarray(canvas) > 0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return np.zeros((1, 1), bool)
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _contrasting_colour(rng, under):
    """Picks an RGB colour far from the pixels `under` (uint8 `[K, 3]`)."""
    under = under[:: max(1, len(under) // 256)].astype(np.float32)
    fifth = len(under) // 20
    for _ in range(20):
        colour = rng.integers(0, 256, size=3)
        distance = np.sqrt(np.sum((under - colour) ** 2, axis=1))
        if np.partition(distance, fifth)[fifth] >= MIN_CONTRAST:
            return colour.astype(np.uint8)
    # Fallback: the opposite end of each channel from the mean beneath.
    return np.where(under.mean(axis=0) > 127.5, 0, 255).astype(np.uint8)


def _background(rng, height, width):
    """Returns a uint8 `[H, W, 3]` textured background."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    if kind in ("gradient", "stripes"):
        angle = rng.uniform(0.0, 2 * math.pi)
        x = np.arange(width, dtype=np.float32)[None, :] * math.cos(angle)
        t = x + np.arange(height, dtype=np.float32)[:, None] * math.sin(angle)
        if kind == "gradient":
            t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        else:
            period = rng.uniform(6.0, 48.0)
            t = np.sin(t * (2 * math.pi / period) + rng.uniform(0, 2 * math.pi))
            t = (t > 0).astype(np.float32) if rng.random() < 0.5 else (t + 1) / 2
        return (c0 + t[..., None] * (c1 - c0) + 0.5).astype(np.uint8)
    from PIL import Image, ImageDraw, ImageFilter

    if kind == "noise":
        grid = rng.integers(0, 256, size=(int(rng.integers(2, 9)), int(rng.integers(2, 9)), 3))
        small = Image.fromarray(grid.astype(np.uint8))
        return np.asarray(small.resize((width, height), Image.BILINEAR))
    # Blotches: ellipses drawn at a quarter of the size, blurred well beyond
    # the sharp edges of the objects (so no blotch looks like one), upsampled.
    w, h = max(width // 4, 4), max(height // 4, 4)
    canvas = Image.new("RGB", (w, h), tuple(int(v) for v in c0))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 16))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.05, 0.3, size=2) * (w, h)
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 4.0)))
    return np.asarray(canvas.resize((width, height), Image.BILINEAR))


_SPEC_OPTIONS = {
    "n": int,
    "seed": int,
    "size": str,
    "min_objects": int,
    "max_objects": int,
    "min_object_size": int,
    "max_object_size": int,
    "max_occlusion": float,
    "noise": int,
    "classes": str,
}


def _parse_spec_size(text):
    """`"320"`, `"240x320"` (HxW), `"256-512"` or `"240-480x320-640"`."""

    def side(part):
        bounds = [int(v) for v in part.split("-")]
        if len(bounds) not in (1, 2):
            raise ValueError
        return int(bounds[0]) if len(bounds) == 1 else tuple(bounds)

    parts = text.lower().split("x")
    if len(parts) == 1:
        return (side(parts[0]), side(parts[0]))
    if len(parts) == 2:
        return (side(parts[0]), side(parts[1]))
    raise ValueError


def from_spec(spec, split="train"):
    """Builds `SyntheticShapes` from `synthetic:shapes?key=value&...`.

    Options: `n` (num_images, default 100), `seed` (0), `size` (`320`,
    `240x320` for height x width, `256-512` for a range, `240-480x320-640`),
    `min_objects`, `max_objects`, `min_object_size`, `max_object_size`,
    `max_occlusion`, `noise`, `classes` (comma-separated).

    Args:
        spec: str. The spec.
        split: str. Passed to `SyntheticShapes`. Defaults to `"train"`.
    """
    from edgedet.suggest import closest

    head, _, query = spec.partition("?")
    if head != "synthetic:shapes":
        raise ValueError(
            f"Invalid synthetic dataset spec: {spec!r}. Expected 'synthetic:shapes' with "
            "optional '?n=100&seed=0&size=320'." + closest(head, ["synthetic:shapes"])
        )
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(
            f"Malformed options in {spec!r}. Expected 'key=value&key=value'."
        ) from None
    kwargs = {"split": split}
    for key, value in pairs:
        if key not in _SPEC_OPTIONS:
            raise ValueError(
                f"Unknown option {key!r} in {spec!r}. Expected one of {sorted(_SPEC_OPTIONS)}."
                + closest(key, _SPEC_OPTIONS)
            )
        try:
            if key == "size":
                kwargs["image_size"] = _parse_spec_size(value)
            elif key == "classes":
                kwargs["classes"] = tuple(c.strip() for c in value.split(",") if c.strip())
            else:
                kwargs["num_images" if key == "n" else key] = _SPEC_OPTIONS[key](value)
        except ValueError:
            raise ValueError(f"Invalid value {value!r} for {key!r} in {spec!r}.") from None
    return SyntheticShapes(**kwargs)
