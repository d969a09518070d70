"""`collect` runs the reference and every artifact on the same images; `run_parity` compares too.

Example (in a pytest suite):

```python
from edgedet.parity import run_parity

def test_exports_agree(model, tmp_path):
    result = run_parity(model, ["out/model.onnx", "out/model.tflite"], "tests/images")
    assert result, result.summary_text()
```

The reference is either a Keras model, run through the same end-to-end graph
in float32 (`edgedet.runtimes.keras_model.KerasRuntime`) with EACH
artifact's own inference settings (so letterbox, NMS thresholds and box
format always agree), or a runtime, whose settings then must equal every
artifact's. Class names must always agree. Either mismatch stops the run
(`ParityInputError`) naming the artifact. An artifact that cannot be loaded
(truncated, unreadable, no metadata) fails the run with its reason; one
whose runtime is not installed fails too, unless `skip_missing_runtimes`,
which skips it with the reason. An image that cannot be read is reported
(`ParityResult.unreadable_images`) and fails the run; the other images are
still compared.
"""

import contextlib
import dataclasses
import os
import pathlib
import platform
import sys
import time

import numpy as np

from edgedet.files import printable
from edgedet.matching import DEFAULT_IOU_THRESHOLD
from edgedet.parity.compare import check_iou_threshold, compare, threshold_config
from edgedet.parity.inputs import ImageSource, ParityInputError, load_labels
from edgedet.parity.record import RecordedArtifact, RecordedRun, RunRecord, image_spec


def _is_runtime(obj):
    return hasattr(obj, "predict") and hasattr(obj, "metadata") and not _is_keras_model(obj)


def _is_keras_model(obj):
    return hasattr(obj, "default_inference_config") or type(obj).__module__.startswith("keras")


def _enter(runtime, stack):
    """Enters a runtime unless it is already loaded (`Runtime.is_loaded`)."""
    if getattr(runtime, "is_loaded", False) or not hasattr(runtime, "__enter__"):
        return runtime
    entered = stack.enter_context(runtime)
    return runtime if entered is None else entered


def _runtime_name(runtime):
    name = getattr(runtime, "name", None)
    if isinstance(name, str) and name:
        return name
    if getattr(runtime, "path", None) is not None:
        return pathlib.Path(runtime.path).name
    return type(runtime).__name__


def _unique(name, taken):
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    taken.add(candidate)
    return candidate


def _percentiles(times):
    if not times:
        return None
    ms = np.asarray(times, np.float64) * 1000.0
    return {
        "median": float(np.median(ms)),
        "p90": float(np.percentile(ms, 90)),
        "images": len(times),
    }


def _predict_all(runtime, source, progress, label):
    """Runs `runtime` on every image (one per call); returns detections and timings."""
    detections, times = [], []
    runtime.predict([source.load(0)])  # Warm-up, not timed.
    for index in range(len(source)):
        if progress:
            progress(label, index, len(source))
        image = source.load(index)
        start = time.perf_counter()
        (result,) = runtime.predict([image])
        times.append(time.perf_counter() - start)
        detections.append(result)
    return detections, times


def machine_info():
    """What the check ran on: latency, and INT8 results, depend on the CPU's instruction sets."""
    from edgedet.benchmark.machine import cpu_model
    from edgedet.cpu import isa_summary

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        **isa_summary(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


@dataclasses.dataclass
class _Artifact:
    name: str
    path: str
    runtime: object = None
    target: str = "unknown"
    precision: str = "fp32"
    reason: str = None

    status: str = None  # "failed" or "skipped" when it could not be opened.


def _open_failure(error):
    """`(missing_runtime, reason)` for an artifact that could not be opened."""
    missing_runtime = isinstance(error, ImportError)
    kind = "runtime not installed" if missing_runtime else "cannot load"
    return missing_runtime, printable(f"{kind}: {type(error).__name__}: {error}")


def _open_artifacts(items, stack, skip_missing_runtimes=False):
    """Opens every artifact; one that cannot be opened gets a status and its reason."""
    taken, artifacts = set(), []
    for item in items:
        missing_runtime = False
        if isinstance(item, (str, os.PathLike)):
            path = pathlib.Path(item)
            if not path.exists():
                raise ParityInputError(f"Artifact not found: {printable(path)}")
            artifact = _Artifact(name=_unique(printable(path.name), taken), path=printable(path))
            from edgedet.runtimes.registry import check_installed, open_runtime, runtime_kind

            try:
                runtime_kind(path)
            except ValueError as error:
                raise ParityInputError(str(error)) from None
            try:
                runtime = open_runtime(str(path))  # A corrupt artifact fails here...
                check_installed(path)  # ...one whose runtime is missing (its kind says) here.
                artifact.runtime = _enter(runtime, stack)
            except Exception as error:  # Reported in every report; the others still run.
                missing_runtime, artifact.reason = _open_failure(error)
        else:
            name = printable(_runtime_name(item))
            artifact = _Artifact(name=_unique(name, taken), path=name)
            try:
                artifact.runtime = _enter(item, stack)
            except Exception as error:  # Reported in every report; the others still run.
                missing_runtime, artifact.reason = _open_failure(error)
        if artifact.runtime is not None:
            try:
                metadata = artifact.runtime.metadata
                artifact.target = metadata.target
                # What it ran at: OpenVINO runs an FP32 artifact in bf16 on CPUs with it.
                artifact.precision = (getattr(artifact.runtime, "inference_precision", None)
                                      or metadata.precision)
            except Exception as error:
                artifact.runtime = None
                artifact.reason = printable(
                    f"no readable metadata: {type(error).__name__}: {error}")
        if artifact.runtime is None:
            if missing_runtime and skip_missing_runtimes:
                artifact.status = "skipped"
            else:
                artifact.status = "failed"
                if missing_runtime:
                    artifact.reason += (" (install the runtime, or pass --skip-missing-runtimes "
                                        "to skip such artifacts)")
        artifacts.append(artifact)
    return artifacts


class _Reference:
    """The reference: one fixed runtime, or a Keras model run per artifact config."""

    def __init__(self, reference, stack):
        self.stack = stack
        self.runtimes = {}
        if _is_runtime(reference):
            self.model = None
            self.fixed = _enter(reference, stack)
            self.name = _runtime_name(reference)
        elif _is_keras_model(reference):
            self.model, self.fixed = reference, None
            self.name = f"Keras {getattr(reference, 'name', 'model')} (float32)"
        else:
            raise ParityInputError(
                "Expected the reference to be a Keras YOLOv8 model or an edgedet runtime, "
                f"received {type(reference).__name__}."
            )

    def runtime_for(self, inference):
        if self.fixed is not None:
            return self.fixed
        if inference not in self.runtimes:
            from edgedet.runtimes.keras_model import KerasRuntime

            self.runtimes[inference] = _enter(KerasRuntime(self.model, config=inference),
                                              self.stack)
        return self.runtimes[inference]

    def problems(self, metadata):
        """Why an artifact cannot be compared with this reference ([] if it can)."""
        ref = self.runtime_for(metadata.inference).metadata
        issues = []
        if tuple(ref.class_names) != tuple(metadata.class_names):
            issues.append(
                f"class names differ: reference {list(ref.class_names)[:10]}, "
                f"artifact {list(metadata.class_names)[:10]}"
            )
        if self.fixed is not None:
            mine, theirs = ref.inference, metadata.inference
            if mine.bounding_box_format != theirs.bounding_box_format:
                issues.append(
                    f"box formats differ: reference {mine.bounding_box_format!r}, "
                    f"artifact {theirs.bounding_box_format!r}"
                )
            for part in ("letterbox", "nms"):
                if getattr(mine, part) != getattr(theirs, part):
                    issues.append(
                        f"{part} settings differ: reference {getattr(mine, part).to_dict()}, "
                        f"artifact {getattr(theirs, part).to_dict()}"
                    )
        return issues


def _notes(artifact, reference):
    """Facts worth a reader's attention that do not fail the artifact by themselves."""
    mine, theirs = reference.source_sha256, artifact.source_sha256
    if mine and theirs and mine != theirs:
        return [
            f"exported from other weights than the reference (weights sha256 {theirs[:12]}, "
            f"reference {mine[:12]}): differences may come from the weights, not the export"
        ]
    return []


def _metadata_dict(metadata):
    try:
        return metadata.to_dict()
    except Exception:  # A runtime object without a serializable metadata: record nothing.
        return None


def collect(reference, artifacts, images, labels=None, labels_split="val", progress=None,
            skip_missing_runtimes=False):
    """Runs the reference and every artifact on the images; applies no threshold.

    Args:
        reference: a Keras YOLOv8 model (run with each artifact's inference
            settings) or an edgedet runtime (e.g. `KerasRuntime`).
        artifacts: list of artifact paths (opened with
            `edgedet.runtimes.registry.open_runtime`) and/or runtime objects.
        images: a folder, image files, a `"synthetic:shapes?..."` spec, a
            dataset, or a list of uint8 `[H, W, 3]` arrays.
        labels: real labels (COCO JSON / YOLO `data.yaml` / VOC folder, or a
            dataset), or None. Defaults to None.
        labels_split: str. Split read from YOLO / VOC labels or a COCO
            folder. Defaults to `"val"`.
        progress: callable `(label, index, total)` or None. Defaults to None.
        skip_missing_runtimes: bool. Skip (rather than fail) an artifact
            whose runtime is not installed here. Defaults to False.

    Returns:
        A `RunRecord` (`edgedet.parity.record`): save it with `save_run`,
        compare it with `edgedet.parity.compare.compare`.

    Raises:
        ParityInputError: see `run_parity`.
    """
    if isinstance(artifacts, (str, os.PathLike)) or not hasattr(artifacts, "__iter__"):
        artifacts = [artifacts]
    artifacts = list(artifacts)
    if not artifacts:
        raise ParityInputError("No artifacts to compare.")
    source = ImageSource(images)
    unreadable = source.drop_unreadable()
    with contextlib.ExitStack() as stack:
        ref = _Reference(reference, stack)
        opened = _open_artifacts(artifacts, stack, skip_missing_runtimes)
        problems = []
        for artifact in opened:
            if artifact.runtime is not None:
                for issue in ref.problems(artifact.runtime.metadata):
                    problems.append(f"{artifact.name}: {issue}")
        if problems:
            raise ParityInputError(
                "Cannot compare these artifacts with the reference:\n  " + "\n  ".join(problems)
            )
        live = [a for a in opened if a.runtime is not None]
        class_names = None
        if live:
            class_names = tuple(live[0].runtime.metadata.class_names)
        elif ref.fixed is not None:
            class_names = tuple(ref.fixed.metadata.class_names)
        truth = None
        labels_name = None
        if labels is not None and class_names is not None:
            truth, labels_name = load_labels(labels, source, class_names, labels_split)

        shapes = []
        runs, run_of = [], {}
        recorded = []
        for artifact in opened:
            if artifact.runtime is None:
                recorded.append(RecordedArtifact(
                    name=artifact.name, path=artifact.path, target=artifact.target,
                    precision=artifact.precision, status=artifact.status, reason=artifact.reason))
                continue
            metadata = artifact.runtime.metadata
            key = metadata.inference if ref.fixed is None else "fixed"
            if key not in run_of:
                ref_runtime = ref.runtime_for(metadata.inference)
                detections, times = _predict_all(ref_runtime, source, progress, "reference")
                if not shapes:
                    shapes = [tuple(int(v) for v in source.load(i).shape[:2])
                              for i in range(len(source))]
                ref_meta = ref_runtime.metadata
                run_of[key] = len(runs)
                runs.append(RecordedRun(
                    inference=ref_meta.inference.to_dict(), target=ref_meta.target,
                    precision=ref_meta.precision, detections=detections,
                    latency_ms=_percentiles(times)))
            entry = RecordedArtifact(
                name=artifact.name, path=artifact.path, target=artifact.target,
                precision=artifact.precision, status="ran", reference_run=run_of[key],
                metadata=_metadata_dict(metadata))
            try:
                detections, times = _predict_all(artifact.runtime, source, progress,
                                                 artifact.name)
            except Exception as error:  # A broken artifact fails; the others still run.
                entry.status = "failed"
                entry.reason = printable(f"predict failed: {type(error).__name__}: {error}")
                recorded.append(entry)
                continue
            entry.detections, entry.latency_ms = detections, _percentiles(times)
            entry.notes = _notes(metadata, ref.runtime_for(metadata.inference).metadata)
            recorded.append(entry)
    return RunRecord(
        reference_name=ref.name, class_names=list(class_names or ()),
        image_names=list(source.names), image_shapes=shapes, image_source=source.describe(),
        images=image_spec(images), labels=labels_name, truth=truth, reference_runs=runs,
        artifacts=recorded, machine=machine_info(), unreadable_images=unreadable)


def run_parity(reference, artifacts, images, labels=None, thresholds=None,
               iou_threshold=DEFAULT_IOU_THRESHOLD, labels_split="val", progress=None,
               skip_missing_runtimes=False):
    """Compares every artifact's detections with the reference's: `compare(collect(...))`.

    See `edgedet.matching` for how detections are matched,
    `edgedet.metrics` for the numbers and
    `edgedet.thresholds` for the defaults and override rules.

    Args:
        reference: a Keras YOLOv8 model (run with each artifact's inference
            settings) or an edgedet runtime (e.g. `KerasRuntime`).
        artifacts: list of artifact paths (opened with
            `edgedet.runtimes.registry.open_runtime`) and/or runtime objects.
        images: a folder, image files, a `"synthetic:shapes?..."` spec, a
            dataset, or a list of uint8 `[H, W, 3]` arrays.
        labels: real labels (COCO JSON / YOLO `data.yaml` / VOC folder, or a
            dataset) for COCO mAP of the reference and of each artifact, or
            None. Defaults to None.
        thresholds: None (per-precision defaults), a `Thresholds` (used for
            every artifact as is), or `{selector: {threshold: value}}` (see
            `edgedet.thresholds`). Defaults to None.
        iou_threshold: float. Smallest IoU of a match. Defaults to 0.5.
        labels_split: str. Split read from YOLO / VOC labels or a COCO
            folder. Defaults to `"val"`.
        progress: callable `(label, index, total)` or None. Defaults to None.
        skip_missing_runtimes: bool. Skip (rather than fail) an artifact
            whose runtime is not installed here. Defaults to False.

    Returns:
        A `ParityResult`: true when every artifact was compared and passed
        (skipped ones aside, at least one was compared) and every image
        could be read.

    Raises:
        ParityInputError: empty images, missing artifact paths, unreadable
            labels, or an artifact whose class names (or, with a runtime
            reference, box format / letterbox / NMS settings) differ.
    """
    check_iou_threshold(iou_threshold)
    threshold_config(thresholds)  # Bad thresholds are refused before anything runs.
    record = collect(reference, artifacts, images, labels=labels, labels_split=labels_split,
                     progress=progress, skip_missing_runtimes=skip_missing_runtimes)
    return compare(record, thresholds=thresholds, iou_threshold=iou_threshold)
