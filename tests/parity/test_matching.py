"""Matching on hand-made detection lists with known answers."""

import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.matching import corner_shift, match_detections, matched_share


def det(rows, fmt="xyxy"):
    """rows: (x1, y1, x2, y2, score, class)."""
    if not rows:
        return Detections.empty(fmt)
    rows = np.asarray(rows, np.float32)
    return Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32), fmt)


def pairs(match):
    return sorted(map(tuple, match.pairs.tolist()))


def test_identical_lists_match_one_to_one():
    ref = det([(0, 0, 10, 10, 0.9, 0), (20, 20, 40, 40, 0.8, 1)])
    match = match_detections(ref, ref)
    assert pairs(match) == [(0, 0), (1, 1)]
    assert match.missing.tolist() == [] and match.extra.tolist() == []
    np.testing.assert_allclose(match.ious, 1.0)
    np.testing.assert_allclose(match.corner_shifts, 0.0)
    assert not match.disagrees


def test_empty_on_either_side():
    some = det([(0, 0, 10, 10, 0.9, 0), (5, 5, 9, 9, 0.3, 2)])
    none = det([])
    m = match_detections(none, some)
    assert m.missing.tolist() == [0, 1] and m.extra.tolist() == [] and m.num_matched == 0
    m = match_detections(some, none)
    assert m.missing.tolist() == [] and m.extra.tolist() == [0, 1]
    m = match_detections(none, none)
    assert m.num_matched == 0 and not m.disagrees and m.pairs.shape == (0, 2)


def test_class_mismatch_at_high_iou_is_a_miss_and_an_extra():
    ref = det([(0, 0, 10, 10, 0.9, 0)])
    art = det([(0, 0, 10, 10, 0.9, 1)])  # Same box (IoU 1), other class.
    m = match_detections(art, ref)
    assert m.num_matched == 0
    assert m.missing.tolist() == [0] and m.extra.tolist() == [0]
    assert m.disagrees


def test_one_to_one_higher_score_takes_the_best_partner():
    # One reference box, two artifact boxes over it: only one can match.
    ref = det([(0, 0, 10, 10, 0.9, 0)])
    art = det([(0, 0, 10, 9, 0.5, 0), (0, 0, 10, 10, 0.8, 0)])
    m = match_detections(art, ref)
    assert pairs(m) == [(1, 0)]  # The higher score is visited first.
    assert m.extra.tolist() == [0]


def test_greedy_by_score_not_global_optimum():
    # A = [0,0,10,10], B = [0,0,10,18]. P (score 0.9) overlaps A by 100/110
    # and B by 110/180; Q (0.8) overlaps A by 0.6 and B by 60/180 only. An
    # optimal assignment would give P->B, Q->A; the greedy rule gives P its
    # best partner A, so Q is extra and B is missing.
    ref = det([(0, 0, 10, 10, 0.9, 0), (0, 0, 10, 18, 0.9, 0)])
    art = det([(0, 0, 10, 11, 0.9, 0), (0, 0, 10, 6, 0.8, 0)])
    m = match_detections(art, ref)
    assert pairs(m) == [(0, 0)]
    assert m.extra.tolist() == [1] and m.missing.tolist() == [1]
    np.testing.assert_allclose(m.ious, [100 / 110], rtol=1e-6)
    # Swap the scores: Q is visited first and takes A; P then takes B.
    art = det([(0, 0, 10, 11, 0.8, 0), (0, 0, 10, 6, 0.9, 0)])
    m = match_detections(art, ref)
    assert pairs(m) == [(0, 1), (1, 0)]
    np.testing.assert_allclose(sorted(m.ious), [0.6, 110 / 180], rtol=1e-6)


def test_ties_are_broken_by_index():
    # Two artifact boxes with equal scores over one reference box: the
    # first index wins, whatever the boxes' IoU with it.
    ref = det([(0, 0, 10, 10, 0.9, 0)])
    art = det([(0, 0, 10, 8, 0.7, 0), (0, 0, 10, 10, 0.7, 0)])
    m = match_detections(art, ref)
    assert pairs(m) == [(0, 0)] and m.extra.tolist() == [1]
    # Equal IoU with two reference boxes: the lower reference index wins.
    ref = det([(0, 0, 10, 10, 0.9, 0), (0, 0, 10, 10, 0.8, 0)])
    art = det([(0, 0, 10, 10, 0.9, 0)])
    m = match_detections(art, ref)
    assert pairs(m) == [(0, 0)] and m.missing.tolist() == [1]


def test_iou_threshold_is_inclusive_and_configurable():
    ref = det([(0, 0, 10, 10, 0.9, 0)])
    art = det([(0, 0, 10, 5, 0.9, 0)])  # IoU exactly 0.5.
    assert match_detections(art, ref).num_matched == 1
    assert match_detections(art, ref, iou_threshold=0.51).num_matched == 0
    with pytest.raises(ValueError, match="iou_threshold"):
        match_detections(art, ref, iou_threshold=0.0)


def test_pair_measurements():
    ref = det([(10, 10, 50, 50, 0.90, 3)])
    art = det([(13, 14, 50, 50, 0.85, 3)])  # Top-left corner moved by (3, 4): 5 px.
    m = match_detections(art, ref)
    np.testing.assert_allclose(m.corner_shifts, [5.0])
    np.testing.assert_allclose(m.score_deltas, [-0.05], atol=1e-6)
    np.testing.assert_allclose(m.ious, [(37 * 36) / (40 * 40)], rtol=1e-6)


def test_other_formats_are_converted():
    ref = det([(0, 0, 10, 10, 0.9, 0)])
    art_xywh = det([(2, 0, 10, 10, 0.9, 0)], fmt="xywh")  # = xyxy (2, 0, 12, 10).
    m = match_detections(art_xywh, ref)
    np.testing.assert_allclose(m.corner_shifts, [2.0])
    rel = det([(0.0, 0.0, 0.5, 0.5, 0.9, 0)], fmt="rel_xyxy")  # 20x20 image -> (0,0,10,10).
    m = match_detections(rel, ref, image_shape=(20, 20))
    np.testing.assert_allclose(m.ious, [1.0])
    with pytest.raises(ValueError, match="image_shape"):
        match_detections(rel, ref)


def test_corner_shift_is_the_worse_corner():
    np.testing.assert_allclose(
        corner_shift([[0, 0, 10, 10]], [[1, 0, 10, 14]]), [4.0])


def test_matched_share_leaves_out_detections_below_min_score():
    # Image 1: the 0.9 pair matches, the 0.26 reference detection is lost.
    ref1 = det([(0, 0, 10, 10, 0.9, 0), (20, 20, 40, 40, 0.26, 1)])
    art1 = det([(0, 0, 10, 10, 0.88, 0)])
    # Image 2: the 0.5 detection is lost, the 0.3 one kept.
    ref2 = det([(0, 0, 10, 10, 0.5, 0), (20, 20, 40, 40, 0.3, 1)])
    art2 = det([(20, 20, 40, 40, 0.31, 1)])
    matches = [match_detections(art1, ref1), match_detections(art2, ref2)]
    refs = [ref1, ref2]
    assert matched_share(matches, refs) == pytest.approx(2 / 4)
    assert matched_share(matches, refs, min_score=0.35) == pytest.approx(1 / 2)
    assert matched_share(matches, refs, min_score=0.6) == pytest.approx(1.0)
    assert matched_share(matches, refs, min_score=0.95) is None
    empty = det([])
    assert matched_share([match_detections(empty, empty)], [empty]) is None
