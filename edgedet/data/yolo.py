"""YOLO txt detection datasets (Ultralytics layout): reader and writer.

A `data.yaml` names the classes (`names` as a list, or a dict `{0: name}`)
and the splits (`train`, `val`, `test`): each a folder of images, a `.txt`
file listing images, or a list of those, relative to `path` (itself relative
to the YAML's folder; the YAML's folder when absent). Each image
`.../images/.../x.jpg` has its labels in `.../labels/.../x.txt`: one object
per line, `class cx cy w h` normalized to `[0, 1]` (or `class x1 y1 x2 y2 ...`,
a polygon, whose extent is the box). A missing or empty label file means an
image with no objects.
"""

import os

import yaml

from edgedet.data.dataset import (
    DatasetError,
    Record,
    RecordDataset,
    Validator,
)
from edgedet.data.formats import DatasetFormat, register_format
from edgedet.data.writing import claim, export_items
from edgedet.files import atomic_write_text
from edgedet.images import IMAGE_SUFFIXES, image_size

SPLITS = ("train", "val", "test")


def label_path(image_path):
    """Maps `.../images/.../x.jpg` to `.../labels/.../x.txt` (the last `images`)."""
    head, marker, tail = image_path.rpartition(f"{os.sep}images{os.sep}")
    if not marker:
        return os.path.splitext(image_path)[0] + ".txt"
    return os.path.splitext(f"{head}{os.sep}labels{os.sep}{tail}")[0] + ".txt"


def _load_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise DatasetError(f"YOLO data file not found: {path}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DatasetError(
            f"{path}{line}: malformed YAML ({getattr(error, 'problem', error)})."
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a mapping with 'names' and splits, received {data!r}."
        )
    return data


def _class_names(data, path):
    names, count = data.get("names"), data.get("nc")
    if names is None and isinstance(count, int) and count > 0:
        names = [f"class{i}" for i in range(count)]
    if isinstance(names, dict):
        keys = sorted(names, key=lambda k: (not isinstance(k, int), k))
        if keys != list(range(len(names))):
            raise DatasetError(
                f"{path}: 'names' keys are {keys}; expected the class ids 0..{len(names) - 1}."
            )
        names = [names[k] for k in keys]
    if not isinstance(names, list) or not names:
        raise DatasetError(
            f"{path}: 'names' is {names!r}; expected a non-empty list of class names or "
            "a dict {0: name, 1: name, ...}."
        )
    if count is not None and count != len(names):
        raise DatasetError(f"{path}: 'nc' is {count!r} but 'names' lists {len(names)} classes.")
    return [str(name) for name in names]


def _root(data, path):
    here = os.path.dirname(os.path.abspath(path))
    root = data.get("path")
    if root in (None, ""):
        return here
    root = os.path.join(here, os.path.expanduser(str(root)))
    if not os.path.isdir(root):
        raise DatasetError(
            f"{path}: 'path: {data['path']}' resolves to {root}, which is not a folder."
        )
    return root


def _images_in(entry, root, path, split):
    """Lists `(image, base)` for one split entry (folder, txt list, image).

    `base` is the folder the sample's `file_name` is relative to: the split
    folder, or the dataset root for images listed in a txt file.
    """
    target = os.path.join(root, os.path.expanduser(str(entry)))
    if os.path.isdir(target):
        found = []
        for folder, _, files in os.walk(target):
            found += [
                (os.path.join(folder, f), target)
                for f in files
                if f.lower().endswith(IMAGE_SUFFIXES)
            ]
        return sorted(found)
    if os.path.isfile(target) and target.lower().endswith(".txt"):
        parent = os.path.dirname(target)
        with open(target, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
        return [
            (os.path.normpath(os.path.join(parent if line.startswith("./") else root, line)), root)
            for line in lines
        ]
    if os.path.isfile(target):
        return [(target, os.path.dirname(target))]
    raise DatasetError(f"{path}: '{split}: {entry}' points at {target}, which does not exist.")


def read_yolo(data_yaml, split="train", on_invalid="skip"):
    """Reads one split of a YOLO txt dataset.

    Args:
        data_yaml: str. The Ultralytics `data.yaml`.
        split: str. A key of the YAML (`"train"`, `"val"`, `"test"`).
            Defaults to `"train"`.
        on_invalid: str. Bad lines, class ids, boxes, missing images:
            `"skip"`, `"clip"` or `"error"`. Defaults to `"skip"`.

    Returns:
        A `RecordDataset` (file names relative to the dataset root).
    """
    path = os.fspath(data_yaml)
    validator = Validator(on_invalid)
    data = _load_yaml(path)
    class_names = _class_names(data, path)
    root = _root(data, path)
    if split not in data:
        present = [k for k in data if k in SPLITS] or [
            k for k in data if k not in ("names", "nc", "path")
        ]
        raise DatasetError(f"{path}: no split {split!r}; the file defines {present}.")
    entries = data[split]
    entries = entries if isinstance(entries, list) else [entries]
    if not entries or any(e in (None, "") for e in entries):
        raise DatasetError(f"{path}: split {split!r} is empty ({data[split]!r}).")
    image_paths = []
    for entry in entries:
        image_paths += _images_in(entry, root, path, split)
    if not image_paths:
        raise DatasetError(f"{path}: split {split!r} ({data[split]!r}) has no images.")

    records = []
    for image_path, base in image_paths:
        if not os.path.isfile(image_path):
            validator.issue(path, f"image file not found: {image_path} (split {split!r})")
            continue
        try:
            width, height = image_size(image_path)
        except OSError as error:
            validator.issue(image_path, f"cannot read image: {error}")
            continue
        boxes, classes = _read_labels(label_path(image_path), width, height, class_names, validator)
        file_name = os.path.relpath(image_path, base).replace(os.sep, "/")
        records.append(
            Record(
                file_name=file_name,
                image_id=os.path.splitext(file_name)[0],
                boxes=boxes,
                classes=classes,
                path=image_path,
                width=width,
                height=height,
            )
        )
    validator.finish(path)
    if not records:
        raise DatasetError(f"{path}: split {split!r} has no usable images.")
    return RecordDataset(records, class_names, source=path)


def _read_labels(path, width, height, class_names, validator):
    """Parses one label file into `xyxy` pixel boxes and class ids."""
    boxes, classes = [], []
    if not os.path.isfile(path):
        return boxes, classes
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line_no, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        location = f"{path}:{line_no}"
        try:
            values = [float(v) for v in parts]
        except ValueError:
            validator.issue(
                location, f"malformed line {line.strip()!r}; expected 'class cx cy w h'"
            )
            continue
        if len(values) != 5 and (len(values) < 7 or len(values) % 2 == 0):
            validator.issue(
                location,
                f"malformed line {line.strip()!r}: {len(values)} numbers; expected "
                "'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...'",
            )
            continue
        class_id = values[0]
        if class_id != int(class_id):
            validator.issue(location, f"class id {parts[0]!r} is not an integer")
            continue
        if len(values) == 5:
            cx, cy, w, h = values[1:]
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:
            xs, ys = values[1::2], values[2::2]
            box = (min(xs), min(ys), max(xs), max(ys))
        box = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
        box = validator.check_box(box, int(class_id), width, height, len(class_names), location)
        if box is not None:
            boxes.append(box)
            classes.append(int(class_id))
    return boxes, classes


def write_yolo(dataset, out_dir, split="train", force=False, image_format="png"):
    """Writes `images/<split>/`, `labels/<split>/` and adds the split to `data.yaml`.

    `data.yaml` has no `path` key, so Ultralytics and `read_yolo` both
    resolve the splits against the YAML's own folder. Writing another split
    to the same folder keeps the splits already listed (the class names must
    agree unless `force`).

    Returns:
        The path of `data.yaml`.
    """
    yaml_path = os.path.join(out_dir, "data.yaml")
    image_dir = os.path.join(out_dir, "images", split)
    label_dir = os.path.join(out_dir, "labels", split)
    data = {}
    names = list(dataset.class_names)
    if os.path.isfile(yaml_path):
        data = _load_yaml(yaml_path)
        if _class_names(data, yaml_path) != names and not force:
            raise DatasetError(
                f"{yaml_path} names the classes {_class_names(data, yaml_path)}, not {names}; "
                "pass force=True to overwrite it."
            )
    claim(image_dir, force)
    claim(label_dir, force)
    for item in export_items(dataset, image_format):
        item.save(os.path.join(image_dir, item.file_name))
        lines = []
        for (x0, y0, x1, y1), class_id in zip(item.boxes.tolist(), item.classes.tolist()):
            cx, cy = (x0 + x1) / 2 / item.width, (y0 + y1) / 2 / item.height
            w, h = (x1 - x0) / item.width, (y1 - y0) / item.height
            lines.append(f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        stem = os.path.splitext(item.file_name)[0]
        atomic_write_text(os.path.join(label_dir, stem + ".txt"), "".join(lines))
    data.pop("path", None)
    data[split] = f"images/{split}"
    splits = {k: data.pop(k) for k in list(data) if k in SPLITS}
    data.pop("nc", None)
    data.pop("names", None)
    document = {**splits, **data, "nc": len(names), "names": names}
    atomic_write_text(yaml_path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return yaml_path


def _detect(path, split):
    if os.path.isfile(path):
        return path if path.lower().endswith((".yaml", ".yml")) else None
    found = os.path.join(path, "data.yaml")
    return found if os.path.isfile(found) else None


def _guess(path, split):
    """Any single `*.yaml` in the folder (after COCO and VOC found nothing)."""
    if not os.path.isdir(path):
        return None
    yamls = [n for n in sorted(os.listdir(path)) if n.lower().endswith((".yaml", ".yml"))]
    return os.path.join(path, yamls[0]) if len(yamls) == 1 else None


register_format(
    DatasetFormat(
        name="yolo",
        title="YOLO",
        describe="a YOLO data.yaml (or its folder)",
        detect=_detect,
        guess=_guess,
        read=read_yolo,
        write=write_yolo,
        priority=10,
    )
)
