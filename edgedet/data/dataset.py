"""Common dataset types: samples, records, validation of annotations, sampling.

Opening a dataset by path or spec is `edgedet.data.loading.load_dataset`;
the formats it knows are the rows of `edgedet.data.formats`.

A sample is a plain dict:

```python
{
    "image": uint8 [H, W, 3] RGB array,
    "boxes": float32 [N, 4] in the dataset's `bounding_box_format`,
    "classes": int32 [N], indices into `dataset.class_names`,
    "image_id": int or str,
    "file_name": str,
}
```

Every dataset here stores boxes as `"xyxy"` in pixels (the names of
`edgedet.boxes`), with continuous pixel edges: an object that covers pixel
columns `3..7` (inclusive) has `left = 3` and `right = 8`, so `right - left`
is its width in pixels. This is COCO's convention (`[x, y, w, h]` with `w` the
width in pixels); the VOC reader converts VOC's 1-based inclusive corners to
it and the YOLO reader multiplies the normalized boxes by the image size.

Images are decoded with `edgedet.images.load_image` (EXIF orientation
applied, any Pillow mode to RGB), as everywhere else in edgedet, so a dataset
image is exactly what a runtime would be fed. Nothing here imports TensorFlow.
"""

import dataclasses
import os
import warnings

import numpy as np

from edgedet.data.formats import BOUNDING_BOX_FORMAT
from edgedet.sampling import draw_indices
from edgedet.suggest import closest

ON_INVALID = ("skip", "clip", "error")

# Boxes that stick out of the image by at most this many pixels (rounding in
# the annotation tool, normalized YOLO values like 1.0000001) are clipped
# silently; beyond it, `on_invalid` decides.
BORDER_TOLERANCE = 0.5
# At most this many warnings per load; the rest are counted in one summary.
MAX_WARNINGS = 20


class DatasetError(ValueError):
    """A dataset or annotation file that cannot be read as asked."""


class AnnotationWarning(UserWarning):
    """An annotation that was skipped or clipped (`on_invalid="skip"|"clip"`)."""


def check_on_invalid(on_invalid):
    """Checks an `on_invalid` policy name and returns it."""
    if on_invalid not in ON_INVALID:
        raise ValueError(
            f"Invalid on_invalid: {on_invalid!r}. Expected one of {list(ON_INVALID)}."
            + closest(on_invalid, ON_INVALID)
        )
    return on_invalid


def where(path, line=None):
    """Formats a location for messages: `path` or `path:line`."""
    return f"{path}:{line}" if line is not None else str(path)


class Validator:
    """Applies an `on_invalid` policy to bad annotations while reading a dataset.

    Args:
        on_invalid: str. `"skip"` drops the bad box (or image) with a warning,
            `"clip"` clips boxes that stick out of the image to its border
            (and drops what cannot be repaired) with a warning, `"error"`
            raises `DatasetError`. Defaults to `"skip"`.
    """

    def __init__(self, on_invalid="skip"):
        self.on_invalid = check_on_invalid(on_invalid)
        self.num_issues = 0

    def issue(self, location, message, repairable=False):
        """Reports one problem; raises under `"error"`, warns otherwise.

        Returns:
            True when the caller should repair (clip) the annotation, False
            when it should drop it.
        """
        text = f"{location}: {message}"
        if self.on_invalid == "error":
            raise DatasetError(text + " (on_invalid='error'; use 'skip' or 'clip' to go on).")
        repair = repairable and self.on_invalid == "clip"
        self.num_issues += 1
        if self.num_issues <= MAX_WARNINGS:
            action = "clipped to the image" if repair else "skipped"
            warnings.warn(f"{text}; {action}.", AnnotationWarning, stacklevel=3)
        return repair

    def fail(self, location, message):
        """Raises `DatasetError` whatever the policy (unreadable input)."""
        raise DatasetError(f"{location}: {message}")

    def finish(self, source):
        """Emits one summary warning when more issues were found than shown."""
        if self.num_issues > MAX_WARNINGS:
            warnings.warn(
                f"{source}: {self.num_issues} invalid annotations in all; only the first "
                f"{MAX_WARNINGS} were shown.",
                AnnotationWarning,
                stacklevel=3,
            )

    def check_box(self, box, class_id, width, height, num_classes, location):
        """Validates one `xyxy` pixel box and its class.

        Returns:
            The (possibly clipped) box as a tuple of 4 floats, or None to
            drop it.
        """
        if not 0 <= class_id < num_classes:
            self.issue(
                location,
                f"class id {class_id} is outside the class list (expected 0..{num_classes - 1})",
            )
            return None
        x0, y0, x1, y1 = (float(v) for v in box)
        if not all(np.isfinite([x0, y0, x1, y1])):
            self.issue(location, f"box {_fmt_box(box)} is not finite")
            return None
        if x1 <= x0 or y1 <= y0:
            self.issue(location, f"box {_fmt_box(box)} has zero or negative size")
            return None
        tol = BORDER_TOLERANCE
        outside = x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol
        if outside:
            fully_outside = x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0
            repair = self.issue(
                location,
                f"box {_fmt_box(box)} is outside the image of size {width}x{height} (WxH)",
                repairable=not fully_outside,
            )
            if not repair:
                return None
        x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
        y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
        return (x0, y0, x1, y1)


def _fmt_box(box):
    return "[" + ", ".join(f"{float(v):g}" for v in box) + "]"


@dataclasses.dataclass
class Record:
    """One image and its annotations, as stored by the file-based datasets.

    Args:
        file_name: str. Name of the image relative to the dataset's image
            folder (written as is by the writers).
        image_id: int or str.
        boxes: float32 `[N, 4]` `xyxy` pixel boxes.
        classes: int32 `[N]`.
        path: str. Absolute path of the image file, or None when `image` is
            given.
        width: int. Image width in pixels, or None when unknown.
        height: int. Image height in pixels, or None when unknown.
        image: uint8 `[H, W, 3]` array held in memory, or None.
    """

    file_name: str
    image_id: object
    boxes: np.ndarray
    classes: np.ndarray
    path: str = None
    width: int = None
    height: int = None
    image: np.ndarray = None

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.classes = np.asarray(self.classes, dtype=np.int32).reshape(-1)
        if len(self.boxes) != len(self.classes):
            raise ValueError(
                f"{self.file_name}: {len(self.boxes)} boxes but {len(self.classes)} classes."
            )


class DetectionDataset:
    """Base class: a sized, indexable, deterministic sequence of samples.

    Subclasses set `class_names` and implement `__len__` and `get`.
    Iteration follows the index order, which is fixed for a given input.

    Attributes:
        class_names: tuple of str. `classes` index into it.
        bounding_box_format: str. Format of `boxes` (an `edgedet.boxes`
            name); `"xyxy"` pixels for every dataset here.
    """

    class_names = ()
    bounding_box_format = BOUNDING_BOX_FORMAT

    def __len__(self):
        raise NotImplementedError

    def get(self, index):
        """Returns sample `index` with its image decoded."""
        raise NotImplementedError

    def annotation(self, index):
        """Returns sample `index` without decoding the image when possible.

        File-based datasets put the image path under `"image"` (and
        `"path"`); generated datasets return the full sample.
        """
        return self.get(index)

    def _check_index(self, index):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"Dataset indices must be integers, received: {index!r}")
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"Index {index} out of range for a dataset of {size} samples.")
        return int(index) % size

    def __getitem__(self, index):
        return self.get(self._check_index(index))

    def __iter__(self):
        for index in range(len(self)):
            yield self.get(index)

    @property
    def num_classes(self):
        return len(self.class_names)

    def write(self, out_dir, format="coco", split="train", force=False, image_format="png"):
        """Writes the dataset to disk as COCO JSON, YOLO txt or Pascal VOC XML.

        Layouts (`split` names the subset):
        - coco: `annotations/instances_<split>.json`, `images/<split>/`.
        - yolo: `data.yaml`, `images/<split>/`, `labels/<split>/`.
        - voc: `Annotations/`, `JPEGImages/`, `ImageSets/Main/<split>.txt`,
          and `labels.txt` with the class names in order.

        Args:
            out_dir: str. Output root; other splits already there are kept.
            format: str. `"coco"`, `"yolo"` or `"voc"`. Defaults to `"coco"`.
            split: str. Defaults to `"train"`.
            force: bool. Overwrite files of this split that already exist.
                Defaults to False (refuse, naming the first one).
            image_format: str. `"png"` (lossless) or `"jpg"`. Defaults to
                `"png"`.

        Returns:
            The path to load it back with `load_dataset` (the JSON file, the
            `data.yaml` or the VOC root).
        """
        from edgedet.data.writing import write_dataset

        return write_dataset(self, out_dir, format, split, force, image_format)


class RecordDataset(DetectionDataset):
    """A dataset backed by a list of `Record`s (what the readers return).

    Args:
        records: list of `Record`.
        class_names: sequence of str.
        source: str. Where the data came from, for messages and `repr`.
            Defaults to "".
        category_ids: sequence of int. Original COCO category id of each
            class index, or None. Defaults to None.
    """

    def __init__(self, records, class_names, source="", category_ids=None):
        self.records = list(records)
        self.class_names = tuple(str(name) for name in class_names)
        self.source = str(source)
        self.category_ids = tuple(category_ids) if category_ids is not None else None

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return (
            f"{type(self).__name__}(source={self.source!r}, samples={len(self)}, "
            f"classes={len(self.class_names)})"
        )

    def _sample(self, record, image):
        return {
            "image": image,
            "boxes": record.boxes.copy(),
            "classes": record.classes.copy(),
            "image_id": record.image_id,
            "file_name": record.file_name,
        }

    def get(self, index):
        record = self.records[index]
        if record.image is not None:
            image = record.image
        else:
            from edgedet.images import load_image

            image = load_image(record.path)
        return self._sample(record, image)

    def annotation(self, index):
        record = self.records[index]
        sample = self._sample(record, record.image if record.image is not None else record.path)
        sample["path"] = record.path
        return sample


class Subset(DetectionDataset):
    """A view of `dataset` at the given indices, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.class_names = dataset.class_names
        self.bounding_box_format = dataset.bounding_box_format

    def __len__(self):
        return len(self.indices)

    def get(self, index):
        return self.dataset.get(self.indices[index])

    def annotation(self, index):
        return self.dataset.annotation(self.indices[index])


def sample(dataset, n, seed=0):
    """Picks `n` distinct samples of `dataset`, the same ones for the same seed.

    The indices are drawn by `edgedet.sampling.draw_indices` (numpy's PCG64
    generator, without replacement, in increasing order), the rule image
    sources and calibration use too.

    Args:
        dataset: `DetectionDataset`.
        n: int. Number of samples, at most `len(dataset)`.
        seed: int. Defaults to 0.

    Returns:
        A `Subset` of `dataset`.
    """
    size = len(dataset)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"Invalid n: {n!r}. Expected a non-negative int.")
    if n > size:
        raise ValueError(f"Cannot sample {n} images from a dataset of {size}.")
    return Subset(dataset, draw_indices(size, n, seed))


def to_keras_cv(item, bounding_box_format=None):
    """Presents a sample the KerasCV way.

    Args:
        item: dict. A sample from any dataset here (boxes in `"xyxy"`).
        bounding_box_format: str. Convert the boxes to this `edgedet.boxes`
            format, or None to keep `"xyxy"`. Defaults to None.

    Returns:
        `{"images": image, "bounding_boxes": {"boxes": ..., "classes": ...}}`.
    """
    boxes = np.asarray(item["boxes"], dtype=np.float32).reshape(-1, 4)
    if bounding_box_format is not None and bounding_box_format != BOUNDING_BOX_FORMAT:
        from edgedet import boxes as box_utils

        image = item["image"]
        if isinstance(image, (str, os.PathLike)):
            raise ValueError(
                "Converting to another box format needs the decoded image (its size); "
                f"received the path {image!r}. Use dataset[i] instead of annotation(i)."
            )
        boxes = box_utils.convert_format(
            boxes, BOUNDING_BOX_FORMAT, bounding_box_format, image_shape=np.shape(image)[:2]
        )
    return {
        "images": item["image"],
        "bounding_boxes": {
            "boxes": boxes,
            "classes": np.asarray(item["classes"], dtype=np.int32).reshape(-1),
        },
    }
