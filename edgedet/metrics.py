"""Detection agreement metrics (parity, INT8 sensitivity) and COCO mAP via pycocotools (all).

`summarize_matches` turns the per-image `ImageMatch`es of one artifact into
the numbers the thresholds check:

- `recall`: matched / reference detections (1.0 when the reference found
  nothing), `precision`: matched / artifact detections (1.0 when the artifact
  found nothing).
- `mean_iou`, `worst_iou`: mean and minimum IoU of matched pairs.
- `worst_score_delta`: largest `|artifact score - reference score|` of a pair.
- `worst_corner_shift_px`: largest corner shift of a pair, in pixels.
- `score_delta_p95`, `corner_shift_px_p95`: the same at the 95th
  percentile (`robust_percentile`): what most pairs do, which one outlier
  cannot move. INT8 is judged on these (a quantized model moves a few
  scores that sit near a rounding step by much more than the rest; the
  worst value then grows with the number of images checked).
- `disagreeing_images`: images with at least one missing or extra detection.

The pair metrics are None when nothing was matched.

`coco_map` computes COCO mAP50-95 and mAP50 with pycocotools' `COCOeval`
(never a hand-written AP). It serves twice: with the reference's detections
as the ground truth ("mAP vs reference"), and with real labels.
"""

import contextlib
import io

import numpy as np

from edgedet.detections import Detections

PERCENTILE = 95


def robust_percentile(values, percentile=PERCENTILE):
    """The `percentile` of `values`, never the single largest of two or more.

    numpy's `"lower"` method: the largest observed value at or below the
    percentile's rank, so the result is always a value that occurred, and
    with two or more values one outlier alone never decides it (the rank
    `q * (n - 1)` is below `n - 1`). None for no value.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not values.size:
        return None
    return float(np.percentile(values, percentile, method="lower"))


def summarize_matches(matches):
    """Aggregates the `ImageMatch`es of one artifact over all images.

    Args:
        matches: sequence of `edgedet.matching.ImageMatch`.

    Returns:
        A dict with `num_images`, `reference_detections`,
        `artifact_detections`, `matched`, `missing`, `extra`, `recall`,
        `precision`, `mean_iou`, `worst_iou`, `worst_score_delta`,
        `worst_corner_shift_px`, `score_delta_p95`, `corner_shift_px_p95`,
        `disagreeing_images`.
    """
    num_ref = sum(m.num_reference for m in matches)
    num_art = sum(m.num_artifact for m in matches)
    num_matched = sum(m.num_matched for m in matches)
    ious = np.concatenate([m.ious for m in matches]) if matches else np.zeros(0)
    deltas = np.concatenate([m.score_deltas for m in matches]) if matches else np.zeros(0)
    shifts = np.concatenate([m.corner_shifts for m in matches]) if matches else np.zeros(0)
    has_pairs = ious.size > 0
    return {
        "num_images": len(matches),
        "reference_detections": int(num_ref),
        "artifact_detections": int(num_art),
        "matched": int(num_matched),
        "missing": int(num_ref - num_matched),
        "extra": int(num_art - num_matched),
        "recall": float(num_matched / num_ref) if num_ref else 1.0,
        "precision": float(num_matched / num_art) if num_art else 1.0,
        "mean_iou": float(ious.mean()) if has_pairs else None,
        "worst_iou": float(ious.min()) if has_pairs else None,
        "worst_score_delta": float(np.abs(deltas).max()) if has_pairs else None,
        "worst_corner_shift_px": float(shifts.max()) if has_pairs else None,
        "score_delta_p95": robust_percentile(np.abs(deltas)),
        "corner_shift_px_p95": robust_percentile(shifts),
        "disagreeing_images": int(sum(m.disagrees for m in matches)),
    }


def _xywh(detections, image_shape):
    boxes = detections.to_format("xyxy", image_shape=image_shape).boxes.astype(np.float64)
    return np.stack(
        [boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1
    )


def coco_map(ground_truth, predictions, image_shapes=None):
    """COCO mAP50-95 and mAP50 of `predictions` against `ground_truth`.

    Computed by `pycocotools.cocoeval.COCOeval` ("bbox"), with `maxDets`
    raised to the largest number of predictions in one image so no
    prediction is dropped. Categories are the class ids present in either
    side.

    Degenerate cases, where COCO has no answer: no ground-truth box at all
    gives 1.0 when there is also no prediction, else 0.0; ground truth but
    no prediction gives 0.0.

    Args:
        ground_truth: sequence of `Detections`, one per image (confidence is
            ignored).
        predictions: sequence of `Detections`, one per image, same order.
        image_shapes: sequence of `(height, width)` per image, needed for
            relative box formats. Defaults to None.

    Returns:
        `{"map50_95": float, "map50": float}`.
    """
    if len(ground_truth) != len(predictions):
        raise ValueError(
            f"Expected one prediction per image: {len(ground_truth)} ground-truth images, "
            f"{len(predictions)} prediction lists."
        )
    shapes = list(image_shapes) if image_shapes is not None else [None] * len(ground_truth)
    for what, items in (("ground_truth", ground_truth), ("predictions", predictions)):
        for item in items:
            if not isinstance(item, Detections):
                raise ValueError(
                    f"Expected `{what}` to hold Detections, received {type(item).__name__}."
                )
    num_gt = sum(len(d) for d in ground_truth)
    num_pred = sum(len(d) for d in predictions)
    if num_gt == 0:
        value = 1.0 if num_pred == 0 else 0.0
        return {"map50_95": value, "map50": value}
    if num_pred == 0:
        return {"map50_95": 0.0, "map50": 0.0}

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    class_ids = set()
    for index, (gt, pred, shape) in enumerate(zip(ground_truth, predictions, shapes)):
        image_id = index + 1
        images.append({"id": image_id})
        for box, class_id in zip(_xywh(gt, shape), gt.classes):
            class_ids.add(int(class_id))
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(class_id) + 1,
                "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
            })
        for box, score, class_id in zip(_xywh(pred, shape), pred.confidence, pred.classes):
            class_ids.add(int(class_id))
            results.append({
                "image_id": image_id,
                "category_id": int(class_id) + 1,
                "bbox": [float(v) for v in box],
                "score": float(score),
            })
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": str(c)} for c in sorted(class_ids)],
    }
    # pycocotools prints progress on stdout; keep the caller's output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        most = max(len(p) for p in predictions)
        evaluator.params.maxDets = [1, 10, max(100, most)]
        evaluator.evaluate()
        evaluator.accumulate()
    return {"map50_95": _mean_ap(evaluator), "map50": _mean_ap(evaluator, 0.5)}


def _mean_ap(evaluator, iou=None):
    """COCOeval.summarize's AP average, read at our largest `maxDets`.

    `summarize()` itself reads its first number at `maxDets=100` whatever
    `params.maxDets` says (pycocotools 2.0.x), so it is averaged here the
    same way from `evaluator.eval["precision"]` `[T, R, K, A, M]`: area
    range "all", the last `maxDets`, cells of -1 (no ground truth) left out.
    """
    precision = evaluator.eval["precision"]
    area = evaluator.params.areaRngLbl.index("all")
    values = precision[:, :, :, area, -1]
    if iou is not None:
        values = values[np.isclose(evaluator.params.iouThrs, iou)]
    values = values[values > -1]
    return float(values.mean()) if values.size else 0.0
