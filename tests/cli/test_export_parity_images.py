"""Which images `edgedet export` checks parity on: an INT8 export with a --calib-data
folder is judged on the user's own images, not on synthetic shapes."""

import numpy as np
from PIL import Image

from edgedet.cli.export import PARITY_IMAGES, PARITY_SIZE, _parity_images


def _folder(path, count):
    path.mkdir()
    for i in range(count):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(path / f"img_{i:03d}.png")
    return path


def test_int8_with_a_calibration_folder_uses_its_images(tmp_path):
    folder = _folder(tmp_path / "calib", PARITY_SIZE + 8)
    images = _parity_images(None, str(folder), "int8")
    assert len(images) == PARITY_SIZE == len(set(images))
    assert all(str(folder) in path for path in images)
    assert images == _parity_images(None, str(folder), "int8")  # fixed by its seed


def test_a_small_folder_gives_all_its_images(tmp_path):
    folder = _folder(tmp_path / "calib", 3)
    assert len(_parity_images(None, str(folder), "int8")) == 3


def test_otherwise_the_given_or_synthetic_images(tmp_path):
    folder = _folder(tmp_path / "calib", 4)
    assert _parity_images("mine/", str(folder), "int8") == "mine/"
    assert _parity_images(None, str(folder), "fp32") == PARITY_IMAGES
    assert _parity_images(None, None, "int8") == PARITY_IMAGES
    assert _parity_images(None, "synthetic:shapes?n=40", "int8") == PARITY_IMAGES
