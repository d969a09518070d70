"""`edgedet.predict.predict_images` with a stand-in runtime (no model needed)."""

import json
import re
import types

import numpy as np
import pytest
from PIL import Image

from edgedet.detections import Detections
from edgedet.files import UnsafeOutputError
from edgedet.predict import predict_images


class _Runtime:
    """Finds one box in the top-left quarter of every image."""

    metadata = types.SimpleNamespace(
        class_names=["thing"], inference=types.SimpleNamespace(bounding_box_format="xyxy"))

    def predict(self, images):
        (image,) = images
        height, width = image.shape[:2]
        return [Detections(boxes=np.array([[0, 0, width / 2, height / 2]], np.float32),
                           confidence=np.array([0.9], np.float32),
                           classes=np.array([0], np.int64))]


def _write(path, size):
    Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(path)
    return path


def test_one_path_or_a_list(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    _write(folder / "a.png", (20, 40))
    _write(folder / "b.png", (30, 10))
    as_string = predict_images(_Runtime(), str(folder), tmp_path / "out1")
    as_list = predict_images(_Runtime(), [folder], tmp_path / "out2")
    assert [r["image"] for r in as_string] == [r["image"] for r in as_list]
    assert len(as_string) == 2
    written = json.loads((tmp_path / "out1" / "a.json").read_text())
    assert (written["width"], written["height"]) == (40, 20)
    assert written["detections"] == as_list[0]["detections"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]  # Inputs untouched.


def test_one_path_is_protected_as_an_input(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    _write(folder / "a.png", (20, 40))
    with pytest.raises(UnsafeOutputError, match=f"it is .{re.escape(str(folder))}., an input"):
        predict_images(_Runtime(), str(folder), folder, force=True)
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]
