"""Metric values on hand-made cases (COCO mAP through pycocotools)."""

import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.matching import match_detections
from edgedet.metrics import coco_map, summarize_matches


def det(rows, fmt="xyxy"):
    if not rows:
        return Detections.empty(fmt)
    rows = np.asarray(rows, np.float32)
    return Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32), fmt)


def test_summary_counts_and_pair_metrics():
    ref1 = det([(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.8, 1)])
    art1 = det([(0, 0, 10, 10, 0.88, 0), (20, 22, 30, 30, 0.7, 1), (50, 50, 60, 60, 0.4, 2)])
    ref2 = det([(0, 0, 4, 4, 0.6, 0)])
    art2 = det([])
    ref3, art3 = det([]), det([])
    matches = [match_detections(a, r) for a, r in ((art1, ref1), (art2, ref2), (art3, ref3))]
    s = summarize_matches(matches)
    assert s["num_images"] == 3
    assert (s["reference_detections"], s["artifact_detections"], s["matched"]) == (3, 3, 2)
    assert (s["missing"], s["extra"]) == (1, 1)
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(2 / 3)
    assert s["mean_iou"] == pytest.approx((1.0 + 0.8) / 2)
    assert s["worst_iou"] == pytest.approx(0.8)
    assert s["worst_score_delta"] == pytest.approx(0.1, abs=1e-6)
    assert s["worst_corner_shift_px"] == pytest.approx(2.0)
    assert s["disagreeing_images"] == 2  # Image 1 (extra) and image 2 (missing).


def test_summary_with_nothing_matched_or_detected():
    s = summarize_matches([match_detections(det([]), det([]))])
    assert s["recall"] == 1.0 and s["precision"] == 1.0
    assert s["mean_iou"] is None and s["worst_corner_shift_px"] is None
    s = summarize_matches([match_detections(det([]), det([(0, 0, 5, 5, 0.9, 0)]))])
    assert s["recall"] == 0.0 and s["precision"] == 1.0 and s["disagreeing_images"] == 1


def test_coco_map_identical_is_one():
    gt = [det([(0, 0, 100, 100, 1, 0), (150, 150, 200, 220, 1, 1)]), det([(5, 5, 50, 60, 1, 0)])]
    assert coco_map(gt, gt) == {"map50_95": pytest.approx(1.0), "map50": pytest.approx(1.0)}


def test_coco_map_half_recall():
    # One of two ground-truth boxes found, exactly: precision 1 up to recall
    # 0.5, then nothing. COCO's 101-point interpolation gives 51/101.
    gt = [det([(0, 0, 100, 100, 1, 0), (200, 200, 300, 300, 1, 0)])]
    pred = [det([(0, 0, 100, 100, 0.9, 0)])]
    result = coco_map(gt, pred)
    assert result["map50_95"] == pytest.approx(51 / 101)
    assert result["map50"] == pytest.approx(51 / 101)


def test_coco_map_iou_sweep():
    # IoU 0.62 counts at thresholds 0.50, 0.55 and 0.60 only: 3 of 10.
    gt = [det([(0, 0, 100, 100, 1, 0)])]
    pred = [det([(0, 0, 100, 62, 0.9, 0)])]
    result = coco_map(gt, pred)
    assert result["map50_95"] == pytest.approx(0.3)
    assert result["map50"] == pytest.approx(1.0)


def test_coco_map_wrong_class_and_relative_formats():
    gt = [det([(0, 0, 100, 100, 1, 0)])]
    assert coco_map(gt, [det([(0, 0, 100, 100, 0.9, 1)])])["map50_95"] == 0.0
    rel = [det([(0.0, 0.0, 0.5, 0.5, 0.9, 0)], fmt="rel_xyxy")]
    assert coco_map(gt, rel, image_shapes=[(200, 200)])["map50_95"] == pytest.approx(1.0)


def test_coco_map_degenerate_cases():
    empty = [det([])]
    some = [det([(0, 0, 10, 10, 0.9, 0)])]
    assert coco_map(empty, empty) == {"map50_95": 1.0, "map50": 1.0}
    assert coco_map(empty, some) == {"map50_95": 0.0, "map50": 0.0}
    assert coco_map(some, empty) == {"map50_95": 0.0, "map50": 0.0}
    with pytest.raises(ValueError, match="one prediction per image"):
        coco_map(some, some + some)


def test_coco_map_keeps_more_than_100_detections_per_image():
    # 150 exact ground-truth boxes: with COCO's default maxDets=100 recall
    # would stop at 100/150.
    rows = [(x * 20, y * 20, x * 20 + 10, y * 20 + 10, 1, 0) for x in range(15) for y in range(10)]
    gt = [det(rows)]
    pred = [det([(*r[:4], 0.5 + i / 1000, 0) for i, r in enumerate(rows)])]
    assert coco_map(gt, pred)["map50_95"] == pytest.approx(1.0)
