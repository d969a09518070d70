"""Write -> read round trips and hand-written fixtures for COCO, YOLO and VOC."""

import json
import warnings

import numpy as np
import pytest

from edgedet.data import (
    RecordDataset,
    SyntheticShapes,
    load_dataset,
    read_coco,
    read_voc,
    read_yolo,
)
from edgedet.files import OutputExistsError

FORMATS = ("coco", "yolo", "voc")


@pytest.fixture(scope="module")
def shapes():
    # Non-square, varied sizes, some empty images.
    return SyntheticShapes(num_images=10, image_size=((40, 72), (56, 100)), seed=21)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_reproduces_images_boxes_classes_and_names(tmp_path, shapes, fmt):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # A clean dataset reads without warnings.
        path = shapes.write(tmp_path / fmt, format=fmt, split="train")
        back = load_dataset(path, split="train")
    assert back.class_names == shapes.class_names
    assert back.bounding_box_format == "xyxy"
    assert len(back) == len(shapes)
    assert any(len(s["boxes"]) == 0 for s in shapes)
    tolerance = 1.0 if fmt == "yolo" else 0.0  # YOLO stores 6 normalized decimals.
    for original, read in zip(shapes, back):
        assert read["file_name"] == original["file_name"]
        np.testing.assert_array_equal(read["image"], original["image"])
        np.testing.assert_array_equal(read["classes"], original["classes"])
        np.testing.assert_allclose(read["boxes"], original["boxes"], atol=tolerance + 1e-3)
        assert read["boxes"].dtype == np.float32 and read["classes"].dtype == np.int32


@pytest.mark.parametrize("fmt", FORMATS)
def test_second_split_and_folder_dispatch(tmp_path, shapes, fmt):
    root = tmp_path / fmt
    shapes.write(root, format=fmt, split="train")
    val = SyntheticShapes(num_images=3, image_size=48, seed=2, split="val")
    val.write(root, format=fmt, split="val")
    assert len(load_dataset(root, split="train")) == 10
    read_val = load_dataset(str(root), split="val")
    assert [s["file_name"] for s in read_val] == [s["file_name"] for s in val]


@pytest.mark.parametrize("fmt", FORMATS)
def test_refuses_to_overwrite_without_force(tmp_path, shapes, fmt):
    small = SyntheticShapes(num_images=2, image_size=32, seed=0, min_objects=1)
    small.write(tmp_path, format=fmt)
    with pytest.raises(OutputExistsError, match="force"):
        small.write(tmp_path, format=fmt)
    other = SyntheticShapes(num_images=2, image_size=32, seed=0, min_objects=1, max_objects=1)
    path = other.write(tmp_path, format=fmt, force=True)
    assert [len(s["boxes"]) for s in load_dataset(path)] == [1, 1]


def test_jpeg_output_and_copy_of_existing_files(tmp_path, shapes):
    path = shapes.write(tmp_path / "jpg", format="yolo", image_format="jpg")
    back = read_yolo(path)
    assert back[0]["file_name"].endswith(".jpg")
    again = back.write(tmp_path / "copy", format="coco", image_format="jpg")
    original = tmp_path / "jpg" / "images" / "train" / back[0]["file_name"]
    copied = tmp_path / "copy" / "images" / "train" / back[0]["file_name"]
    assert copied.read_bytes() == original.read_bytes()  # Copied, not re-encoded.
    assert len(read_coco(again)) == len(shapes)


def test_bad_write_arguments(tmp_path, shapes):
    with pytest.raises(ValueError, match="Did you mean 'yolo'"):
        shapes.write(tmp_path, format="yolov8")
    with pytest.raises(ValueError, match="split"):
        shapes.write(tmp_path, format="coco", split="../x")
    with pytest.raises(ValueError, match="image_format"):
        shapes.write(tmp_path, format="coco", image_format="gif")


def test_coco_non_contiguous_category_ids_are_mapped_and_kept(tmp_path, make_image):
    make_image(tmp_path / "images" / "a.png", width=64, height=48)
    document = {
        "images": [{"id": 5, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 90, "bbox": [10, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0, 0, 64, 48]},
            {"id": 3, "image_id": 5, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        ],
        "categories": [
            {"id": 90, "name": "toothbrush"},
            {"id": 3, "name": "car"},
            {"id": 17, "name": "cat"},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(document))
    dataset = read_coco(tmp_path / "instances.json")
    assert dataset.class_names == ("car", "cat", "toothbrush")
    assert dataset.category_ids == (3, 17, 90)
    sample = dataset[0]
    assert sample["image_id"] == 5
    np.testing.assert_array_equal(sample["classes"], [2, 0])  # The crowd box is left out.
    np.testing.assert_array_equal(sample["boxes"], [[10, 5, 30, 15], [0, 0, 64, 48]])
    assert len(read_coco(tmp_path / "instances.json", include_crowd=True)[0]["boxes"]) == 3
    written = json.loads(open(dataset.write(tmp_path / "out", format="coco")).read())
    assert [c["id"] for c in written["categories"]] == [3, 17, 90]
    assert sorted(a["category_id"] for a in written["annotations"]) == [3, 90]
    assert written["annotations"][0]["bbox"] == [10, 5, 20, 10]


def test_coco_official_layout_finds_the_image_folder(tmp_path, make_image):
    make_image(tmp_path / "val2017" / "000000000139.jpg")
    document = {
        "images": [{"id": 139, "file_name": "000000000139.jpg"}],  # No width/height.
        "categories": [{"id": 1, "name": "person"}],
    }  # No annotations at all (like image_info files).
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(document))
    dataset = load_dataset(tmp_path, split="val2017")
    assert dataset[0]["image"].shape == (48, 64, 3)
    assert len(dataset[0]["boxes"]) == 0


def test_yolo_names_dict_path_key_and_txt_list(tmp_path, make_image):
    root = tmp_path / "data"
    for name in ("a.png", "b.png"):
        make_image(root / "images" / "train" / name, width=100, height=50)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.1 0.2 0.2\n")
    (root / "labels" / "train" / "b.txt").write_text("0 0.1 0.2 0.3 0.2 0.2 0.6\n")  # polygon
    (root / "train.txt").write_text("./images/train/b.png\nimages/train/a.png\n")
    (tmp_path / "data.yaml").write_text(
        "path: data\ntrain: images/train\nval: train.txt\nnames:\n  0: cat\n  1: dog\n"
    )
    dataset = read_yolo(tmp_path / "data.yaml", split="train")
    assert dataset.class_names == ("cat", "dog")
    assert [s["file_name"] for s in dataset] == ["a.png", "b.png"]
    np.testing.assert_allclose(dataset[0]["boxes"], [[40, 15, 60, 35], [0, 0, 20, 10]], atol=1e-4)
    np.testing.assert_array_equal(dataset[0]["classes"], [1, 0])
    np.testing.assert_allclose(dataset[1]["boxes"], [[10, 10, 30, 30]], atol=1e-4)
    listed = read_yolo(tmp_path / "data.yaml", split="val")
    assert [s["file_name"] for s in listed] == ["images/train/b.png", "images/train/a.png"]


def test_voc_one_based_corners_and_class_list(tmp_path, make_image):
    make_image(tmp_path / "JPEGImages" / "x.jpg", width=64, height=48)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text(
        "<annotation><filename>x.jpg</filename><size><width>64</width><height>48</height>"
        "</size><object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>64</xmax><ymax>48</ymax></bndbox></object><object><name>cat"
        "</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>30</xmax><ymax>15</ymax>"
        "</bndbox></object></annotation>"
    )
    dataset = read_voc(tmp_path)  # No ImageSets: every annotation; classes sorted.
    assert dataset.class_names == ("cat", "dog")
    np.testing.assert_array_equal(dataset[0]["boxes"], [[0, 0, 64, 48], [10, 5, 30, 15]])
    np.testing.assert_array_equal(dataset[0]["classes"], [1, 0])
    assert len(read_voc(tmp_path, include_difficult=False)[0]["boxes"]) == 1
    given = read_voc(tmp_path, class_names=["dog", "cat", "bird"])
    np.testing.assert_array_equal(given[0]["classes"], [0, 1])
    assert load_dataset(tmp_path, class_names=["dog", "cat"]).class_names == ("dog", "cat")


def test_class_names_only_for_voc(tmp_path, shapes):
    path = shapes.write(tmp_path, format="coco")
    with pytest.raises(ValueError, match="only used for Pascal VOC"):
        load_dataset(path, class_names=["a"])


def test_record_dataset_annotation_does_not_decode(tmp_path, shapes):
    dataset = load_dataset(shapes.write(tmp_path, format="voc"))
    assert isinstance(dataset, RecordDataset)
    annotation = dataset.annotation(0)
    assert isinstance(annotation["image"], str) and annotation["path"] == annotation["image"]
