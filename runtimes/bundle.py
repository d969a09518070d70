"""A parity bundle: images and the reference's detections, saved on the workstation.

On a device without TensorFlow there is no Keras reference to run, so
`edgedet export --target trt` writes, next to the TensorRT-ready ONNX, a
folder `<stem>_parity/` with `images/*.png` and `reference.json`: for every
image its sha256 and the float32 Keras reference's padded outputs, plus the
artifact metadata (classes, letterbox, NMS, box format). `BundleRuntime`
replays them through the normal runtime interface, so on the device

    edgedet parity --reference engines/model_parity engines/model.engine

compares the engine with the workstation's reference detection by
detection. An image the bundle does not hold is refused (the lookup is by
the pixels' sha256), so the replay can never answer for an image it did not
see.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

SCHEMA_VERSION = 1
REFERENCE_FILE = "reference.json"
IMAGES_DIR = "images"
OUTPUTS = ("boxes", "confidence", "classes", "num_detections")


def image_key(image):
    """sha256 of a uint8 `[H, W, 3]` image's shape and pixels."""
    image = np.ascontiguousarray(image, np.uint8)
    digest = hashlib.sha256(repr(tuple(image.shape)).encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def is_bundle(path):
    """True for a folder holding a `reference.json`."""
    return (Path(path) / REFERENCE_FILE).is_file()


def write_bundle(folder, metadata, named_images, predict, reference_name, force=False):
    """Writes a parity bundle (atomically, as one folder).

    Args:
        folder: path. The bundle folder.
        metadata: `ArtifactMetadata` of the reference (same settings as the
            artifacts it will be compared with).
        named_images: list of `(name, uint8 [H, W, 3])`.
        predict: callable `image -> dict` of the padded outputs for one
            image (`[1, ...]` arrays named as `OUTPUTS`).
        reference_name: str. What the reference was, for reports.
        force: bool. Replace an existing folder. Defaults to False.

    Returns:
        The folder as a `pathlib.Path`.
    """
    from PIL import Image

    from edgedet.files import atomic_output_dir

    entries = []
    with atomic_output_dir(folder, force=force) as scratch:
        (Path(scratch) / IMAGES_DIR).mkdir()
        for name, image in named_images:
            file = f"{IMAGES_DIR}/{name}.png"
            Image.fromarray(np.asarray(image, np.uint8)).save(Path(scratch) / file)
            outputs = predict(image)
            entries.append({
                "file": file, "sha256": image_key(image), "shape": list(image.shape),
                "outputs": {k: np.asarray(outputs[k])[0].tolist() for k in OUTPUTS},
            })
        document = {"schema_version": SCHEMA_VERSION, "reference": reference_name,
                    "metadata": metadata.to_dict(), "images": entries}
        (Path(scratch) / REFERENCE_FILE).write_text(json.dumps(document))
    return Path(folder)


def read_bundle(path):
    """The bundle's `reference.json` as a dict.

    Raises:
        MetadataError: missing, unreadable or of another schema version.
    """
    file = Path(path) / REFERENCE_FILE
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise MetadataError(f"Cannot read parity bundle '{file}': {error}") from error
    if document.get("schema_version") != SCHEMA_VERSION:
        raise MetadataError(
            f"Parity bundle '{file}' has schema version {document.get('schema_version')!r}; "
            f"this edgedet reads version {SCHEMA_VERSION}. Re-export it.")
    return document


def read_metadata(path):
    """The `ArtifactMetadata` the bundle's reference ran with."""
    return ArtifactMetadata.from_dict(read_bundle(path)["metadata"],
                                      source=str(Path(path) / REFERENCE_FILE))


class BundleRuntime(Runtime):
    """Replays a parity bundle's reference detections.

    Args:
        path: str or path. The bundle folder.
    """

    kind = "bundle"

    def __init__(self, path):
        super().__init__(Path(path))
        self._outputs = None
        self.name = None

    def _read_metadata(self):
        return read_metadata(self.path)

    def _load(self):
        document = read_bundle(self.path)
        self.name = f"{document.get('reference', 'reference')} (saved in {self.path.name})"
        self._outputs = {e["sha256"]: e["outputs"] for e in document["images"]}

    def _release(self):
        self._outputs = None

    def _infer(self, batch):
        rows = []
        for image in batch:
            outputs = self._outputs.get(image_key(image))
            if outputs is None:
                raise ValueError(
                    f"An image of shape {image.shape} is not in parity bundle '{self.path}': a "
                    f"bundle only holds the reference for its own images (use --images "
                    f"{self.path / IMAGES_DIR}).")
            rows.append(outputs)
        dtypes = {"boxes": np.float32, "confidence": np.float32, "classes": np.int32,
                  "num_detections": np.int32}
        return {k: np.asarray([row[k] for row in rows], dtypes[k]) for k in OUTPUTS}
