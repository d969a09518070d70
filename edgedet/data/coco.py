"""COCO JSON detection datasets: reader and writer.

The reader takes an `instances_*.json` file (`images`, `annotations`,
`categories`) and the folder holding the images. COCO category ids may be
any integers (COCO's own run 1..90 with gaps): they are sorted and mapped to
class indices `0..C-1`; `dataset.category_ids[i]` keeps the original id of
class `i`, and the writer writes them back. Boxes are COCO `[x, y, w, h]`
pixels, converted to `"xyxy"`. Crowd annotations (`iscrowd: 1`) are left out
unless asked for, as detectors are trained without them.
"""

import json
import os

from edgedet.data.dataset import (
    DatasetError,
    Record,
    RecordDataset,
    Validator,
)
from edgedet.data.formats import DatasetFormat, register_format
from edgedet.data.writing import claim, export_items
from edgedet.files import atomic_write_text
from edgedet.images import image_size


def find_annotation_file(folder, split="train"):
    """Returns the COCO JSON file for `split` inside `folder`, or None.

    Looks for `annotations/instances_<split>.json`, `instances_<split>.json`,
    `annotations/<split>.json`, `<split>.json`, then a single `*.json` in
    `folder/annotations` or `folder`.
    """
    for name in (
        os.path.join("annotations", f"instances_{split}.json"),
        f"instances_{split}.json",
        os.path.join("annotations", f"{split}.json"),
        f"{split}.json",
    ):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    for sub in ("annotations", ""):
        directory = os.path.join(folder, sub)
        if os.path.isdir(directory):
            found = sorted(n for n in os.listdir(directory) if n.lower().endswith(".json"))
            if len(found) == 1:
                return os.path.join(directory, found[0])
    return None


def _image_dir_candidates(annotation_file):
    here = os.path.dirname(os.path.abspath(annotation_file))
    parent = os.path.dirname(here)
    stem = os.path.splitext(os.path.basename(annotation_file))[0]
    split = stem[len("instances_") :] if stem.startswith("instances_") else stem
    return [
        os.path.join(parent, "images", split),
        os.path.join(parent, split),  # COCO: annotations/instances_val2017.json + val2017/
        os.path.join(here, "images", split),
        os.path.join(here, split),
        os.path.join(here, "images"),
        os.path.join(parent, "images"),
        here,
    ]


def _find_image_dir(annotation_file, images):
    candidates = [d for d in _image_dir_candidates(annotation_file) if os.path.isdir(d)]
    if images:
        first = str(images[0].get("file_name", ""))
        for directory in candidates:
            if os.path.isfile(os.path.join(directory, first)):
                return directory
    return candidates[0] if candidates else os.path.dirname(os.path.abspath(annotation_file))


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}:{error.lineno}: malformed JSON ({error.msg}, column {error.colno})."
        ) from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not a UTF-8 JSON file ({error}).") from None


def _list(data, key, path, required=True):
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise DatasetError(
            f"{path}: expected a list under {key!r}, received {type(value).__name__}. "
            "A COCO detection file has 'images', 'annotations' and 'categories' lists."
        )
    return value


def _categories(data, path):
    categories = _list(data, "categories", path)
    if not categories:
        raise DatasetError(f"{path}: 'categories' is empty; the classes cannot be named.")
    by_id = {}
    for i, category in enumerate(categories):
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("id"), int)
            or not isinstance(category.get("name"), str)
        ):
            raise DatasetError(
                f"{path}: categories[{i}] = {category!r}; expected {{'id': int, 'name': str}}."
            )
        if category["id"] in by_id:
            raise DatasetError(f"{path}: categories[{i}] repeats category id {category['id']}.")
        by_id[category["id"]] = category["name"]
    ids = sorted(by_id)
    return ids, [by_id[i] for i in ids]


def read_coco(annotation_file, image_dir=None, on_invalid="skip", include_crowd=False):
    """Reads a COCO JSON detection dataset.

    Args:
        annotation_file: str. The JSON file.
        image_dir: str. Folder the `file_name`s are relative to, or None to
            look for it next to the JSON file (`../images/<split>`,
            `../<split>` as in COCO's own layout, `images/`, the JSON's
            folder). Defaults to None.
        on_invalid: str. Bad boxes, unknown ids, missing images: `"skip"`,
            `"clip"` or `"error"`. Defaults to `"skip"`.
        include_crowd: bool. Keep `iscrowd: 1` annotations. Defaults to False.

    Returns:
        A `RecordDataset` with `category_ids`.
    """
    path = os.fspath(annotation_file)
    validator = Validator(on_invalid)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a JSON object at the top, received {type(data).__name__}."
        )
    category_ids, class_names = _categories(data, path)
    class_of = {cid: i for i, cid in enumerate(category_ids)}
    images = _list(data, "images", path)
    annotations = _list(data, "annotations", path, required=False)
    image_dir = os.fspath(image_dir) if image_dir is not None else _find_image_dir(path, images)

    entries = {}
    for i, image in enumerate(images):
        if (
            not isinstance(image, dict)
            or "id" not in image
            or not isinstance(image.get("file_name"), str)
        ):
            validator.fail(
                f"{path}: images[{i}]", f"expected {{'id', 'file_name', ...}}, received {image!r}"
            )
        if image["id"] in entries:
            validator.fail(f"{path}: images[{i}]", f"repeats image id {image['id']!r}")
        entries[image["id"]] = {"image": image, "boxes": [], "classes": [], "ok": True}

    for i, ann in enumerate(annotations):
        location = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            validator.issue(location, f"expected an object, received {ann!r}")
            continue
        location += f" (id {ann.get('id')!r}, image_id {ann.get('image_id')!r})"
        if ann.get("iscrowd", 0) and not include_crowd:
            continue
        entry = entries.get(ann.get("image_id"))
        if entry is None:
            validator.issue(location, f"image_id {ann.get('image_id')!r} is not in 'images'")
            continue
        if ann.get("category_id") not in class_of:
            validator.issue(
                location,
                f"category_id {ann.get('category_id')!r} is not in 'categories' {category_ids}",
            )
            continue
        bbox = ann.get("bbox")
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            validator.issue(location, f"bbox {bbox!r} is not [x, y, width, height]")
            continue
        if "size" not in entry:
            entry["size"] = _size(entry["image"], image_dir, validator, path)
        if entry["size"] is None:
            continue
        x, y, w, h = (float(v) for v in bbox)
        box = validator.check_box(
            (x, y, x + w, y + h),
            class_of[ann["category_id"]],
            *entry["size"],
            len(class_names),
            location,
        )
        if box is not None:
            entry["boxes"].append(box)
            entry["classes"].append(class_of[ann["category_id"]])

    records = []
    for image_id, entry in entries.items():
        if "size" not in entry:
            entry["size"] = _size(entry["image"], image_dir, validator, path)
        if entry["size"] is None:
            continue
        file_name = entry["image"]["file_name"]
        records.append(
            Record(
                file_name=file_name,
                image_id=image_id,
                boxes=entry["boxes"],
                classes=entry["classes"],
                path=os.path.join(image_dir, file_name),
                width=entry["size"][0],
                height=entry["size"][1],
            )
        )
    validator.finish(path)
    if not records:
        raise DatasetError(f"{path}: no usable images (the split is empty).")
    return RecordDataset(records, class_names, source=path, category_ids=category_ids)


def _size(image, image_dir, validator, path):
    """Returns `(width, height)` of a COCO image entry, or None if it is skipped."""
    file_path = os.path.join(image_dir, image["file_name"])
    location = f"{path}: image id {image['id']!r}"
    if not os.path.isfile(file_path):
        validator.issue(location, f"image file not found: {file_path}")
        return None
    width, height = image.get("width"), image.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    try:
        return image_size(file_path)
    except OSError as error:
        validator.issue(location, f"cannot read image {file_path}: {error}")
        return None


def write_coco(dataset, out_dir, split="train", force=False, image_format="png"):
    """Writes `annotations/instances_<split>.json` and `images/<split>/`.

    Category ids are `dataset.category_ids` when the dataset has them (read
    from COCO), otherwise `1..C`. Image ids are kept when they are distinct
    ints, otherwise numbered from 1.

    Returns:
        The path of the JSON file.
    """
    json_path = os.path.join(out_dir, "annotations", f"instances_{split}.json")
    image_dir = os.path.join(out_dir, "images", split)
    claim(json_path, force)
    claim(image_dir, force)
    category_ids = getattr(dataset, "category_ids", None) or range(1, len(dataset.class_names) + 1)
    category_ids = list(category_ids)
    images, annotations = [], []
    for item in export_items(dataset, image_format):
        item.save(os.path.join(image_dir, item.file_name))
        images.append(
            {
                "id": item.image_id,
                "file_name": item.file_name,
                "width": item.width,
                "height": item.height,
            }
        )
        for box, class_id in zip(item.boxes.tolist(), item.classes.tolist()):
            x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": len(images) - 1,  # replaced below
                    "category_id": category_ids[class_id],
                    "bbox": [round(v, 3) for v in (x, y, w, h)],
                    "area": round(w * h, 3),
                    "iscrowd": 0,
                }
            )
    ids = [image["id"] for image in images]
    usable = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    if not usable or len(set(ids)) < len(ids):
        ids = list(range(1, len(images) + 1))
    for image, image_id in zip(images, ids):
        image["id"] = image_id
    for annotation in annotations:
        annotation["image_id"] = ids[annotation["image_id"]]
    document = {
        "info": {"description": f"written by edgedet ({split})"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": ""}
            for cid, name in zip(category_ids, dataset.class_names)
        ],
    }
    atomic_write_text(json_path, json.dumps(document))
    return json_path


def _detect(path, split):
    if os.path.isfile(path):
        return path if path.lower().endswith(".json") else None
    return find_annotation_file(path, split)


register_format(
    DatasetFormat(
        name="coco",
        title="COCO",
        describe="a COCO JSON file (or a folder with one)",
        detect=_detect,
        read=lambda path, split, on_invalid: read_coco(path, on_invalid=on_invalid),
        write=write_coco,
        priority=30,
    )
)
