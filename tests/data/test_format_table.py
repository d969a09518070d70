"""The dataset format table: each row detects, reads and writes its own format."""

import numpy as np
import pytest

from edgedet.data import DatasetError, SyntheticShapes, get_format, load_dataset
from edgedet.data.formats import formats, write_formats
from edgedet.data.loading import detect

NAMES = ("coco", "yolo", "voc")


@pytest.fixture(scope="module")
def shapes():
    return SyntheticShapes(num_images=3, image_size=(40, 56), seed=5, min_objects=1)


def test_table_lists_every_format():
    assert sorted(f.name for f in formats()) == sorted(NAMES)
    assert sorted(write_formats()) == sorted(NAMES)
    assert [f.name for f in formats(detection_order=True)] == ["yolo", "voc", "coco"]


@pytest.mark.parametrize("name", NAMES)
def test_row_writes_detects_and_reads_its_format(tmp_path, shapes, name):
    row = get_format(name)
    path = row.write(shapes, str(tmp_path), split="train", force=False, image_format="png")
    for spec in (path, str(tmp_path)):  # The written file and its folder.
        found, where = detect(spec, "train")
        assert found is row
        assert row.detect(where, "train") or row.guess(where, "train")
    others = [f for f in formats() if f is not row]
    assert all(not f.detect(str(tmp_path), "train") for f in others)
    back = row.read(where, split="train", on_invalid="error")
    assert back.class_names == shapes.class_names
    for original, read in zip(shapes, back, strict=True):
        np.testing.assert_array_equal(read["image"], original["image"])
        np.testing.assert_array_equal(read["classes"], original["classes"])
        np.testing.assert_allclose(read["boxes"], original["boxes"], atol=1.001)


def test_folder_with_two_formats_opens_as_the_first_by_priority(tmp_path, shapes):
    shapes.write(tmp_path, format="coco")
    assert detect(str(tmp_path), "train")[0].name == "coco"
    shapes.write(tmp_path, format="voc", force=True)  # Annotations/ beside annotations/: VOC wins.
    assert detect(str(tmp_path), "train")[0].name == "voc"
    shapes.write(tmp_path, format="yolo", force=True)  # data.yaml wins over both.
    assert detect(str(tmp_path), "train")[0].name == "yolo"


def test_single_yaml_is_a_guess_after_the_other_formats(tmp_path, shapes):
    shapes.write(tmp_path, format="yolo")
    (tmp_path / "data.yaml").rename(tmp_path / "shapes.yaml")
    assert detect(str(tmp_path), "train")[0].name == "yolo"
    shapes.write(tmp_path, format="coco", force=True)  # A COCO file is a stronger sign.
    assert detect(str(tmp_path), "train")[0].name == "coco"


def test_unknown_format_names_the_choices():
    with pytest.raises(ValueError, match=r"Invalid format: 'yoloo'.*Did you mean 'yolo'"):
        get_format("yoloo")
    with pytest.raises(ValueError, match="Did you mean 'coco'"):
        SyntheticShapes(num_images=1, image_size=32).write("/nonexistent", format="cocoo")


def test_nothing_recognised_is_a_dataset_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="Unrecognised dataset file.*COCO JSON"):
        load_dataset(tmp_path / "notes.txt")
