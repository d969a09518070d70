"""Tests for the common dataset types, sampling and load_dataset dispatch."""

import subprocess
import sys

import numpy as np
import pytest

from edgedet.data import SyntheticShapes, load_dataset, sample, to_keras_cv
from edgedet.data.dataset import Record, RecordDataset, Validator


def test_sample_is_deterministic_distinct_and_sorted():
    dataset = SyntheticShapes(num_images=50, image_size=32, seed=0)
    first, again = sample(dataset, 10, seed=3), sample(dataset, 10, seed=3)
    assert first.indices == again.indices
    assert first.indices == sorted(set(first.indices)) and len(first) == 10
    assert sample(dataset, 10, seed=4).indices != first.indices
    assert first[0]["image_id"] == first.indices[0]
    assert first.class_names == dataset.class_names
    assert [s["image_id"] for s in first] == first.indices
    assert sample(dataset, 50, seed=1).indices == list(range(50))
    assert len(sample(dataset, 0)) == 0


def test_sample_rejects_too_many():
    with pytest.raises(ValueError, match="Cannot sample 6 images from a dataset of 5"):
        sample(SyntheticShapes(num_images=5, image_size=32), 6)


def test_to_keras_cv_layout_and_format_conversion():
    item = {
        "image": np.zeros((50, 100, 3), np.uint8),
        "boxes": np.array([[10, 20, 30, 60]], np.float32),
        "classes": np.array([2], np.int32),
    }
    kcv = to_keras_cv(item)
    assert kcv["images"] is item["image"]
    np.testing.assert_array_equal(kcv["bounding_boxes"]["boxes"], [[10, 20, 30, 60]])
    np.testing.assert_array_equal(kcv["bounding_boxes"]["classes"], [2])
    converted = to_keras_cv(item, bounding_box_format="rel_center_xywh")
    np.testing.assert_allclose(converted["bounding_boxes"]["boxes"], [[0.2, 0.8, 0.2, 0.8]])
    empty = to_keras_cv({**item, "boxes": np.zeros((0, 4)), "classes": []}, "center_xywh")
    assert empty["bounding_boxes"]["boxes"].shape == (0, 4)


def test_load_dataset_synthetic_spec_and_passthrough():
    dataset = load_dataset("synthetic:shapes?n=4&seed=2&size=40", split="val")
    assert len(dataset) == 4 and dataset.split == "val" and dataset.seed == 2
    assert load_dataset(dataset) is dataset


def test_record_dataset_validates_and_indexes(tmp_path):
    with pytest.raises(ValueError, match="2 boxes but 1 classes"):
        Record("a.png", 0, np.zeros((2, 4)), [1])
    image = np.zeros((4, 4, 3), np.uint8)
    dataset = RecordDataset([Record("a.png", 0, [[0, 0, 1, 1]], [0], image=image)], ["a"])
    assert dataset[0]["image"] is image and dataset.num_classes == 1
    with pytest.raises(TypeError, match="integers"):
        dataset["0"]
    with pytest.raises(IndexError):
        dataset[1]


def test_validator_box_rules():
    validator = Validator("clip")
    with pytest.warns(UserWarning, match="img:3: box \\[-5, 0, 5, 5\\] is outside"):
        assert validator.check_box((-5, 0, 5, 5), 0, 10, 10, 1, "img:3") == (0, 0, 5, 5)
    assert validator.check_box((0, 0, 10, 10), 0, 10, 10, 1, "img:4") == (0, 0, 10, 10)
    with pytest.warns(UserWarning, match="skipped"):  # Fully outside: nothing to clip to.
        assert validator.check_box((20, 0, 30, 5), 0, 10, 10, 1, "img:5") is None
    with pytest.warns(UserWarning, match="not finite"):
        assert validator.check_box((0, 0, float("nan"), 5), 0, 10, 10, 1, "img:6") is None


def test_importing_edgedet_data_does_not_import_tensorflow():
    code = "import sys, edgedet.data; assert 'tensorflow' not in sys.modules, 'tf imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
