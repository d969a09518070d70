"""Result objects of a parity run: `bool(result)` is pass/fail, `to_dict()` is the JSON.

Plain data: no runtime, no image loader, no rendering (the `report_*`
modules render a result; `edgedet.parity.compare` builds one).
"""

import dataclasses
import datetime

import edgedet

SCHEMA_VERSION = 2
# Unmatched detections scored below this are noise, not disagreements (`compare.counted`).
NOISE_SCORE = 0.1
# Validation-style settings (Ultralytics' `val`, COCO): the whole precision-recall curve.
VALIDATION_CONF, VALIDATION_MAX_DET = 0.001, 300
LATENCY_NOTE = (
    "Wall-clock time of one predict() call per image (batch of 1, after one warm-up call), "
    "measured on the machine that ran the parity check; not a benchmark of the target device."
)


def pair_text(summary, metric, digits=3):
    """`"p95 / worst"` of a pair metric (`"score_delta"` or `"corner_shift_px"`), or `"n/a"`."""
    p95, worst = summary.get(f"{metric}_p95"), summary.get(f"worst_{metric}")
    if p95 is None or worst is None:
        return "n/a"
    return f"{p95:.{digits}f} / {worst:.{digits}f}"


@dataclasses.dataclass
class ReferenceRun:
    """The reference's detections under one inference config.

    Attributes:
        inference: dict. The inference settings (letterbox, NMS, box format).
        target: str. The reference runtime's target (`"keras"`).
        precision: str. Its precision (`"fp32"`).
        detections: list of `Detections`, one per image.
        latency_ms: dict `{"median", "p90", "images"}`.
        labels_map: dict `{"map50_95", "map50", "confidence_threshold",
            "max_detections"}` against real labels (at the NMS settings the
            detections came out with), or None.
    """

    inference: dict
    detections: list
    latency_ms: dict = None
    labels_map: dict = None
    target: str = "keras"
    precision: str = "fp32"

    def to_dict(self):
        return {
            "target": self.target,
            "precision": self.precision,
            "inference": self.inference,
            "latency_ms": self.latency_ms,
            "labels_map": self.labels_map,
        }


@dataclasses.dataclass
class ArtifactResult:
    """The comparison of one artifact with the reference.

    Attributes:
        name: str. Unique name (file or folder name).
        path: str. Where it was loaded from.
        target: str. Exporter target from its metadata (`"unknown"` when
            skipped before the metadata could be read).
        precision: str. `"fp32"`, `"fp16"` or `"int8"`.
        status: str. `"passed"`, `"failed"` or `"skipped"`.
        reason: str or None. Why it was skipped.
        thresholds: `Thresholds` applied, or None when skipped.
        summary: dict of metrics (see `edgedet.metrics`).
        checks: list of threshold checks (see `thresholds.evaluate`).
        images: list of per-image dicts.
        latency_ms: dict `{"median", "p90", "images"}` or None.
        reference_run: int. Index into `ParityResult.reference_runs`.
        detections: list of `Detections` (not serialized).
        matches: list of `ImageMatch` (not serialized).
        notes: list of str. Warnings that do not fail the artifact (e.g. it
            was exported from other weights than the reference's).
    """

    name: str
    path: str
    target: str
    precision: str
    status: str
    reason: str = None
    thresholds: object = None
    summary: dict = None
    checks: list = dataclasses.field(default_factory=list)
    images: list = dataclasses.field(default_factory=list)
    latency_ms: dict = None
    reference_run: int = None
    detections: list = None
    matches: list = None
    notes: list = dataclasses.field(default_factory=list)

    def __bool__(self):
        return self.status != "failed"

    @property
    def failed_checks(self):
        return [c for c in self.checks if c["passed"] is False]

    @property
    def flagged_images(self):
        """Per-image records with a disagreement or an out-of-limit pair, worst first."""
        flagged = [r for r in self.images if r["flagged"]]
        return sorted(
            flagged,
            key=lambda r: (-(r["missing"] + r["extra"]), -(r["worst_corner_shift_px"] or 0.0),
                           -(r["worst_score_delta"] or 0.0), r["index"]),
        )

    def to_dict(self):
        return {
            "name": self.name,
            "path": self.path,
            "target": self.target,
            "precision": self.precision,
            "status": self.status,
            "reason": self.reason,
            "notes": list(self.notes),
            "reference_run": self.reference_run,
            "thresholds": self.thresholds.to_dict() if self.thresholds is not None else None,
            "summary": self.summary,
            "checks": self.checks,
            "latency_ms": self.latency_ms,
            "failing_images": [r["image"] for r in self.flagged_images],
            "images": self.images,
        }


@dataclasses.dataclass
class ParityResult:
    """Everything a parity run found. True when it passed.

    A run passes when no artifact failed (a threshold, or to load or run),
    at least one artifact was compared (skipped artifacts neither pass nor
    fail, but a run in which all were skipped verified nothing and does not
    pass) and every image could be read (`unreadable_images`, each
    `{"image", "reason"}`, fail the run; the other images are compared).
    `images` is where the images can be reloaded from to draw them (see
    `edgedet.parity.record.RunRecord.images`), or None.
    """

    reference_name: str
    class_names: list
    image_names: list
    image_shapes: list
    image_source: str
    labels: str
    iou_threshold: float
    reference_runs: list
    artifacts: list
    machine: dict
    images: object = None
    unreadable_images: list = dataclasses.field(default_factory=list)
    created: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"))

    @property
    def compared(self):
        return [a for a in self.artifacts if a.status != "skipped"]

    @property
    def failed(self):
        return [a for a in self.artifacts if a.status == "failed"]

    @property
    def skipped(self):
        return [a for a in self.artifacts if a.status == "skipped"]

    @property
    def passed(self):
        return bool(self.compared) and not self.failed and not self.unreadable_images

    def __bool__(self):
        return self.passed

    def __getitem__(self, name):
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        raise KeyError(f"No artifact named {name!r}; have {[a.name for a in self.artifacts]}.")

    def labels_note(self):
        """One sentence: the confidence threshold of the label mAP, and how to get val's; or None.

        None without labels.
        """
        if self.labels is None:
            return None
        settings = sorted({(m.get("confidence_threshold"), m.get("max_detections"))
                           for m in (run.labels_map or {} for run in self.reference_runs)
                           if m}, key=str)
        if not settings:
            return None
        at = " and ".join(
            f"confidence >= {conf:g}, at most {max_det} detections per image"
            if conf is not None else "the artifacts' own NMS settings"
            for conf, max_det in settings)
        text = (f"mAP against the labels is computed on what the artifacts output, at {at} "
                "(the export's NMS settings): the accuracy of the deployed model.")
        if all(conf is not None and conf <= VALIDATION_CONF and (max_det or 0) >= VALIDATION_MAX_DET
               for conf, max_det in settings):
            return text + " These are validation-style settings (the whole precision-recall curve)."
        return text + (
            " A validation-style figure, comparable to `yolo val` or a training log, needs "
            f"the whole precision-recall curve: export with `--conf {VALIDATION_CONF:g} "
            f"--max-det {VALIDATION_MAX_DET}` and run parity on those artifacts.")

    def machine_text(self):
        """One line: the CPU the check ran on and its INT8 instruction sets."""
        machine = self.machine or {}
        flags = ", ".join(machine.get("int8_flags") or []) or "unknown"
        return (f"Ran on {machine.get('cpu', 'an unknown CPU')} (INT8 class "
                f"{machine.get('cpu_class', 'unknown')}; flags: {flags}).")

    def summary_text(self):
        """A few plain lines: the verdict, then each artifact's status and why."""
        lines = [f"parity {'passed' if self.passed else 'failed'}: "
                 f"{len(self.compared) - len(self.failed)} passed, {len(self.failed)} failed, "
                 f"{len(self.skipped)} skipped"]
        for a in self.artifacts:
            line = f"{a.name} ({a.target}, {a.precision}): {a.status}"
            if a.reason:
                line += f": {a.reason}"
            elif a.failed_checks:
                line += ": " + ", ".join(
                    f"{c['metric']} {c['value']} (limit {c['op']} {c['limit']})"
                    for c in a.failed_checks)
            lines.append(line)
        lines += [f"unreadable image {u['image']}: {u['reason']}" for u in self.unreadable_images]
        return "\n".join(lines)

    def to_dict(self):
        """The `parity.json` document (see `parity.schema.json`)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "edgedet_version": edgedet.__version__,
            "created": self.created,
            "passed": self.passed,
            "reference": {
                "name": self.reference_name,
                "class_names": list(self.class_names),
                "runs": [run.to_dict() for run in self.reference_runs],
            },
            "matching": {"iou_threshold": self.iou_threshold, "rule": (
                "greedy by artifact score (ties by index), same class, highest IoU "
                f">= {self.iou_threshold:g}, one-to-one; unmatched detections scored below "
                f"{NOISE_SCORE:g} are not counted as missing or extra, nor as ground truth "
                "of the mAP vs reference"), "noise_score": NOISE_SCORE},
            "images": {
                "source": self.image_source,
                "count": len(self.image_names),
                "names": list(self.image_names),
                "shapes": [list(s) for s in self.image_shapes],
                "unreadable": [dict(u) for u in self.unreadable_images],
            },
            "labels": self.labels,
            "labels_note": self.labels_note(),
            "latency": {"note": LATENCY_NOTE, "machine": self.machine},
            "counts": {
                "artifacts": len(self.artifacts),
                "passed": sum(a.status == "passed" for a in self.artifacts),
                "failed": len(self.failed),
                "skipped": len(self.skipped),
            },
            "artifacts": [a.to_dict() for a in self.artifacts],
        }
