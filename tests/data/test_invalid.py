"""Bad and edge-case annotations: what is kept, skipped, clipped or refused, and the messages."""

import json
import warnings

import numpy as np
import pytest

from edgedet.data import (
    AnnotationWarning,
    DatasetError,
    load_dataset,
    read_coco,
    read_voc,
    read_yolo,
)


def _yolo(tmp_path, make_image, labels, names=("a", "b")):
    """A YOLO dataset with 100x50 images; `labels` maps stem -> label text (None: no file)."""
    for stem, text in labels.items():
        make_image(tmp_path / "images" / "train" / f"{stem}.png", width=100, height=50)
        if text is not None:
            label = tmp_path / "labels" / "train" / f"{stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(text)
    (tmp_path / "data.yaml").write_text(f"train: images/train\nnames: {list(names)}\n")
    return tmp_path / "data.yaml"


def _read(reader, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = reader(*args, **kwargs)
    return dataset, [str(w.message) for w in caught if issubclass(w.category, AnnotationWarning)]


def test_images_without_objects_are_valid(tmp_path, make_image):
    path = _yolo(tmp_path, make_image, {"empty": "", "nolabel": None, "blank": "\n \n"})
    dataset, messages = _read(read_yolo, path)
    assert len(dataset) == 3 and messages == []
    for sample in dataset:
        assert sample["boxes"].shape == (0, 4) and sample["classes"].shape == (0,)


def test_box_on_the_border_is_kept_and_tiny_overshoot_clipped_silently(tmp_path, make_image):
    # Whole image; then right edge at 100.0 + 0.3 px (rounding noise).
    text = "0 0.5 0.5 1.0 1.0\n1 0.9015 0.5 0.2 0.2\n"
    dataset, messages = _read(read_yolo, _yolo(tmp_path, make_image, {"x": text}))
    assert messages == []
    np.testing.assert_allclose(
        dataset[0]["boxes"], [[0, 0, 100, 50], [80.15, 20, 100, 30]], atol=1e-3
    )


@pytest.mark.parametrize(
    "line, problem",
    [
        ("0 0.5 0.5 0.0 0.2", "zero or negative size"),
        ("0 0.5 0.5 -0.1 0.2", "zero or negative size"),
        ("5 0.5 0.5 0.1 0.1", "class id 5 is outside the class list"),
        ("-1 0.5 0.5 0.1 0.1", "class id -1"),
        ("0 0.5 0.5 0.1", "malformed line"),
        ("0 0.5 zero 0.1 0.1", "malformed line"),
        ("0.5 0.5 0.5 0.1 0.1", "not an integer"),
        ("0 2.0 2.0 0.1 0.1", "outside the image"),
    ],
)
def test_bad_yolo_line_is_skipped_with_file_and_line(tmp_path, make_image, line, problem):
    path = _yolo(tmp_path, make_image, {"x": f"1 0.5 0.5 0.2 0.2\n{line}\n"})
    dataset, messages = _read(read_yolo, path)
    np.testing.assert_array_equal(dataset[0]["classes"], [1])  # The good line stays.
    label = tmp_path / "labels" / "train" / "x.txt"
    assert len(messages) == 1
    assert f"{label}:2" in messages[0] and problem in messages[0] and "skipped" in messages[0]
    with pytest.raises(DatasetError, match=f"x.txt:2: .*{problem}"):
        read_yolo(path, on_invalid="error")


def test_clip_repairs_boxes_that_stick_out(tmp_path, make_image):
    path = _yolo(tmp_path, make_image, {"x": "0 0.9 0.5 0.4 0.4\n0 0.5 0.5 0.0 0.2\n"})
    skipped, _ = _read(read_yolo, path, on_invalid="skip")
    assert len(skipped[0]["boxes"]) == 0
    clipped, messages = _read(read_yolo, path, on_invalid="clip")
    np.testing.assert_allclose(clipped[0]["boxes"], [[70, 15, 100, 35]], atol=1e-4)
    assert "clipped to the image" in messages[0] and "x.txt:1" in messages[0]
    assert (
        "x.txt:2" in messages[1] and "skipped" in messages[1]
    )  # A degenerate box can't be clipped.


def test_missing_image_is_named(tmp_path, make_image):
    path = _yolo(tmp_path, make_image, {"x": "0 0.5 0.5 0.2 0.2\n"})
    (tmp_path / "train.txt").write_text("images/train/x.png\nimages/train/gone.png\n")
    path.write_text("train: train.txt\nnames: [a, b]\n")
    dataset, messages = _read(read_yolo, path)
    assert len(dataset) == 1 and "gone.png" in messages[0]
    with pytest.raises(DatasetError, match="gone.png"):
        read_yolo(path, on_invalid="error")


def test_yaml_problems(tmp_path, make_image):
    path = _yolo(tmp_path, make_image, {"x": ""})
    with pytest.raises(DatasetError, match="no split 'val'.*'train'"):
        read_yolo(path, split="val")
    path.write_text("train: images/nowhere\nnames: [a]\n")
    with pytest.raises(DatasetError, match="data.yaml: 'train: images/nowhere' points at"):
        read_yolo(path)
    path.write_text("path: ../missing\ntrain: images/train\nnames: [a]\n")
    with pytest.raises(DatasetError, match="not a folder"):
        read_yolo(path)
    path.write_text("train: images/train\nnames: {0: a, 2: c}\n")
    with pytest.raises(DatasetError, match="0..1"):
        read_yolo(path)
    path.write_text("train: images/train\nnames: [a, b]\nnc: 3\n")
    with pytest.raises(DatasetError, match="'nc' is 3"):
        read_yolo(path)
    path.write_text("train: [images/train\nnames: [a]\n")
    with pytest.raises(DatasetError, match=r"data.yaml:\d+: malformed YAML"):
        read_yolo(path)
    (tmp_path / "images" / "empty").mkdir()
    path.write_text("train: images/empty\nval:\nnames: [a]\n")
    with pytest.raises(DatasetError, match="no images"):
        read_yolo(path)
    with pytest.raises(DatasetError, match="split 'val' is empty"):
        read_yolo(path, split="val")


def _coco(tmp_path, make_image, annotations, images=None):
    make_image(tmp_path / "images" / "a.png", width=64, height=48)
    document = {
        "images": images or [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(document, indent=1))
    return path


@pytest.mark.parametrize(
    "annotation, problem",
    [
        ({"image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]}, "category_id 7 is not in"),
        ({"image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]}, "image_id 9 is not in"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]}, "zero or negative size"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5]}, "is not [x, y, width, height]"),
        ({"image_id": 1, "category_id": 1, "bbox": [60, 1, 10, 5]}, "outside the image"),
    ],
)
def test_bad_coco_annotation_names_file_and_index(tmp_path, make_image, annotation, problem):
    good = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}
    path = _coco(tmp_path, make_image, [good, {"id": 2, **annotation}])
    dataset, messages = _read(read_coco, path)
    np.testing.assert_array_equal(dataset[0]["boxes"], [[1, 2, 4, 6]])
    assert len(messages) == 1
    assert f"{path}: annotations[1] (id 2" in messages[0] and problem in messages[0]
    with pytest.raises(DatasetError, match=r"annotations\[1\]"):
        read_coco(path, on_invalid="error")


def test_coco_missing_image_and_empty_split(tmp_path, make_image):
    images = [
        {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "gone.png", "width": 64, "height": 48},
    ]
    path = _coco(tmp_path, make_image, [], images=images)
    dataset, messages = _read(read_coco, path)
    assert len(dataset) == 1 and "image id 2" in messages[0] and "gone.png" in messages[0]
    path = _coco(tmp_path, make_image, [], images=[images[1]])
    with pytest.raises(DatasetError, match="split is empty"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_coco(path)


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "images": [],\n  "categories": [,]\n}\n')
    with pytest.raises(DatasetError, match=r"bad.json:3: malformed JSON"):
        read_coco(path)
    path.write_text('{"images": [], "annotations": []}')
    with pytest.raises(DatasetError, match="'categories'"):
        read_coco(path)


def _voc(tmp_path, make_image, objects, name="x"):
    make_image(tmp_path / "JPEGImages" / f"{name}.jpg", width=64, height=48)
    (tmp_path / "Annotations").mkdir(exist_ok=True)
    body = "".join(
        f"  <object>\n    <name>{cls}</name>\n    <bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox>\n  </object>\n"
        for cls, b in objects
    )
    (tmp_path / "Annotations" / f"{name}.xml").write_text(
        f"<annotation>\n  <filename>{name}.jpg</filename>\n"
        f"  <size><width>64</width><height>48</height></size>\n{body}</annotation>\n"
    )


def test_voc_bad_objects_name_file_and_line(tmp_path, make_image):
    objects = [("a", (1, 1, 10, 10)), ("zebra", (1, 1, 10, 10)), ("a", (20, 5, 10, 30))]
    _voc(tmp_path, make_image, objects)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    dataset, messages = _read(read_voc, tmp_path)
    assert dataset.class_names == ("a", "b")
    np.testing.assert_array_equal(dataset[0]["boxes"], [[0, 0, 10, 10]])
    xml = tmp_path / "Annotations" / "x.xml"
    assert f"{xml}:8" in messages[0] and "'zebra' is not in the class list" in messages[0]
    assert f"{xml}:12" in messages[1] and "zero or negative size" in messages[1]


def test_voc_malformed_xml_missing_files_and_splits(tmp_path, make_image):
    _voc(tmp_path, make_image, [("a", (1, 1, 10, 10))])
    _voc(tmp_path, make_image, [], name="empty")
    (tmp_path / "Annotations" / "broken.xml").write_text("<annotation>\n<object>\n</annotation>")
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("x\nempty\nbroken\nnothere\n")
    dataset, messages = _read(read_voc, tmp_path)
    assert [s["image_id"] for s in dataset] == ["x", "empty"]
    assert len(dataset[1]["boxes"]) == 0  # No objects is fine.
    assert "broken.xml:3: malformed XML" in messages[0]
    assert "nothere.xml" in messages[1] and "not found" in messages[1]
    with pytest.raises(DatasetError, match="broken.xml:3"):
        read_voc(tmp_path, on_invalid="error")
    with pytest.raises(DatasetError, match=r"no split 'val'; found \['train'\]"):
        read_voc(tmp_path, split="val")
    (tmp_path / "JPEGImages" / "x.jpg").unlink()
    (main / "train.txt").write_text("x\n")
    with pytest.raises(DatasetError, match="x.jpg"):
        read_voc(tmp_path, on_invalid="error")
    (main / "test.txt").write_text("")
    with pytest.raises(DatasetError, match="'test' is empty"):
        read_voc(tmp_path, split="test")


def test_load_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found.*synthetic:shapes"):
        load_dataset(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="Unrecognised dataset file"):
        load_dataset(tmp_path / "notes.txt")
    with pytest.raises(DatasetError, match="No dataset recognised"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="Did you mean 'clip'"):
        load_dataset("synthetic:shapes", on_invalid="clp")


def test_many_issues_are_summarised(tmp_path, make_image):
    text = "".join("9 0.5 0.5 0.1 0.1\n" for _ in range(30))
    _, messages = _read(read_yolo, _yolo(tmp_path, make_image, {"x": text}))
    assert len(messages) == 21 and "30 invalid annotations" in messages[-1]
