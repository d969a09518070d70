"""Writing helpers shared by the COCO, YOLO and VOC writers.

`write_dataset` checks the options and hands the dataset to the writer of
its format's row in `edgedet.data.formats`; the writers use `export_items` (one `ExportItem` per
sample: its image, as an array or a file to copy, and its boxes) and `claim`
(refuse to overwrite unless `force`). Nothing here imports TensorFlow.
"""

import dataclasses
import os

import numpy as np

from edgedet.data.formats import BOUNDING_BOX_FORMAT, get_format
from edgedet.images import image_size

IMAGE_FORMATS = {"png": (".png",), "jpg": (".jpg", ".jpeg")}


def write_dataset(dataset, out_dir, format="coco", split="train", force=False, image_format="png"):
    """Writes `dataset` in `format`; see `DetectionDataset.write`."""
    writer = get_format(format, writable=True).write
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"Invalid image_format: {image_format!r}. Expected one of {list(IMAGE_FORMATS)}."
        )
    if (
        not isinstance(split, str)
        or not split
        or any(c in split for c in "/\\.")
        or split != split.strip()
    ):
        raise ValueError(f"Invalid split: {split!r}. Expected a plain name such as 'train'.")
    if dataset.bounding_box_format != BOUNDING_BOX_FORMAT:
        raise ValueError(
            f"Cannot write boxes in {dataset.bounding_box_format!r}; the writers expect "
            f"{BOUNDING_BOX_FORMAT!r} pixels."
        )
    os.makedirs(out_dir, exist_ok=True)
    return writer(dataset, out_dir, split=split, force=force, image_format=image_format)


@dataclasses.dataclass
class ExportItem:
    """One sample ready to be written: its image (array or file to copy) and boxes."""

    index: int
    image_id: object
    file_name: str
    boxes: np.ndarray
    classes: np.ndarray
    width: int
    height: int
    image: np.ndarray = None
    source: str = None

    def save(self, path):
        """Writes the image to `path` atomically (copying the source file if any)."""
        from edgedet.files import atomic_write_bytes
        from edgedet.images import save_image

        if self.source is None:
            save_image(self.image, path)
        else:
            with open(self.source, "rb") as f:
                atomic_write_bytes(path, f.read())


def export_items(dataset, image_format):
    """Yields an `ExportItem` per sample; image files of the right type are copied."""
    format_suffixes = IMAGE_FORMATS[image_format]
    for index in range(len(dataset)):
        annotation = dataset.annotation(index)
        image, source = annotation["image"], None
        stem, suffix = os.path.splitext(str(annotation["file_name"]).replace("\\", "/"))
        if isinstance(image, (str, os.PathLike)):
            if suffix.lower() in format_suffixes:
                source, image = os.fspath(image), None
                width, height = image_size(source)
            else:
                from edgedet.images import load_image

                image = load_image(image)
        if image is not None:
            height, width = image.shape[:2]
        yield ExportItem(
            index=index,
            image_id=_plain(annotation["image_id"]),
            file_name=stem + (suffix if source else format_suffixes[0]),
            boxes=np.asarray(annotation["boxes"], np.float32).reshape(-1, 4),
            classes=np.asarray(annotation["classes"], np.int32).reshape(-1),
            width=int(width),
            height=int(height),
            image=image,
            source=source,
        )


def _plain(value):
    """numpy scalars to Python ones (for JSON and id checks)."""
    return value.item() if isinstance(value, np.generic) else value


def claim(path, force):
    """Makes sure writing to `path` overwrites nothing unless `force`.

    A non-empty folder is removed (with `force`) so no stale file of an
    earlier write is read back; an existing file is left to be replaced.
    """
    import shutil

    from edgedet.files import OutputExistsError

    if os.path.isdir(path) and os.listdir(path):
        if not force:
            raise OutputExistsError(
                f"Output folder {path} exists and is not empty; pass force=True to overwrite it."
            )
        shutil.rmtree(path)
    elif os.path.isfile(path) and not force:
        raise OutputExistsError(f"Output file {path} exists; pass force=True to overwrite it.")
