"""`compare`: matching, metrics and thresholds applied to a run record (no runtime, no image).

```python
from edgedet.parity import compare, load_run

result = compare(load_run("parity/run.json"), thresholds={"*": {"min_recall": 0.99}})
```

The gate rules are the record's: an artifact that failed to load or to
predict fails again, one skipped stays skipped, unreadable images fail the
run, and a run in which nothing was compared does not pass.
"""

import dataclasses

import numpy as np

from edgedet import thresholds as _thresholds
from edgedet.files import printable
from edgedet.matching import DEFAULT_IOU_THRESHOLD, match_detections
from edgedet.metrics import coco_map, summarize_matches
from edgedet.parity.inputs import ParityInputError
from edgedet.parity.result import NOISE_SCORE, ArtifactResult, ParityResult, ReferenceRun


def threshold_config(thresholds):
    """`(fixed Thresholds or None, {selector: {threshold: value}})` from `thresholds`.

    Raises:
        ParityInputError: `thresholds` is not None, a `Thresholds` or a dict.
    """
    if thresholds is None:
        return None, {}
    if isinstance(thresholds, _thresholds.Thresholds):
        return thresholds, {}
    if isinstance(thresholds, dict):
        config = {}
        for selector, value in thresholds.items():
            if isinstance(value, _thresholds.Thresholds):
                value = {k: v for k, v in value.to_dict().items()}
            config[selector] = value
        return None, _thresholds.normalize_config(config, "thresholds")
    raise ParityInputError(
        "Expected thresholds as None, a Thresholds, or a dict {selector: {threshold: value}}, "
        f"received {type(thresholds).__name__}."
    )


def labels_settings(inference):
    """`{"confidence_threshold", "max_detections"}` a label mAP was computed at.

    The reference and its artifacts output what their NMS keeps, so their
    mAP against labels is the one of a deployed model at that threshold (a
    validation-style figure needs `--conf 0.001 --max-det 300` at export).
    """
    nms = (inference or {}).get("nms") or {}
    return {"confidence_threshold": nms.get("confidence_threshold"),
            "max_detections": nms.get("max_detections")}


def check_iou_threshold(iou_threshold):
    """Raises `ParityInputError` unless `iou_threshold` is a float in (0, 1]."""
    if not isinstance(iou_threshold, (int, float)) or not 0.0 < iou_threshold <= 1.0:
        raise ParityInputError(
            f"Invalid iou_threshold: {iou_threshold!r}. Expected a float in (0, 1]."
        )


def _image_record(index, name, match, reference, artifact, limits, class_names):
    worst = lambda a, f: float(f(a)) if a.size else None  # noqa: E731
    record = {
        "index": index,
        "image": name,
        "reference": match.num_reference,
        "artifact": match.num_artifact,
        "matched": match.num_matched,
        "missing": len(match.missing),
        "extra": len(match.extra),
        "worst_iou": worst(match.ious, np.min),
        "worst_corner_shift_px": worst(match.corner_shifts, np.max),
        "worst_score_delta": worst(np.abs(match.score_deltas), np.max),
    }
    out_of_limit = any(
        (limit := _thresholds.pair_limit(limits, metric)) is not None
        and record[metric] is not None and record[metric] > limit
        for metric in _thresholds.PAIR_LIMITS)
    record["flagged"] = bool(match.disagrees or out_of_limit)
    if record["flagged"]:
        names = class_names if class_names else None
        ref_rows, art_rows = reference.to_dict(names), artifact.to_dict(names)
        record["missing_detections"] = [ref_rows[i] for i in match.missing]
        record["extra_detections"] = [art_rows[i] for i in match.extra]
    return record


def counted(match, artifact, reference, min_score=NOISE_SCORE):
    """`match` without the missing and extra detections scored below `min_score`.

    A validation-style export (`--conf 0.001 --max-det 300`) outputs
    hundreds of near-zero detections per image; any rounding moves some of
    them across the threshold or the `max_det` cut. They are the noise tail
    of the curve, not detections anyone acts on, so a pair that was not
    matched counts as missing or extra only from `min_score` up. Matched
    pairs always count. At the default `--conf 0.25` nothing changes.
    """
    missing = match.missing[reference.confidence[match.missing] >= min_score]
    extra = match.extra[artifact.confidence[match.extra] >= min_score]
    return dataclasses.replace(match, missing=missing, extra=extra,
                               num_reference=match.num_matched + len(missing),
                               num_artifact=match.num_matched + len(extra))


def _compare_artifact(artifact, run, record, limits, iou_threshold):
    """The `ArtifactResult` of one artifact that ran."""
    shapes, class_names = record.image_shapes, record.class_names
    detections = artifact.detections
    matches = [
        counted(match_detections(art, refd, iou_threshold, shape), art, refd)
        for art, refd, shape in zip(detections, run.detections, shapes)
    ]
    summary = summarize_matches(matches)
    summary["disagreeing_fraction"] = summary["disagreeing_images"] / len(record.image_names)
    # The reference's noise tail is no ground truth either (see `counted`).
    truth = [d.at_least(NOISE_SCORE) for d in run.detections]
    vs_ref = coco_map(truth, detections, shapes)
    summary["map50_95_vs_reference"] = vs_ref["map50_95"]
    summary["map50_vs_reference"] = vs_ref["map50"]
    if record.truth is not None:
        own = coco_map(record.truth, detections, shapes)
        summary["labels_map50_95"] = own["map50_95"]
        summary["labels_map50"] = own["map50"]
        summary["map50_95_drop"] = run.labels_map["map50_95"] - own["map50_95"]
        summary["map50_drop"] = run.labels_map["map50"] - own["map50"]
    checks = _thresholds.evaluate(summary, limits)
    failed = any(c["passed"] is False for c in checks)
    images_out = [
        _image_record(i, record.image_names[i], m, run.detections[i], detections[i], limits,
                      class_names)
        for i, m in enumerate(matches)
    ]
    return ArtifactResult(
        name=artifact.name, path=artifact.path, target=artifact.target,
        precision=artifact.precision, status="failed" if failed else "passed",
        thresholds=limits, summary=summary, checks=checks, images=images_out,
        latency_ms=artifact.latency_ms, reference_run=artifact.reference_run,
        notes=list(artifact.notes), detections=detections, matches=matches)


def compare(record, thresholds=None, iou_threshold=DEFAULT_IOU_THRESHOLD):
    """Compares every artifact of a run record with the reference.

    See `edgedet.matching` for how detections are matched,
    `edgedet.metrics` for the numbers and `edgedet.thresholds` for
    the defaults and override rules.

    Args:
        record: `edgedet.parity.record.RunRecord` (from `collect` or `load_run`).
        thresholds: None (per-precision defaults), a `Thresholds` (used for
            every artifact as is), or `{selector: {threshold: value}}`.
            Defaults to None.
        iou_threshold: float. Smallest IoU of a match. Defaults to 0.5.

    Returns:
        A `ParityResult`: true when every artifact was compared and passed
        (skipped ones aside, at least one was compared) and every image
        could be read.
    """
    check_iou_threshold(iou_threshold)
    fixed, config = threshold_config(thresholds)
    runs = []
    for recorded in record.reference_runs:
        run = ReferenceRun(inference=recorded.inference, target=recorded.target,
                           precision=recorded.precision, detections=recorded.detections,
                           latency_ms=recorded.latency_ms)
        if record.truth is not None:
            run.labels_map = {**coco_map(record.truth, run.detections, record.image_shapes),
                              **labels_settings(recorded.inference)}
        runs.append(run)
    results = []
    for artifact in record.artifacts:
        if artifact.reference_run is None:  # Could not be opened: failed or skipped.
            results.append(ArtifactResult(
                name=artifact.name, path=artifact.path, target=artifact.target,
                precision=artifact.precision, status=artifact.status, reason=artifact.reason,
                notes=list(artifact.notes)))
            continue
        limits = fixed or _thresholds.resolve(
            artifact.name, artifact.target, artifact.precision, config)
        if artifact.status != "ran":  # Failed to predict: fails whatever the thresholds.
            results.append(ArtifactResult(
                name=artifact.name, path=artifact.path, target=artifact.target,
                precision=artifact.precision, status="failed", thresholds=limits,
                reason=printable(artifact.reason or "failed"),
                reference_run=artifact.reference_run))
            continue
        results.append(_compare_artifact(artifact, runs[artifact.reference_run], record, limits,
                                         float(iou_threshold)))
    return ParityResult(
        reference_name=record.reference_name, class_names=list(record.class_names),
        image_names=list(record.image_names), image_shapes=list(record.image_shapes),
        image_source=record.image_source, labels=record.labels,
        iou_threshold=float(iou_threshold), reference_runs=runs, artifacts=results,
        machine=record.machine, images=record.images,
        unreadable_images=list(record.unreadable_images), created=record.created)
