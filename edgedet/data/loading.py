"""`load_dataset`: open a dataset from a path or a `synthetic:` spec.

The path is matched against the rows of `edgedet.data.formats` (each row
says how it recognises a file or folder and how to read it), so nothing
here names a format.
"""

import os

from edgedet.data.dataset import DatasetError, DetectionDataset, check_on_invalid
from edgedet.data.formats import formats


def _spec_help():
    names = ", ".join(f.describe for f in formats())
    return f"Expected {names}, or 'synthetic:shapes[?n=100&seed=0&size=320]'."


def load_dataset(spec, split="train", on_invalid="skip", class_names=None):
    """Opens a dataset from a path or a `synthetic:` spec.

    Example:

    ```python
    load_dataset("synthetic:shapes?n=500&seed=1&size=320")
    load_dataset("coco/annotations/instances_val2017.json")
    load_dataset("data.yaml", split="val")
    load_dataset("VOCdevkit/VOC2007", split="test")
    ```

    Args:
        spec: str, path or `DetectionDataset` (returned as is). A COCO JSON
            file or a folder holding `annotations/instances_<split>.json`,
            `instances_<split>.json` or a single `*.json`; a YOLO `data.yaml`
            or a folder holding one; a VOC root (a folder with
            `Annotations/`); or `synthetic:shapes?...` (see
            `edgedet.data.synthetic.from_spec` for the options).
        split: str. Which split to read (YOLO and VOC split lists, COCO file
            name, synthetic stream). Defaults to `"train"`.
        on_invalid: str. What to do with a bad box, class id or missing
            image: `"skip"`, `"clip"` or `"error"`. Defaults to `"skip"`.
        class_names: sequence of str. Class list for VOC (otherwise read from
            `labels.txt` or collected from the data). Defaults to None.

    Returns:
        A `DetectionDataset`.
    """
    if isinstance(spec, DetectionDataset):
        return spec
    check_on_invalid(on_invalid)
    text = os.fspath(spec)
    if text.startswith("synthetic:"):  # Generated, not a file format.
        from edgedet.data.synthetic import from_spec

        return from_spec(text, split=split)
    if not os.path.exists(text):
        raise DatasetError(f"Dataset not found: {text!r}. {_spec_help()}")
    dataset_format, path = detect(text, split)
    options = {"class_names": class_names} if class_names is not None else {}
    unused = sorted(set(options) - set(dataset_format.options))
    if unused:
        users = [f.title for f in formats() if unused[0] in f.options]
        raise ValueError(
            f"{unused[0]} is only used for {' or '.join(users) or 'no format'}; {text!r} is a "
            f"{dataset_format.name} dataset, which names its classes itself."
        )
    return dataset_format.read(path, split=split, on_invalid=on_invalid, **options)


def detect(path, split="train"):
    """Returns `(DatasetFormat, path to read)` for an existing file or folder.

    Every row's `detect` is tried in priority order, then every row's
    `guess`.

    Raises:
        DatasetError: when no format recognises `path`.
    """
    rows = formats(detection_order=True)
    for attempt in ("detect", "guess"):
        for row in rows:
            check = getattr(row, attempt)
            found = check(path, split) if check is not None else None
            if found:
                return row, found
    if os.path.isfile(path):
        raise DatasetError(f"Unrecognised dataset file {path!r}. {_spec_help()}")
    raise DatasetError(f"No dataset recognised in folder {path!r}. {_spec_help()}")
