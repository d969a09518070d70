"""Matching an artifact's detections to the reference's, one image at a time.

The rule (the same greedy assignment as COCO's evaluator, with the reference
in the role of ground truth):

1. Both sides are converted to `"xyxy"` pixels of the original image.
2. The artifact's detections are visited in order of decreasing score; equal
   scores are visited in index order (a stable sort), so the result is
   deterministic.
3. Each visited detection is matched to the still-unmatched reference
   detection of the SAME class with the highest IoU, provided that IoU is
   `>= iou_threshold` (0.5 by default). Equal IoUs go to the lower reference
   index. A detection with no such partner is an "extra".
4. Every pair is one-to-one: a reference detection matched once is not
   available again. Reference detections left unmatched are "missing".

A pair whose classes differ is never a match, however well the boxes
overlap: that is one missing and one extra detection.

Per matched pair the module also measures the IoU, the score delta
(`artifact - reference`) and the corner shift: the largest Euclidean
distance, in pixels, between corresponding corners (top-left with top-left,
bottom-right with bottom-right) of the two boxes.
"""

import dataclasses

import numpy as np

from edgedet import boxes as _boxes
from edgedet.detections import Detections

DEFAULT_IOU_THRESHOLD = 0.5


@dataclasses.dataclass
class ImageMatch:
    """The outcome of matching one image.

    Attributes:
        pairs: int array `[M, 2]`: `(artifact index, reference index)` per
            matched pair, in the order they were matched.
        ious: float array `[M]`: IoU of each pair.
        score_deltas: float array `[M]`: artifact score minus reference score.
        corner_shifts: float array `[M]`: corner shift in pixels (see the
            module docstring).
        missing: int array: reference indices with no artifact partner.
        extra: int array: artifact indices with no reference partner.
        num_reference: int. Reference detections in the image.
        num_artifact: int. Artifact detections in the image.
    """

    pairs: np.ndarray
    ious: np.ndarray
    score_deltas: np.ndarray
    corner_shifts: np.ndarray
    missing: np.ndarray
    extra: np.ndarray
    num_reference: int
    num_artifact: int

    @property
    def num_matched(self):
        return int(self.pairs.shape[0])

    @property
    def disagrees(self):
        """True when the image has a missing or an extra detection."""
        return bool(len(self.missing) or len(self.extra))


def _xyxy(detections, image_shape, what):
    if not isinstance(detections, Detections):
        raise ValueError(
            f"Expected `{what}` to be an edgedet.detections.Detections, received "
            f"{type(detections).__name__}."
        )
    if detections.bounding_box_format == "xyxy":
        return detections.boxes.astype(np.float64)
    if _boxes.is_relative(detections.bounding_box_format) and image_shape is None:
        raise ValueError(
            f"`{what}` has relative boxes ({detections.bounding_box_format!r}); pass "
            "`image_shape=(height, width)` to convert them to pixels."
        )
    converted = detections.to_format("xyxy", image_shape=image_shape)
    return converted.boxes.astype(np.float64)


def corner_shift(boxes1, boxes2):
    """Largest distance in pixels between corresponding corners of `xyxy` boxes.

    Args:
        boxes1: float array `[N, 4]` in `"xyxy"`.
        boxes2: float array `[N, 4]` in `"xyxy"`, paired row by row with
            `boxes1`.

    Returns:
        float array `[N]`: `max(|tl1 - tl2|, |br1 - br2|)` per row.
    """
    boxes1 = np.asarray(boxes1, np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, np.float64).reshape(-1, 4)
    top_left = np.hypot(boxes1[:, 0] - boxes2[:, 0], boxes1[:, 1] - boxes2[:, 1])
    bottom_right = np.hypot(boxes1[:, 2] - boxes2[:, 2], boxes1[:, 3] - boxes2[:, 3])
    return np.maximum(top_left, bottom_right)


def match_detections(artifact, reference, iou_threshold=DEFAULT_IOU_THRESHOLD, image_shape=None):
    """Matches one image's artifact detections to its reference detections.

    See the module docstring for the rule.

    Args:
        artifact: `Detections`. What the artifact found.
        reference: `Detections`. What the reference found (the "ground
            truth" of the comparison).
        iou_threshold: float. Smallest IoU of a match, in `(0, 1]`.
            Defaults to 0.5.
        image_shape: `(height, width)` of the image; needed only when a side
            uses a relative box format. Defaults to None.

    Returns:
        An `ImageMatch`.
    """
    if not isinstance(iou_threshold, (int, float)) or not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"Invalid iou_threshold: {iou_threshold!r}. Expected a float in (0, 1].")
    art_boxes = _xyxy(artifact, image_shape, "artifact")
    ref_boxes = _xyxy(reference, image_shape, "reference")
    num_art, num_ref = len(art_boxes), len(ref_boxes)
    if num_art and num_ref:
        iou = np.asarray(_boxes.compute_iou(art_boxes, ref_boxes, "xyxy", dtype="float64"))
        iou = np.where(artifact.classes[:, None] == reference.classes[None, :], iou, -1.0)
    else:
        iou = np.zeros((num_art, num_ref))
    order = np.argsort(-artifact.confidence.astype(np.float64), kind="stable")
    taken = np.zeros(num_ref, bool)
    pairs = []
    for a in order:
        if not num_ref:
            break
        candidates = np.where(taken, -1.0, iou[a])
        r = int(np.argmax(candidates))  # First index among equal IoUs.
        if candidates[r] >= iou_threshold:
            taken[r] = True
            pairs.append((int(a), r))
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    a_idx, r_idx = pairs[:, 0], pairs[:, 1]
    matched_art = np.zeros(num_art, bool)
    matched_art[a_idx] = True
    return ImageMatch(
        pairs=pairs,
        ious=iou[a_idx, r_idx].astype(np.float64),
        score_deltas=(
            artifact.confidence[a_idx].astype(np.float64)
            - reference.confidence[r_idx].astype(np.float64)
        ),
        corner_shifts=corner_shift(art_boxes[a_idx], ref_boxes[r_idx]),
        missing=np.flatnonzero(~taken),
        extra=np.flatnonzero(~matched_art),
        num_reference=num_ref,
        num_artifact=num_art,
    )


def matched_share(matches, references, min_score=0.0):
    """Share of the reference detections scoring `>= min_score` that were matched.

    With `min_score` above the confidence threshold it leaves out the
    detections a small score change can push across the threshold, which
    no quantized model can be expected to keep (INT8 moves most scores by a
    few hundredths): `min_score = conf + margin` gives the agreement on the
    detections that clear the threshold by `margin`.

    Args:
        matches: list of `ImageMatch`, one per image.
        references: list of `Detections`, the reference side of each match.
        min_score: float. Reference detections scoring below it are left out.
            Defaults to 0.0 (every reference detection).

    Returns:
        A float in `[0, 1]`, or None when no reference detection scores
        `>= min_score`.
    """
    counted = matched = 0
    for match, reference in zip(matches, references):
        scores = np.asarray(reference.confidence, np.float64)
        keep = scores >= min_score
        counted += int(keep.sum())
        matched += int(keep[match.pairs[:, 1]].sum())
    return matched / counted if counted else None
