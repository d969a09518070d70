"""Pascal VOC XML detection datasets: reader and writer.

Layout: `Annotations/<id>.xml`, `JPEGImages/<file>`, and optionally
`ImageSets/Main/<split>.txt` listing the ids of a split (without it, every
annotation file is read whatever the split). The class list is, in order of
preference: the `class_names` argument, a `labels.txt` in the root (one name
per line, the order of the class ids; the writer writes it), or the sorted
names found in the annotations.

VOC corners are 1-based and inclusive (`xmin = 1` is the first pixel column);
they become `"xyxy"` pixel edges as `left = xmin - 1`, `right = xmax`, and
the writer does the reverse, rounding to whole pixels.
"""

import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

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


class _Node:
    """A parsed XML element that remembers its line."""

    def __init__(self, tag, line):
        self.tag, self.line, self.text, self.children = tag, line, "", []

    def find(self, tag):
        return next((c for c in self.children if c.tag == tag), None)

    def value(self, tag, default=None):
        node = self.find(tag)
        return node.text.strip() if node is not None else default


def _parse_xml(path):
    """Parses `path` into `_Node`s with line numbers (ElementTree keeps none)."""
    parser = expat.ParserCreate()
    stack, roots = [], []

    def start(tag, _attributes):
        node = _Node(tag, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def text(data):
        if stack:
            stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    with open(path, "rb") as f:
        parser.ParseFile(f)
    return roots[0]


def _split_ids(root, split):
    """Returns the image ids of `split`, or None when there are no split lists."""
    main = os.path.join(root, "ImageSets", "Main")
    split_file = os.path.join(main, f"{split}.txt")
    if os.path.isfile(split_file):
        with open(split_file, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    if os.path.isdir(main):
        available = sorted(
            os.path.splitext(n)[0] for n in os.listdir(main) if n.endswith(".txt") and "_" not in n
        )
        if available:
            raise DatasetError(f"{main}: no split {split!r}; found {available}.")
    return None


def _read_labels_file(root):
    path = os.path.join(root, "labels.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_voc(root, split="train", class_names=None, on_invalid="skip", include_difficult=True):
    """Reads one split of a Pascal VOC dataset.

    Args:
        root: str. The folder holding `Annotations/` (e.g. `VOCdevkit/VOC2007`).
        split: str. Name of `ImageSets/Main/<split>.txt`. Defaults to `"train"`.
        class_names: sequence of str. The class list, or None (see module
            docstring). Defaults to None.
        on_invalid: str. Bad boxes, unknown classes, missing or malformed
            files: `"skip"`, `"clip"` or `"error"`. Defaults to `"skip"`.
        include_difficult: bool. Keep objects marked `difficult`.
            Defaults to True.

    Returns:
        A `RecordDataset`.
    """
    root = os.fspath(root)
    validator = Validator(on_invalid)
    annotation_dir = os.path.join(root, "Annotations")
    if not os.path.isdir(annotation_dir):
        raise DatasetError(f"{root}: not a Pascal VOC root (no Annotations/ folder).")
    ids = _split_ids(root, split)
    if ids is None:
        ids = sorted(
            os.path.splitext(n)[0] for n in os.listdir(annotation_dir) if n.endswith(".xml")
        )
    if not ids:
        raise DatasetError(f"{root}: split {split!r} is empty.")

    parsed = []
    for image_id in ids:
        path = os.path.join(annotation_dir, f"{image_id}.xml")
        try:
            node = _parse_xml(path)
        except FileNotFoundError:
            validator.issue(path, "annotation file not found")
            continue
        except expat.ExpatError as error:
            validator.issue(
                f"{path}:{error.lineno}", f"malformed XML ({expat.ErrorString(error.code)})"
            )
            continue
        parsed.append((image_id, path, node))

    if class_names is None:
        class_names = _read_labels_file(root)
    if class_names is None:
        names = {
            obj.value("name", "")
            for _, _, node in parsed
            for obj in node.children
            if obj.tag == "object"
        }
        class_names = sorted(n for n in names if n)
    class_names = [str(n) for n in class_names]
    if not class_names:
        raise DatasetError(f"{root}: no class names (no objects, no labels.txt, no class_names).")

    records = []
    for image_id, path, node in parsed:
        record = _record(root, image_id, path, node, class_names, validator, include_difficult)
        if record is not None:
            records.append(record)
    validator.finish(root)
    if not records:
        raise DatasetError(f"{root}: split {split!r} has no usable images.")
    return RecordDataset(records, class_names, source=root)


def _image_path(root, image_id, file_name):
    path = os.path.join(root, "JPEGImages", file_name)
    if os.path.isfile(path):
        return path
    for extension in IMAGE_SUFFIXES:
        candidate = os.path.join(root, "JPEGImages", image_id + extension)
        if os.path.isfile(candidate):
            return candidate
    return None


def _number(node, tag):
    text = node.value(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _record(root, image_id, path, node, class_names, validator, include_difficult):
    file_name = node.value("filename") or f"{image_id}.jpg"
    image_path = _image_path(root, image_id, file_name)
    if image_path is None:
        validator.issue(
            path, f"image file not found: {os.path.join(root, 'JPEGImages', file_name)}"
        )
        return None
    size = node.find("size")
    width = int(_number(size, "width") or 0) if size is not None else 0
    height = int(_number(size, "height") or 0) if size is not None else 0
    if width <= 0 or height <= 0:
        try:
            width, height = image_size(image_path)
        except OSError as error:
            validator.issue(path, f"cannot read image {image_path}: {error}")
            return None
    boxes, classes = [], []
    for obj in (c for c in node.children if c.tag == "object"):
        location = f"{path}:{obj.line}"
        name = obj.value("name", "")
        if not include_difficult and obj.value("difficult", "0") == "1":
            continue
        if name not in class_names:
            validator.issue(location, f"class {name!r} is not in the class list {class_names}")
            continue
        bndbox = obj.find("bndbox")
        corners = (
            [_number(bndbox, t) for t in ("xmin", "ymin", "xmax", "ymax")]
            if bndbox is not None
            else [None]
        )
        if None in corners:
            validator.issue(location, "object has no complete <bndbox> (xmin, ymin, xmax, ymax)")
            continue
        xmin, ymin, xmax, ymax = corners
        class_id = class_names.index(name)
        box = validator.check_box(
            (xmin - 1, ymin - 1, xmax, ymax), class_id, width, height, len(class_names), location
        )
        if box is not None:
            boxes.append(box)
            classes.append(class_id)
    return Record(
        file_name=os.path.basename(image_path),
        image_id=image_id,
        boxes=boxes,
        classes=classes,
        path=image_path,
        width=width,
        height=height,
    )


def _xml(image_id, file_name, item, class_names):
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "JPEGImages"
    ET.SubElement(annotation, "filename").text = file_name
    size = ET.SubElement(annotation, "size")
    for tag, value in (("width", item.width), ("height", item.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(annotation, "segmented").text = "0"
    for (x0, y0, x1, y1), class_id in zip(item.boxes.tolist(), item.classes.tolist()):
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = class_names[class_id]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        corners = (
            round(x0) + 1,
            round(y0) + 1,
            max(round(x1), round(x0) + 1),
            max(round(y1), round(y0) + 1),
        )
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="unicode") + "\n"


def write_voc(dataset, out_dir, split="train", force=False, image_format="png"):
    """Writes `Annotations/`, `JPEGImages/`, `ImageSets/Main/<split>.txt`, `labels.txt`.

    Image ids are the file names without extension (`/` becomes `_`). Other
    splits already in `out_dir` are kept; their class list must agree.

    Returns:
        The VOC root, `out_dir`.
    """
    names = list(dataset.class_names)
    existing = _read_labels_file(out_dir)
    if existing is not None and existing != names and not force:
        raise DatasetError(
            f"{os.path.join(out_dir, 'labels.txt')} lists the classes {existing}, not {names}; "
            "pass force=True to overwrite it."
        )
    split_file = os.path.join(out_dir, "ImageSets", "Main", f"{split}.txt")
    claim(split_file, force)
    ids = []
    for item in export_items(dataset, image_format):
        stem, extension = os.path.splitext(item.file_name)
        image_id = stem.replace("/", "_")
        file_name = image_id + extension
        xml_path = os.path.join(out_dir, "Annotations", f"{image_id}.xml")
        claim(xml_path, force)
        claim(os.path.join(out_dir, "JPEGImages", file_name), force)
        item.save(os.path.join(out_dir, "JPEGImages", file_name))
        atomic_write_text(xml_path, _xml(image_id, file_name, item, names))
        ids.append(image_id)
    atomic_write_text(os.path.join(out_dir, "labels.txt"), "".join(f"{n}\n" for n in names))
    atomic_write_text(split_file, "".join(f"{i}\n" for i in ids))
    return out_dir


def _detect(path, split):
    return path if os.path.isdir(os.path.join(path, "Annotations")) else None


register_format(
    DatasetFormat(
        name="voc",
        title="Pascal VOC",
        describe="a Pascal VOC root (with Annotations/)",
        detect=_detect,
        read=read_voc,
        write=write_voc,
        options=("class_names",),
        priority=20,
    )
)
