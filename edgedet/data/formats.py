"""The table of dataset formats: name, how to recognise a path, read, write.

Each format module (`coco.py`, `yolo.py`, `voc.py`) ends with one
`register_format(DatasetFormat(...))` row, and `edgedet/data/__init__.py`
imports it, so a new format is one module plus one import line: nothing else
(`load_dataset`, `DetectionDataset.write`, `write_dataset`) names formats.
This module imports no other module of `edgedet.data`, so the readers, the
writers and the dataset types can all use it without an import cycle.

```python
from edgedet.data.formats import get_format

get_format("yolo").write(dataset, "/tmp/out", split="train", force=False, image_format="png")
```
"""

import dataclasses
from collections.abc import Callable

from edgedet.suggest import closest

# Every reader returns, and every writer expects, boxes in this
# `edgedet.boxes` format, in pixels.
BOUNDING_BOX_FORMAT = "xyxy"


@dataclasses.dataclass(frozen=True)
class DatasetFormat:
    """One row of the format table.

    Args:
        name: str. What users pass as `format=` (`"coco"`).
        title: str. The format's name in messages (`"COCO"`).
        describe: str. How the path looks, for the "expected ..." part of
            error messages (`"a COCO JSON file (or a folder with one)"`).
        detect: callable `(path, split) -> str or None`. Given an existing
            file or folder, the file or folder to read when it is this
            format, else None.
        read: callable `(path, split, on_invalid, **options) -> DetectionDataset`.
        write: callable `(dataset, out_dir, split, force, image_format) -> str`
            returning the path `load_dataset` reads back, or None when the
            format is read-only. Defaults to None.
        guess: callable like `detect`, tried only when no format's `detect`
            recognised the folder (a weaker sign, e.g. any single `*.yaml`).
            Defaults to None.
        options: tuple of str. Extra keyword arguments `read` takes (for
            example `"class_names"`). Defaults to `()`.
        priority: int. Formats are detected in increasing priority, so a
            folder holding the signs of two formats opens as the one with
            the lower number. Defaults to 0.
    """

    name: str
    title: str
    describe: str
    detect: Callable
    read: Callable
    write: Callable = None
    guess: Callable = None
    options: tuple = ()
    priority: int = 0


_FORMATS = {}


def register_format(dataset_format):
    """Adds a row to the table; returns it.

    Raises:
        ValueError: when a format of the same name is already registered.
    """
    if not isinstance(dataset_format, DatasetFormat):
        raise ValueError(f"Expected a DatasetFormat, received: {dataset_format!r}")
    if dataset_format.name in _FORMATS:
        raise ValueError(f"Dataset format {dataset_format.name!r} is already registered.")
    _FORMATS[dataset_format.name] = dataset_format
    return dataset_format


def formats(detection_order=False):
    """Returns every registered `DatasetFormat`.

    Args:
        detection_order: bool. Sort by `priority` (the order `load_dataset`
            tries them) instead of registration order. Defaults to False.
    """
    rows = list(_FORMATS.values())
    return sorted(rows, key=lambda f: f.priority) if detection_order else rows


def write_formats():
    """Returns the names of the formats that can be written, in table order."""
    return [f.name for f in formats() if f.write is not None]


def get_format(name, writable=False):
    """Returns the `DatasetFormat` called `name`.

    Args:
        name: str.
        writable: bool. Also require a writer. Defaults to False.

    Raises:
        ValueError: naming the known formats (and the closest one) when
            `name` is unknown or, with `writable`, read-only.
    """
    names = write_formats() if writable else [f.name for f in formats()]
    if name not in names:
        raise ValueError(
            f"Invalid format: {name!r}. Expected one of {names}." + closest(name, names)
        )
    return _FORMATS[name]
