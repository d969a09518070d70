"""Inputs of a parity run: the images (a folder, files, a synthetic spec, arrays) and labels."""

import os
import pathlib

import numpy as np

from edgedet.detections import Detections
from edgedet.files import printable

# Decoded images are kept in memory up to this many bytes, so each runtime
# reads the same pixels without decoding (or generating) them again.
CACHE_BYTES = 512 * 1024 * 1024


class ParityInputError(ValueError):
    """Bad input to a parity run: the CLI exits with code 2."""


class ImageSource:
    """A fixed, ordered list of named images, decoded on demand.

    Args:
        images: a folder or image file (str / `os.PathLike`), a list of
            them, a `"synthetic:shapes?..."` spec, an
            `edgedet.data.DetectionDataset`, a list of uint8 `[H, W, 3]`
            arrays (named `image_0000`, ...), or a list of `(name, array)`.
    """

    def __init__(self, images):
        self.root = None
        self.dataset = None
        self._arrays = None
        self._paths = None
        self._indices = None  # Dataset indices kept by `drop_unreadable`.
        self.dropped = set()  # Names of the images `drop_unreadable` dropped.
        if isinstance(images, (str, os.PathLike)) and str(images).startswith("synthetic:"):
            from edgedet.data.synthetic import from_spec

            images = from_spec(str(images), split="parity")
        if hasattr(images, "get") and hasattr(images, "class_names"):  # A DetectionDataset.
            self.dataset = images
            self.names = _dataset_names(images)
        elif isinstance(images, (str, os.PathLike)) or _is_path_list(images):
            from edgedet.images import list_images

            if isinstance(images, (str, os.PathLike)) and pathlib.Path(images).is_dir():
                self.root = pathlib.Path(images)
            try:
                self._paths = list_images(images)
            except ValueError as error:
                raise ParityInputError(str(error)) from None
            self.names = [self._name(p) for p in self._paths]
        elif isinstance(images, (list, tuple)):
            self._arrays, self.names = [], []
            for i, item in enumerate(images):
                name, array = item if isinstance(item, tuple) else (f"image_{i:04d}", item)
                array = np.asarray(array)
                if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                    raise ParityInputError(
                        f"Image {name!r}: expected a uint8 [H, W, 3] array, received "
                        f"{array.dtype} {array.shape}."
                    )
                self._arrays.append(array)
                self.names.append(printable(name))
        else:
            raise ParityInputError(
                "Expected images as a folder, image files, a 'synthetic:shapes?...' spec, a "
                f"dataset or a list of uint8 arrays; received {type(images).__name__}."
            )
        if not self.names:
            raise ParityInputError("No images to compare on: the image source is empty.")
        self._cache = {}
        self._cached_bytes = 0

    def _name(self, path):
        if self.root is not None:
            return printable(path.relative_to(self.root).as_posix())
        return printable(path.name)

    def drop_unreadable(self):
        """Decodes every image once; drops those that cannot be read.

        Returns:
            A list of `{"image": name, "reason": str}`, one per dropped image.

        Raises:
            ParityInputError: no image can be read.
        """
        if self._arrays is not None:
            return []
        keep, failures = [], []
        for index in range(len(self)):
            try:
                self.load(index)
                keep.append(index)
            except (ValueError, OSError) as error:
                failures.append({"image": self.names[index], "reason": printable(error)})
        if not keep:
            reasons = "; ".join(f"{f['image']}: {f['reason']}" for f in failures[:5])
            raise ParityInputError(f"None of the {len(self)} images can be read: {reasons}")
        if failures:
            self.dropped = {f["image"] for f in failures}
            self.names = [self.names[i] for i in keep]
            if self._paths is not None:
                self._paths = [self._paths[i] for i in keep]
            else:
                self._indices = keep
            self._cache = {new: self._cache[old] for new, old in enumerate(keep)
                           if old in self._cache}
        return failures

    def __len__(self):
        return len(self.names)

    def load(self, index):
        """Returns image `index` as a uint8 `[H, W, 3]` array."""
        if self._arrays is not None:
            return self._arrays[index]
        if index in self._cache:
            return self._cache[index]
        if self.dataset is not None:
            position = index if self._indices is None else self._indices[index]
            image = np.asarray(self.dataset.get(position)["image"], np.uint8)
        else:
            from edgedet.images import load_image

            image = load_image(self._paths[index])
        if self._cached_bytes + image.nbytes <= CACHE_BYTES:
            self._cache[index] = image
            self._cached_bytes += image.nbytes
        return image

    def describe(self):
        if self.root is not None:
            return printable(self.root)
        if self.dataset is not None:
            return printable(repr(self.dataset))
        return f"{len(self)} images"


def _is_path_list(value):
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    )


def _dataset_names(dataset):
    names = []
    for i in range(len(dataset)):
        sample = dataset.annotation(i)
        names.append(printable(str(sample.get("file_name") or f"image_{i:04d}")))
    return names


def _coco_file_names(path):
    import json

    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        return [str(image["file_name"]) for image in data["images"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ParityInputError(f"Cannot read COCO labels {path}: {error}") from None


def _load_label_dataset(labels, source, split):
    """Opens the labels; COCO JSON is read against the image folder itself."""
    if hasattr(labels, "annotation") and hasattr(labels, "class_names"):
        return labels
    from edgedet.data import DatasetError, load_dataset, read_coco

    path = pathlib.Path(labels)
    if not path.exists():
        raise ParityInputError(f"Labels not found: {labels}")
    try:
        if path.is_file() and path.suffix.lower() == ".json":
            if source.root is None:
                raise ParityInputError(
                    "COCO labels need --images to be the folder their file names are "
                    f"relative to; received {source.describe()}."
                )
            # The reader would skip images it cannot find; name them instead.
            _check_names(_coco_file_names(path), source, labels)
            return read_coco(str(path), image_dir=str(source.root))
        return load_dataset(str(path), split=split)
    except DatasetError as error:
        raise ParityInputError(f"Cannot read labels {labels}: {error}") from None


def _index_of(file_name, source, by_path, by_base):
    file_name = pathlib.PurePath(str(file_name)).as_posix()
    index = by_path.get(file_name)
    if index is None:
        candidates = by_base.get(pathlib.PurePosixPath(file_name).name, [])
        index = candidates[0] if len(candidates) == 1 else None
    return index


def _lookups(source):
    by_path = {name: i for i, name in enumerate(source.names)}
    by_base = {}
    for i, name in enumerate(source.names):
        by_base.setdefault(pathlib.PurePosixPath(name).name, []).append(i)
    return by_path, by_base


def _was_dropped(file_name, source):
    """Whether labels name an image that was found but could not be read."""
    name = printable(pathlib.PurePath(str(file_name)).as_posix())
    base = pathlib.PurePosixPath(name).name
    return name in source.dropped or base in {pathlib.PurePosixPath(d).name for d in source.dropped}


def _check_names(file_names, source, labels):
    lookups = _lookups(source)
    absent = [n for n in file_names
              if _index_of(n, source, *lookups) is None and not _was_dropped(n, source)]
    if absent:
        raise ParityInputError(
            f"Labels {labels} name {len(absent)} image(s) that are not among the "
            f"{len(source)} images of {source.describe()}: {absent[:5]}"
            + (" ..." if len(absent) > 5 else "")
            + ". Point --images at the folder the labels describe, or trim the labels."
        )


def load_labels(labels, source, class_names, split="val"):
    """Reads real labels and lines them up with the images.

    Images are matched by name: the path relative to the image folder, else
    the file name alone. Labels that name an image not in the source are an
    error (COCO mAP over a subset would be wrong); images without labels
    count as images with no objects. Label classes are mapped to the
    reference's class ids by name.

    Args:
        labels: a label file or folder readable by `edgedet.data.load_dataset`
            (COCO JSON, YOLO `data.yaml`, VOC folder), or a `DetectionDataset`
            (e.g. the same dataset given as the images).
        source: `ImageSource`.
        class_names: sequence of str. The reference's class names.
        split: str. Split to read from a YOLO or VOC dataset or a COCO
            folder. Defaults to `"val"`.

    Returns:
        `(list of Detections, one per image, "xyxy" pixels; description str)`.
    """
    dataset = _load_label_dataset(labels, source, split)
    id_of = {name: i for i, name in enumerate(class_names)}
    unknown = [n for n in dataset.class_names if n not in id_of]
    if unknown:
        raise ParityInputError(
            f"Labels {labels} use class names that the model does not have: {unknown[:10]}. "
            f"Model classes: {list(class_names)[:20]}."
        )
    remap = np.asarray([id_of[n] for n in dataset.class_names] or [0], np.int32)
    samples = [dataset.annotation(k) for k in range(len(dataset))]
    _check_names([s["file_name"] for s in samples], source, labels)
    lookups = _lookups(source)
    truth = [Detections.empty() for _ in source.names]
    for sample in samples:
        index = _index_of(sample["file_name"], source, *lookups)
        if index is None:  # An unreadable image, reported apart.
            continue
        classes = remap[np.asarray(sample["classes"], np.int32)]
        boxes = np.asarray(sample["boxes"], np.float32).reshape(-1, 4)
        truth[index] = Detections(boxes, np.ones(len(boxes), np.float32), classes, "xyxy")
    return truth, repr(labels) if hasattr(labels, "class_names") else str(labels)
