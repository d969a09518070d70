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

A bundle is compared whole or not at all. `manifest.json` records what it
holds (the image names, the sha256 of every image file and of
`reference.json`, the count, the edgedet version that wrote it), and every
read checks the folder against it: a missing, altered or unexpected file
refuses the bundle (`BrokenBundleError`, naming the file), so a deleted
image can never shrink a comparison that then passes. A bundle without a
manifest (written before bundles had one) is refused too, with the command
to re-export it.
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
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
OUTPUTS = ("boxes", "confidence", "classes", "num_detections")

#: How a bundle is rebuilt, for the refusals.
REEXPORT = ("Copy the whole folder again from the workstation, or re-export it there "
            "(`edgedet export --model MODEL --target trt ...` writes `<stem>_parity/`).")


class BrokenBundleError(MetadataError):
    """A parity bundle's files are not the ones its manifest records (or it has no manifest)."""


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
        write_manifest(scratch, [entry["file"] for entry in entries])
    return Path(folder)


def _file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(folder, image_files):
    """Writes `manifest.json`: what the bundle in `folder` holds, to be checked on every read.

    Args:
        folder: path. The bundle folder, with `reference.json` and the images written.
        image_files: list of str. The images' paths relative to `folder`
            (`images/<name>.png`), in the reference's order.
    """
    import edgedet

    folder = Path(folder)
    document = {
        "manifest_version": MANIFEST_VERSION,
        "edgedet_version": edgedet.__version__,
        "count": len(image_files),
        "reference": {"file": REFERENCE_FILE, "sha256": _file_sha256(folder / REFERENCE_FILE)},
        "images": [{"name": Path(file).stem, "file": file, "sha256": _file_sha256(folder / file)}
                   for file in image_files],
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(document, indent=1) + "\n")


def _read_manifest(folder):
    """The manifest as a dict; refuses a missing, unreadable or malformed one."""
    file = folder / MANIFEST_FILE
    if not file.is_file():
        raise BrokenBundleError(
            f"Parity bundle '{folder}' has no {MANIFEST_FILE} (it was written before bundles "
            f"recorded what they hold, or the file was lost): its images and reference cannot "
            f"be checked, so it is not compared. Re-export it on the workstation "
            f"(`edgedet export --model MODEL --target trt ...` writes `<stem>_parity/`) and copy "
            f"the whole folder.")
    try:
        manifest = json.loads(file.read_text())
        images = [(str(entry["file"]), str(entry["sha256"])) for entry in manifest["images"]]
        reference = (str(manifest["reference"]["file"]), str(manifest["reference"]["sha256"]))
        count = int(manifest["count"])
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise BrokenBundleError(
            f"Cannot read the manifest '{file}' of parity bundle '{folder}' "
            f"({type(error).__name__}: {error}). {REEXPORT}") from error
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise BrokenBundleError(
            f"Parity bundle manifest '{file}' has manifest_version "
            f"{manifest.get('manifest_version')!r}; this edgedet reads version "
            f"{MANIFEST_VERSION}. {REEXPORT}")
    if count != len(images):
        raise BrokenBundleError(
            f"Parity bundle manifest '{file}' says it holds {count} image(s) and lists "
            f"{len(images)}. {REEXPORT}")
    return dict([reference, *images])


def check_bundle(path):
    """Checks a bundle folder against its manifest; returns the image files it holds.

    Every file the manifest lists must be there with its recorded sha256, and
    nothing else may be (the `.edgedet-output.json` marker aside). Every
    problem is listed in one error.

    Args:
        path: str or path. The bundle folder.

    Returns:
        The image paths relative to the folder, in the manifest's order.

    Raises:
        BrokenBundleError: no manifest, or a missing, altered or unexpected
            file (each named).
    """
    from edgedet.files import MARKER_NAME, files_below, printable

    folder = Path(path)
    recorded = _read_manifest(folder)
    present = set(files_below(folder)) - {MANIFEST_FILE, MARKER_NAME}
    problems = [f"missing {printable(name)}" for name in recorded if name not in present]
    problems += [f"altered {printable(name)} (sha256 differs from the manifest's)"
                 for name in recorded if name in present
                 and _file_sha256(folder / name) != recorded[name]]
    problems += [f"unexpected {printable(name)} (not in the manifest)"
                 for name in sorted(present - set(recorded))]
    if problems:
        raise BrokenBundleError(
            f"Parity bundle '{folder}' is not the one that was written, so it is not compared "
            f"(a bundle is compared whole): {'; '.join(problems)}. {REEXPORT}")
    return [name for name in recorded if name != REFERENCE_FILE]


def read_bundle(path):
    """The bundle's `reference.json` as a dict, once the folder is checked (`check_bundle`).

    Raises:
        BrokenBundleError: no manifest, a missing, altered or unexpected
            file, or a reference that lists other images than the manifest.
        MetadataError: unreadable or of another schema version.
    """
    image_files = check_bundle(path)
    file = Path(path) / REFERENCE_FILE
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise MetadataError(f"Cannot read parity bundle '{file}': {error}") from error
    if document.get("schema_version") != SCHEMA_VERSION:
        raise MetadataError(
            f"Parity bundle '{file}' has schema version {document.get('schema_version')!r}; "
            f"this edgedet reads version {SCHEMA_VERSION}. Re-export it.")
    listed = [entry.get("file") for entry in document.get("images", [])]
    if listed != image_files:
        raise BrokenBundleError(
            f"Parity bundle '{file}' lists other images than its manifest "
            f"({len(listed)} vs {len(image_files)}). {REEXPORT}")
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
