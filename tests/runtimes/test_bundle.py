"""Parity bundle: written once, replayed by image content, refused for other images, and
compared whole or not at all (its manifest)."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import edgedet
from edgedet.config import InferenceConfig
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.bundle import (
    MANIFEST_FILE,
    REFERENCE_FILE,
    BrokenBundleError,
    BundleRuntime,
    image_key,
    write_bundle,
    write_manifest,
)
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
    write_manifest(folder, [f"images/{name}.png" for name, _ in images])  # Consistent again.
    with pytest.raises(MetadataError, match="schema version 99"):
        read_metadata(folder)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_records_what_the_bundle_holds(bundle):
    folder, images, _ = bundle
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["count"] == 3 and manifest["edgedet_version"] == edgedet.__version__
    assert [entry["name"] for entry in manifest["images"]] == ["im0", "im1", "im2"]
    for entry in manifest["images"]:
        assert entry["sha256"] == _sha256(folder / entry["file"])
    assert manifest["reference"] == {"file": REFERENCE_FILE,
                                     "sha256": _sha256(folder / REFERENCE_FILE)}
    assert ".edgedet-output.json" in {p.name for p in folder.iterdir()}  # Allowed beside it.


def _delete_image(folder):
    (folder / "images" / "im1.png").unlink()


def _alter_image(folder):
    """Same pixels' shape, one byte of the file changed: the PNG no longer matches."""
    from PIL import Image

    file = folder / "images" / "im1.png"
    pixels = np.asarray(Image.open(file)).copy()
    pixels[0, 0, 0] ^= 1
    Image.fromarray(pixels).save(file)


def _alter_reference(folder):
    document = json.loads((folder / REFERENCE_FILE).read_text())
    document["images"][0]["outputs"]["confidence"][0] = 0.5
    (folder / REFERENCE_FILE).write_text(json.dumps(document))


def _add_image(folder):
    shutil.copy(folder / "images" / "im0.png", folder / "images" / "extra.png")


def _add_file(folder):
    (folder / "notes.txt").write_text("mine")


def _drop_manifest(folder):
    (folder / MANIFEST_FILE).unlink()


def _drop_from_manifest(folder):
    """A manifest edited to agree with a deleted image still disagrees with the reference."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["images"] = manifest["images"][:2]
    manifest["count"] = 2
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    (folder / "images" / "im2.png").unlink()


BREAKAGES = {
    "deleted image": (_delete_image, r"missing images/im1\.png"),
    "altered image": (_alter_image, r"altered images/im1\.png"),
    "altered reference": (_alter_reference, r"altered reference\.json"),
    "extra image": (_add_image, r"unexpected images/extra\.png"),
    "extra file": (_add_file, r"unexpected notes\.txt"),
    "no manifest (an old bundle)": (_drop_manifest, r"no manifest\.json.*Re-export it"),
    "manifest edited": (_drop_from_manifest, r"lists other images than its manifest"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_bundle_is_refused_naming_the_file(bundle, breakage):
    folder, images, _ = bundle
    damage, message = BREAKAGES[breakage]
    damage(folder)
    with pytest.raises(BrokenBundleError, match=message):
        read_metadata(folder)
    with pytest.raises(BrokenBundleError, match=message):
        open_runtime(folder)
    with pytest.raises(BrokenBundleError, match=message):
        with BundleRuntime(folder):
            pass


def _parity(*args):
    from edgedet.cli.main import cli

    return CliRunner().invoke(cli, ["parity", *map(str, args)], catch_exceptions=False)


def test_parity_compares_a_whole_bundle_or_stops_with_exit_2(bundle, tmp_path):
    """The gate of `edgedet parity --reference BUNDLE ARTIFACT` (the artifact is a copy of the
    bundle, which replays the same detections): a deleted image is never a smaller pass."""
    folder, _, _ = bundle
    artifact = shutil.copytree(folder, tmp_path / "copy_parity")
    result = _parity("--reference", folder, artifact, "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    assert "parity PASSED" in result.output
    _delete_image(folder)
    result = _parity("--reference", folder, artifact, "--out", tmp_path / "broken")
    assert result.exit_code == 2, result.output
    assert "missing images/im1.png" in result.output and "PASSED" not in result.output
    assert not (tmp_path / "broken").exists()
