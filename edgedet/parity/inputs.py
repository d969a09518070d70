"""Inputs of a parity run: the images (a folder, files, a synthetic spec, arrays) and labels."""

import pathlib

import numpy as np

from edgedet import sources
from edgedet.detections import Detections
from edgedet.files import printable

# Decoded images are kept in memory up to this many bytes, so each runtime
# reads the same pixels without decoding (or generating) them again.
CACHE_BYTES = 512 * 1024 * 1024


class ParityInputError(ValueError):
    """Bad input to a parity run: the CLI exits with code 2."""


class ImageSource(sources.ImageSource):
    """The images of a parity run: `edgedet.sources.ImageSource` with parity's rules.

    A synthetic spec reads the `"parity"` stream; decoded images are cached
    (`CACHE_BYTES`); a missing path, an empty folder, a bad array or an empty
    source is a `ParityInputError`.

    Args:
        images: a folder or image file (str / `os.PathLike`), a list of
            them, a glob, a `"synthetic:shapes?..."` spec, an
            `edgedet.data.DetectionDataset`, a list of uint8 `[H, W, 3]`
            arrays (named `image_0000`, ...), or a list of `(name, array)`.
    """

    def __init__(self, images):
        from edgedet.images import ImageError

        try:
            super().__init__(images, split="parity", cache_bytes=CACHE_BYTES)
        except (ImageError, sources.SourceError) as error:
            raise ParityInputError(str(error)) from None
        if not self.names:
            raise ParityInputError("No images to compare on: the image source is empty.")

    def drop_unreadable(self):
        """Decodes every image once; drops those that cannot be read.

        Returns:
            A list of `{"image": name, "reason": str}`, one per dropped image.

        Raises:
            ParityInputError: no image can be read.
        """
        try:
            return super().drop_unreadable()
        except sources.SourceError as error:
            raise ParityInputError(str(error)) from None


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
