"""Parity bundle: written once, replayed by image content, refused for other images."""

import numpy as np
import pytest

from edgedet.config import InferenceConfig
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.bundle import REFERENCE_FILE, BundleRuntime, image_key, write_bundle
from edgedet.runtimes.registry import open_runtime, read_metadata, runtime_kind


def _fake_predict(image):
    """One box per image, its size from the image's mean, so each image answers differently."""
    value = float(image.mean())
    return {"boxes": np.array([[[0, 0, value, value], [0, 0, 0, 0]]], np.float32),
            "confidence": np.array([[0.9, 0.0]], np.float32),
            "classes": np.array([[1, -1]], np.int32),
            "num_detections": np.array([1], np.int32)}


@pytest.fixture()
def bundle(tmp_path):
    rng = np.random.default_rng(0)
    images = [(f"im{i}", rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)) for i in range(3)]
    metadata = ArtifactMetadata(class_names=("a", "b"), inference=InferenceConfig(),
                                target="keras", precision="fp32")
    folder = write_bundle(tmp_path / "m_parity", metadata, images, _fake_predict, "fake")
    return folder, images, metadata


def test_bundle_replays_the_saved_detections(bundle):
    folder, images, metadata = bundle
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["im0.png", "im1.png",
                                                                      "im2.png"]
    assert runtime_kind(folder) == "bundle" and read_metadata(folder) == metadata
    with open_runtime(folder) as runtime:
        assert isinstance(runtime, BundleRuntime)
        detections = runtime.predict([image for _, image in images][::-1])
    for (_, image), found in zip(images[::-1], detections):
        assert len(found) == 1 and found.classes.tolist() == [1]
        np.testing.assert_allclose(found.boxes[0, 2], np.float32(image.mean()))


def test_bundle_refuses_other_images_and_existing_folders(bundle):
    folder, images, metadata = bundle
    other = images[0][1].copy()
    other[0, 0, 0] ^= 1
    assert image_key(other) != image_key(images[0][1])
    with BundleRuntime(folder) as runtime:
        with pytest.raises(ValueError, match="is not in parity bundle"):
            runtime.predict([other])
    with pytest.raises(FileExistsError):
        write_bundle(folder, metadata, images, _fake_predict, "fake")
    (folder / REFERENCE_FILE).write_text('{"schema_version": 99}')
    with pytest.raises(MetadataError, match="schema version 99"):
        read_metadata(folder)
