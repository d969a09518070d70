"""Fake runtimes for parity tests: detections looked up by image content.

`FakeRuntime` follows the runtime interface (context manager, `metadata`,
`predict(list of uint8 images) -> list[Detections]`) without a model: it
returns the detections registered for each image's pixels, optionally passed
through a `transform(name, detections)` that simulates a broken export.
"""

import hashlib

import numpy as np
import pytest
from PIL import Image

from edgedet.config import InferenceConfig
from edgedet.detections import Detections
from edgedet.metadata import ArtifactMetadata

CLASS_NAMES = ("circle", "square", "triangle")


def image_key(image):
    image = np.ascontiguousarray(image)
    return hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()


class FakeRuntime:
    def __init__(self, table, class_names=CLASS_NAMES, target="fake", precision="fp32",
                 box_format="xyxy", transform=None, fail_on_enter=None, name=None,
                 source_sha256="a" * 64):
        self.table = table
        self.transform = transform
        self.fail_on_enter = fail_on_enter
        self.name = name
        self.entered = 0
        self._metadata = ArtifactMetadata(
            class_names=class_names,
            inference=InferenceConfig(bounding_box_format=box_format),
            target=target, precision=precision, source_sha256=source_sha256)

    @property
    def metadata(self):
        return self._metadata

    def __enter__(self):
        if self.fail_on_enter is not None:
            raise self.fail_on_enter
        self.entered += 1
        return self

    def __exit__(self, *exc):
        self.entered -= 1
        return False

    def predict(self, images):
        assert self.entered > 0, "predict() before __enter__"
        results = []
        for image in images:
            name, detections = self.table[image_key(image)]
            fmt = self._metadata.inference.bounding_box_format
            out = detections.to_format(fmt, image_shape=image.shape[:2])
            if self.transform is not None:
                out = self.transform(name, out)
            results.append(out)
        return results


def make_case(n=6, size=(48, 64), seed=0):
    """Images with 0-3 hand-placed detections each; returns (images, table)."""
    rng = np.random.default_rng(seed)
    images, table = [], {}
    for i in range(n):
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        count = i % 4
        boxes = np.array([[4 + 10 * k, 4 + 8 * k, 20 + 10 * k, 24 + 8 * k] for k in range(count)],
                         np.float32).reshape(-1, 4)
        detections = Detections(boxes, np.linspace(0.9, 0.5, count, dtype=np.float32),
                                np.arange(count, dtype=np.int32) % len(CLASS_NAMES))
        name = f"img_{i:02d}.png"
        images.append((name, image))
        table[image_key(image)] = (name, detections)
    return images, table


def shift_boxes(names, dx=12.0):
    """A transform that moves every box of the named images by `dx` pixels."""

    def transform(name, detections):
        if name not in names or not len(detections):
            return detections
        boxes = detections.to_format("xyxy").boxes + np.float32([dx, 0, dx, 0])
        return Detections(boxes, detections.confidence, detections.classes, "xyxy").to_format(
            detections.bounding_box_format)

    return transform


@pytest.fixture
def case():
    return make_case()


@pytest.fixture
def image_dir(tmp_path, case):
    """The case's images written as PNG files (lossless, so the keys still match)."""
    images, _ = case
    folder = tmp_path / "images"
    folder.mkdir()
    for name, image in images:
        Image.fromarray(image).save(folder / name)
    return folder


@pytest.fixture
def fakes():
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    import types

    return types.SimpleNamespace(FakeRuntime=FakeRuntime, make_case=make_case,
                                 shift_boxes=shift_boxes, image_key=image_key,
                                 CLASS_NAMES=CLASS_NAMES)
