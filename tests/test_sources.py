"""The one image source: every kind of input, sampling, unreadable files, image checks."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from edgedet.calibration.data import calibration_data

# Calibration sets and cache keys computed by the code BEFORE `edgedet.sources`
# existed (calibration/data.py at 11900b6). A change here re-keys every
# calibration cache users have: only with a reason.
PINNED = {
    "folder": (["calib/img_04.bmp", "calib/img_05.bmp", "calib/img_07.bmp"], "folder 'calib'",
               "961d527b7b5385e8e0ce24cf320ffa26f4701bdd3ced375dcc6eb442e0cc55b7"),
    "synthetic": (["synthetic[train:1:0]", "synthetic[train:1:1]", "synthetic[train:1:2]",
                   "synthetic[train:1:5]"], "synthetic:shapes?n=10&seed=1&size=32",
                  "d72a18ab94ff5563c88308d962595612451f4e0231f47775ee3c6089eb2feab9"),
    "arrays": (["array[1]", "array[2]"], "arrays",
               "a554530b6fbe89bf9426c13a7d7e4f7b97499b2f119b7ca19a1fd500c88cdd96"),
    "default": (["synthetic[train:0:3821]", "synthetic[train:0:5102]"],
                "synthetic:shapes?n=6000&seed=0&size=224",
                "5979cb342fbae5d283625ae2f0c34dc0aaa2ca4ad516e9f54253279af7901b1f"),
}


def _bmp_folder(folder, count, seed=0):
    """`count` small BMP files (uncompressed: the bytes never depend on a zlib version)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for i in range(count):
        array = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        path = folder / f"img_{i:02d}.bmp"
        Image.fromarray(array).save(path)
        stamp = 1_700_000_000_000_000_000 + i
        os.utime(path, ns=(stamp, stamp))
        arrays.append(array)
    return arrays


def _calibration(source, size, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = calibration_data(source, size=size, seed=seed)
    return [name for name, _ in data.items], data.source, data.key()


def test_calibration_sets_and_keys_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _bmp_folder(tmp_path / "calib", 8)
    assert _calibration("calib", size=3, seed=7) == PINNED["folder"]
    assert _calibration("synthetic:shapes?n=10&seed=1&size=32", size=4, seed=3) == \
        PINNED["synthetic"]
    assert _calibration([np.zeros((4, 4, 3), np.uint8)] * 5, size=2, seed=1) == PINNED["arrays"]
    assert _calibration(None, size=2) == PINNED["default"]


def test_calibration_dataset_folder_sample_is_unchanged(tmp_path, monkeypatch):
    from edgedet.data import load_dataset

    monkeypatch.chdir(tmp_path)
    load_dataset("synthetic:shapes?n=6&seed=2&size=32").write("coco", format="coco")
    names, label, _ = _calibration("coco", size=3, seed=0)
    assert names == [f"shapes_train_2_00000{i}.png" for i in (3, 4, 5)]
    assert label == "dataset 'coco'"
