"""The run record of a parity check: what every runtime detected, saved to compare again.

A parity check is two steps (Polygraphy's `Comparator.run` and
`compare_accuracy`): `edgedet.parity.run.collect` runs the reference and
every artifact and returns a `RunRecord` (plain data: detections per image
per runtime, latencies, the machine, artifact metadata, the image names,
sizes and source, skipped or failed artifacts with their reasons);
`edgedet.parity.compare.compare` applies the matching, metrics and
thresholds to it, with no runtime and no image.

`save_run(record, "out/run.json")` writes two files: `run.json` (everything
but the boxes) and `run.npz` beside it (per detections list: `boxes`
`[N, 4]` float32, `confidence`, `classes` and per-image `counts`, so the
boxes come back bit for bit). `load_run("out/run.json")` reads them back and
names the file in every error. The JSON records the `.npz`'s sha256, so a
record whose two files do not belong together is refused. The layout of
`run.json` is the JSON Schema `run.schema.json` (`edgedet.parity.schemas`).

Images given as arrays or as a dataset object are kept in memory only
(`images` is the object itself); a loaded record then cannot reload them,
and reports draw no gallery, saying so.
"""

import dataclasses
import datetime
import hashlib
import io
import json
import os
import pathlib

import numpy as np

import edgedet
from edgedet.detections import Detections
from edgedet.parity.inputs import ParityInputError

FORMAT = "edgedet-parity-run"
VERSION = 1
STATUSES = ("ran", "failed", "skipped")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class RecordedRun:
    """The reference's detections under one inference config.

    Attributes:
        inference: dict. The inference settings (letterbox, NMS, box format).
        target: str. The reference runtime's target.
        precision: str. Its precision.
        detections: list of `Detections`, one per image.
        latency_ms: dict `{"median", "p90", "images"}` or None.
    """

    inference: dict
    target: str
    precision: str
    detections: list
    latency_ms: dict = None


@dataclasses.dataclass
class RecordedArtifact:
    """One artifact of a run: its detections, or why it has none.

    Attributes:
        name: str. Unique name (file or folder name).
        path: str. Where it was loaded from.
        target: str. Exporter target (`"unknown"` when it could not be read).
        precision: str. `"fp32"`, `"fp16"` or `"int8"`.
        status: str. `"ran"`, `"failed"` (to load, or to predict when
            `reference_run` is set) or `"skipped"` (runtime not installed).
        reason: str or None. Why it failed or was skipped.
        reference_run: int or None. Index into `RunRecord.reference_runs`.
        detections: list of `Detections` (one per image) or None.
        latency_ms: dict `{"median", "p90", "images"}` or None.
        notes: list of str. Facts that do not fail it (other weights).
        metadata: dict or None. The artifact's metadata (`ArtifactMetadata.to_dict`).
    """

    name: str
    path: str
    target: str
    precision: str
    status: str
    reason: str = None
    reference_run: int = None
    detections: list = None
    latency_ms: dict = None
    notes: list = dataclasses.field(default_factory=list)
    metadata: dict = None


@dataclasses.dataclass
class RunRecord:
    """Everything a parity run collected, before any threshold was applied.

    Attributes:
        reference_name: str. The reference, in words.
        class_names: list of str (empty when nothing could be opened).
        image_names: list of str. The images compared, in order.
        image_shapes: list of `(height, width)`.
        image_source: str. Where the images came from, in words.
        images: the image source to reload them from: an absolute folder or
            file path, a list of them, a `"synthetic:..."` spec, or (kept in
            memory only, not saved) a list of arrays or a dataset; None when
            it cannot be reloaded.
        labels: str or None. Where real labels came from.
        truth: list of `Detections` (the labels per image) or None.
        reference_runs: list of `RecordedRun`.
        artifacts: list of `RecordedArtifact`.
        machine: dict. What the check ran on.
        unreadable_images: list of `{"image", "reason"}`.
        created: str. UTC ISO 8601 time of the run.
    """

    reference_name: str
    class_names: list
    image_names: list
    image_shapes: list
    image_source: str
    images: object
    labels: str
    truth: list
    reference_runs: list
    artifacts: list
    machine: dict
    unreadable_images: list = dataclasses.field(default_factory=list)
    created: str = dataclasses.field(default_factory=_now)
    edgedet_version: str = edgedet.__version__

    @property
    def images_reloadable(self):
        """Whether a saved record keeps where to reload the images from."""
        return isinstance(self.images, str) or (
            isinstance(self.images, list) and all(isinstance(p, str) for p in self.images))


def image_spec(images):
    """What a record keeps to reload `images`: absolute paths, a spec, or the object itself."""
    if isinstance(images, (str, os.PathLike)):
        text = os.fspath(images)
        return text if text.startswith("synthetic:") else str(pathlib.Path(text).resolve())
    if (isinstance(images, (list, tuple)) and images
            and all(isinstance(p, (str, os.PathLike)) for p in images)):
        return [str(pathlib.Path(p).resolve()) for p in images]
    return images  # Arrays or a dataset: in memory only.


def _pack(arrays, key, detections):
    """Adds one list of `Detections` to `arrays`; returns its JSON description."""
    arrays[f"{key}_boxes"] = np.concatenate(
        [d.boxes.reshape(-1, 4) for d in detections] or [np.zeros((0, 4))]).astype(np.float32)
    arrays[f"{key}_confidence"] = np.concatenate(
        [d.confidence for d in detections] or [np.zeros(0)]).astype(np.float32)
    arrays[f"{key}_classes"] = np.concatenate(
        [d.classes for d in detections] or [np.zeros(0)]).astype(np.int32)
    arrays[f"{key}_counts"] = np.asarray([len(d) for d in detections], np.int64)
    return {"key": key, "formats": [d.bounding_box_format for d in detections]}


def _unpack(arrays, ref, count):
    key, formats = ref["key"], ref["formats"]
    counts = arrays[f"{key}_counts"]
    boxes, confidence = arrays[f"{key}_boxes"], arrays[f"{key}_confidence"]
    classes = arrays[f"{key}_classes"]
    if len(counts) != count or len(formats) != count:
        raise ValueError(f"'{key}' holds detections of {len(counts)} images, expected {count}")
    if int(counts.sum()) != len(boxes) or not len(boxes) == len(confidence) == len(classes):
        raise ValueError(f"'{key}' has {len(boxes)} boxes for {int(counts.sum())} detections")
    ends = np.cumsum(counts)
    starts = ends - counts
    return [Detections(boxes[s:e], confidence[s:e], classes[s:e], fmt)
            for s, e, fmt in zip(starts, ends, formats)]


def _to_json(record, npz_name):
    """`(document, arrays)`: the JSON part of `record` and its named arrays."""
    arrays = {}
    runs = []
    for i, run in enumerate(record.reference_runs):
        runs.append({"inference": run.inference, "target": run.target,
                     "precision": run.precision, "latency_ms": run.latency_ms,
                     "detections": _pack(arrays, f"reference{i}", run.detections)})
    artifacts = []
    for i, a in enumerate(record.artifacts):
        artifacts.append({
            "name": a.name, "path": a.path, "target": a.target, "precision": a.precision,
            "status": a.status, "reason": a.reason, "reference_run": a.reference_run,
            "latency_ms": a.latency_ms, "notes": list(a.notes), "metadata": a.metadata,
            "detections": (None if a.detections is None
                           else _pack(arrays, f"artifact{i}", a.detections))})
    document = {
        "format": FORMAT,
        "version": VERSION,
        "edgedet_version": record.edgedet_version,
        "created": record.created,
        "reference": {"name": record.reference_name, "class_names": list(record.class_names),
                      "runs": runs},
        "images": {
            "source": record.image_source,
            "reload": record.images if record.images_reloadable else None,
            "names": list(record.image_names),
            "shapes": [list(s) for s in record.image_shapes],
            "unreadable": [dict(u) for u in record.unreadable_images],
        },
        "labels": None if record.labels is None else {
            "name": record.labels,
            "detections": None if record.truth is None else _pack(arrays, "labels", record.truth)},
        "machine": record.machine,
        "artifacts": artifacts,
        "npz": {"file": npz_name},
    }
    return document, arrays


def save_run(record, path):
    """Writes `record` as `path` (JSON) and the `.npz` of its boxes beside it, atomically.

    Args:
        record: `RunRecord`.
        path: str or path. The JSON file, e.g. `"out/run.json"`; the boxes
            go to the same name with `.npz`.

    Returns:
        `(json path, npz path)`.
    """
    from edgedet.files import atomic_write_bytes

    path = pathlib.Path(path)
    npz_path = path.with_suffix(".npz")
    document, arrays = _to_json(record, npz_path.name)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    document["npz"]["sha256"] = hashlib.sha256(data).hexdigest()
    text = json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write_bytes(npz_path, data)
    atomic_write_bytes(path, text.encode("utf-8", "backslashreplace"))
    return path, npz_path


def _read(path):
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not a JSON file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not an edgedet parity run record (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if version != VERSION:
        raise ValueError(f"record version {version!r}; this edgedet "
                         f"({edgedet.__version__}) reads version {VERSION} only")
    npz = document["npz"]
    npz_path = path.parent / npz["file"]
    try:
        data = npz_path.read_bytes()
    except OSError as error:
        raise ValueError(f"its boxes file {npz_path} cannot be read ({error})") from None
    if hashlib.sha256(data).hexdigest() != npz["sha256"]:
        raise ValueError(f"its boxes file {npz_path} is not the one it was written with "
                         "(sha256 differs)")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        arrays = dict(arrays)
    images = document["images"]
    count = len(images["names"])
    runs = [RecordedRun(inference=r["inference"], target=r["target"], precision=r["precision"],
                        latency_ms=r["latency_ms"],
                        detections=_unpack(arrays, r["detections"], count))
            for r in document["reference"]["runs"]]
    artifacts = []
    for a in document["artifacts"]:
        if a["status"] not in STATUSES:
            raise ValueError(f"artifact {a['name']!r} has status {a['status']!r}, "
                             f"expected one of {list(STATUSES)}")
        reference_run = a["reference_run"]
        if reference_run is not None and not 0 <= reference_run < len(runs):
            raise ValueError(f"artifact {a['name']!r} names reference run {reference_run}, "
                             f"the record has {len(runs)}")
        if a["status"] == "ran" and (a["detections"] is None or reference_run is None):
            raise ValueError(f"artifact {a['name']!r} ran but has no detections")
        artifacts.append(RecordedArtifact(
            name=a["name"], path=a["path"], target=a["target"], precision=a["precision"],
            status=a["status"], reason=a["reason"], reference_run=reference_run,
            latency_ms=a["latency_ms"], notes=list(a["notes"]), metadata=a["metadata"],
            detections=(None if a["detections"] is None
                        else _unpack(arrays, a["detections"], count))))
    labels = document["labels"]
    truth = None
    if labels is not None and labels["detections"] is not None:
        truth = _unpack(arrays, labels["detections"], count)
    return RunRecord(
        reference_name=document["reference"]["name"],
        class_names=list(document["reference"]["class_names"]),
        image_names=list(images["names"]), image_shapes=[tuple(s) for s in images["shapes"]],
        image_source=images["source"], images=images["reload"],
        labels=None if labels is None else labels["name"], truth=truth,
        reference_runs=runs, artifacts=artifacts, machine=document["machine"],
        unreadable_images=[dict(u) for u in images["unreadable"]],
        created=document["created"], edgedet_version=document["edgedet_version"])


def load_run(path):
    """Reads a run record written by `save_run`.

    Args:
        path: str or path. The record's JSON file (`run.json`).

    Returns:
        A `RunRecord` (its `images` is the path or spec to reload the images
        from, or None when they were given in memory).

    Raises:
        ParityInputError: the file is missing, not a run record, of another
            record version, incomplete, or its `.npz` is missing or not its own.
    """
    path = pathlib.Path(path)
    try:
        return _read(path)
    except (ValueError, KeyError, TypeError, IndexError, OSError) as error:
        what = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise ParityInputError(f"Cannot read the parity run record {path}: {what}.") from None
