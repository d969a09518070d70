"""Calibration data: sources, deterministic sampling, checks and the reader protocols."""

import hashlib
import warnings

import numpy as np
import pytest
from PIL import Image

from edgedet.calibration.data import (
    CalibrationData,
    CalibrationDataError,
    DegenerateDataWarning,
    FewImagesWarning,
    calibration_data,
    check_image,
    sample_indices,
)


def _write_images(folder, sizes, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (height, width) in enumerate(sizes):
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(array).save(path)
        arrays[str(path)] = array
    return arrays


def _quiet(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewImagesWarning)
        return calibration_data(**kwargs)


def test_folder_feeds_uint8_batches_of_one_with_mixed_sizes(tmp_path):
    arrays = _write_images(tmp_path / "calib", [(20, 30), (41, 17), (8, 8)])
    data = _quiet(source=tmp_path / "calib", size=None)
    feeds = list(data)
    assert [f["images"].shape for f in feeds] == [(1, 20, 30, 3), (1, 41, 17, 3), (1, 8, 8, 3)]
    assert all(f["images"].dtype == np.uint8 for f in feeds)
    for feed, array in zip(feeds, arrays.values()):
        np.testing.assert_array_equal(feed["images"][0], array)
    # The image hashes are those of the decoded pixels (and shape).
    expected = [hashlib.sha256(str(a.shape).encode() + a.tobytes()).hexdigest()
                for a in arrays.values()]
    assert [r["sha256"] for r in data.image_records()] == expected
    assert [r["name"] for r in data.image_records()] == list(arrays)


def test_sampling_is_deterministic_and_seeded(tmp_path):
    _write_images(tmp_path / "calib", [(8, 8)] * 20)
    first = _quiet(source=tmp_path / "calib", size=7, seed=4)
    again = _quiet(source=tmp_path / "calib", size=7, seed=4)
    other = _quiet(source=tmp_path / "calib", size=7, seed=5)
    names = [n for n, _ in first.items]
    assert names == [n for n, _ in again.items]
    assert names != [n for n, _ in other.items]
    assert names == sorted(names) and len(set(names)) == 7
    # Same rule as numpy's PCG64 choice without replacement, sorted.
    expected = sorted(np.random.default_rng(4).choice(20, size=7, replace=False).tolist())
    assert sample_indices(20, 7, seed=4) == expected


def test_too_few_images_warns_and_asking_for_more_uses_all(tmp_path):
    _write_images(tmp_path / "calib", [(8, 8)] * 3)
    with pytest.warns(FewImagesWarning, match="has only 3"):
        data = calibration_data(tmp_path / "calib", size=10, min_images=1)
    assert len(data) == 3
    with pytest.warns(FewImagesWarning, match="at least 100"):
        calibration_data(tmp_path / "calib", size=3)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationDataError, match="empty"):
        calibration_data(tmp_path / "empty")


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(CalibrationDataError, match="not found"):
        calibration_data(tmp_path / "nope")


def test_unreadable_image_is_named(tmp_path):
    _write_images(tmp_path / "calib", [(8, 8)] * 2)
    (tmp_path / "calib" / "broken.jpg").write_bytes(b"not a jpeg")
    data = _quiet(source=tmp_path / "calib", size=None)
    with pytest.raises(CalibrationDataError, match="broken.jpg"):
        list(data)


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 8, 3), np.float32), "dtype float32; expected uint8"),
    (np.zeros((8, 8), np.uint8), r"shape \(8, 8\); expected \[H, W, 3\]"),
    (np.zeros((8, 8, 4), np.uint8), r"shape \(8, 8, 4\)"),
    ("image.png", "is a str"),
])
def test_bad_arrays_are_rejected_with_their_name(array, message):
    with pytest.raises(CalibrationDataError, match=message):
        check_image(array, "array[3]")
    data = CalibrationData([("array[3]", lambda: array)])
    with pytest.raises(CalibrationDataError, match=r"'array\[3\]'"):
        data.load(0)


def test_flat_images_warn_that_ranges_are_degenerate():
    black = [np.zeros((16, 16, 3), np.uint8) for _ in range(4)]
    data = _quiet(source=black, size=None)
    list(data)
    assert len(data.flat_images) == 4
    with pytest.warns(DegenerateDataWarning, match="4 of 4 calibration images are flat"):
        assert data.check_degenerate()
    lively = _quiet(source=[np.arange(48, dtype=np.uint8).reshape(4, 4, 3)] * 3, size=None)
    list(lively)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not lively.check_degenerate()


def test_synthetic_and_dataset_sources(tmp_path):
    data = _quiet(source="synthetic:shapes?n=5&seed=2&size=40", size=3, seed=1)
    assert len(data) == 3 and data.source.startswith("synthetic:")
    images = [f["images"] for f in data]
    assert all(i.shape == (1, 40, 40, 3) for i in images)

    from edgedet.data import load_dataset

    load_dataset("synthetic:shapes?n=6&seed=2&size=32").write(tmp_path / "coco", format="coco")
    coco = _quiet(source=tmp_path / "coco", size=None)
    assert len(coco) == 6 and "dataset" in coco.source
    assert coco.load(0).shape == (32, 32, 3)


def test_default_source_is_the_synthetic_training_stream():
    data = _quiet(source=None, size=2)
    assert data.source.startswith("synthetic:shapes") and len(data) == 2


def test_reader_protocols_cover_every_image_once():
    arrays = [np.full((4 + i, 5, 3), i, np.uint8) for i in range(5)]
    data = _quiet(source=arrays, size=None)
    reader = data.ort_reader()
    seen = []
    while (feed := reader.get_next()) is not None:
        seen.append(int(feed["images"][0, 0, 0, 0]))
    assert seen == [0, 1, 2, 3, 4] and len(reader) == 5
    chunks = [len(c) for c in data.chunks(2)]
    assert chunks == [2, 2, 1]
    generated = list(data.representative_dataset("serving_images")())
    assert [g["serving_images"].shape[1] for g in generated] == [4, 5, 6, 7, 8]


def test_key_changes_with_the_images(tmp_path):
    _write_images(tmp_path / "calib", [(8, 8)] * 6)
    first = _quiet(source=tmp_path / "calib", size=4, seed=0).key()
    assert first == _quiet(source=tmp_path / "calib", size=4, seed=0).key()
    assert first != _quiet(source=tmp_path / "calib", size=4, seed=1).key()
