"""Helpers shared by the dataset tests: tiny image files written into tmp_path."""

import numpy as np
import pytest
from PIL import Image


def write_image(path, width=64, height=48, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def make_image():
    return write_image
