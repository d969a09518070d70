"""Every artifact computes what the Keras reference computes.

For each target (SavedModel, ONNX, TFLite, OpenVINO in float32 when installed), image size
and batch size: the outputs follow the contract; the decoded pre-NMS boxes and scores agree
with the reference (1e-3 px, 1e-4); after NMS every reference detection is
found in the artifact's (same class, IoU >= 0.99), and vice versa.
"""

import importlib.util

import numpy as np
import pytest

from edgedet.boxes import compute_iou

BOX_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-4
MIN_IOU = 0.99

TARGETS = ["savedmodel", "onnx", "tflite"]
KINDS = {"savedmodel": "savedmodel", "onnx": "onnx", "tflite": "tflite"}  # One name per kind.
if importlib.util.find_spec("openvino") is not None:  # The `openvino` extra (in `dev`).
    TARGETS.append("openvino")
    KINDS["openvino"] = "openvino"
# OpenVINO runs in float32 here (its CPU default is bf16 where the CPU has it:
# tests/runtimes/test_openvino.py covers that).
OPTIONS = {"openvino": {"precision": "f32"}}
# The keys of conftest.IMAGE_SIZES (test modules cannot import conftest here).
SIZES = ["640x480", "480x640", "1x2000", "2000x1", "17x23", "model_size"]


@pytest.fixture(scope="module")
def runtimes(debug_artifacts):
    from edgedet.runtimes.registry import open_runtime

    opened = {target: open_runtime(path, **OPTIONS.get(target, {}))
              for target, path in debug_artifacts.items()}
    for runtime in opened.values():
        runtime.__enter__()
    yield opened
    for runtime in opened.values():
        runtime.__exit__(None, None, None)


@pytest.fixture(scope="module")
def reference_outputs(reference, images):
    """(size name, batch) -> reference raw outputs."""
    return {
        (name, batch): reference.infer(images[name][:batch])
        for name in SIZES
        for batch in (1, 4)
    }


def test_every_size_and_target_is_covered(images, debug_artifacts):
    assert sorted(images) == sorted(SIZES)
    assert sorted(debug_artifacts) == sorted(TARGETS)


def test_runtime_kinds(runtimes):
    assert {t: r.kind for t, r in runtimes.items()} == KINDS


def test_the_test_model_detects(reference_outputs):
    # Guards the fixture: NMS comparisons test nothing without detections.
    for (name, batch), outputs in reference_outputs.items():
        counts = outputs["num_detections"]
        assert counts.min() >= 1, f"{name} batch {batch}: no detections {counts}"
    suppressed = [
        (outputs["pre_nms_scores"].max(-1) >= 0.15).sum() - outputs["num_detections"].sum()
        for outputs in reference_outputs.values()
    ]
    assert max(suppressed) > 0, "NMS never suppressed anything"


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("target", TARGETS)
def test_matches_reference(runtimes, reference_outputs, images, config, target, size, batch):
    outputs = runtimes[target].infer(images[size][:batch])
    expected = reference_outputs[(size, batch)]
    max_det = config.nms.max_detections
    num_classes = 3
    anchors = expected["pre_nms_scores"].shape[1]

    # Contract: names, dtypes, shapes.
    assert {k: (v.dtype.name, v.shape) for k, v in outputs.items()} == {
        "boxes": ("float32", (batch, max_det, 4)),
        "confidence": ("float32", (batch, max_det)),
        "classes": ("int32", (batch, max_det)),
        "num_detections": ("int32", (batch,)),
        "pre_nms_boxes": ("float32", (batch, anchors, 4)),
        "pre_nms_scores": ("float32", (batch, anchors, num_classes)),
    }

    # Pre-NMS decode agrees. Box tolerance: 1e-3 px in model-input pixels, so
    # in original pixels times the un-letterbox scale (31x for a 2000 px side
    # and the 64 px test model; float32 spacing near 2000 is 1.2e-4 px).
    scale = max(1.0, max(images[size].shape[1:3]) / config.letterbox.size)
    box_error = np.abs(outputs["pre_nms_boxes"] - expected["pre_nms_boxes"]).max()
    score_error = np.abs(outputs["pre_nms_scores"] - expected["pre_nms_scores"]).max()
    assert box_error <= BOX_TOLERANCE_PX * scale, f"pre-NMS boxes differ by {box_error} px"
    assert score_error <= SCORE_TOLERANCE, f"pre-NMS scores differ by {score_error}"

    # Post-NMS detections agree, image by image.
    np.testing.assert_array_equal(outputs["num_detections"], expected["num_detections"])
    for i in range(batch):
        n = int(expected["num_detections"][i])
        _assert_same_detections(
            {k: outputs[k][i] for k in ("boxes", "confidence", "classes")},
            {k: expected[k][i] for k in ("boxes", "confidence", "classes")},
            n,
            f"{target} {size} image {i}",
        )
        # Padding rows follow the contract.
        assert (outputs["classes"][i, n:] == -1).all()
        assert (outputs["confidence"][i, n:] == 0).all()


def _assert_same_detections(got, want, n, where):
    unmatched = list(range(n))
    for j in range(n):
        candidates = [
            i
            for i in unmatched
            if got["classes"][i] == want["classes"][j]
            and abs(got["confidence"][i] - want["confidence"][j]) <= SCORE_TOLERANCE
            and _same_box(got["boxes"][i], want["boxes"][j])
        ]
        assert candidates, (
            f"{where}: reference detection {j} (class {want['classes'][j]}, "
            f"score {want['confidence'][j]:.6f}, box {want['boxes'][j].tolist()}) not found"
        )
        unmatched.remove(candidates[0])


def _same_box(a, b):
    # Clipping can give zero-area boxes (IoU 0 even with themselves).
    if np.abs(a - b).max() <= 1e-2:
        return True
    return compute_iou(a[None], b[None])[0, 0] >= MIN_IOU


@pytest.mark.parametrize("target", TARGETS)
def test_predict_returns_reference_detections(runtimes, reference, images, target):
    # A list of images of different sizes: grouped by size, results in input order.
    batch = [images["640x480"][0], images["17x23"][1], images["640x480"][2]]
    got = runtimes[target].predict(batch)
    want = reference.predict(batch)
    assert len(got) == len(want) == 3
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.bounding_box_format == w.bounding_box_format == "xyxy"
        assert len(g) == len(w) > 0
        _assert_same_detections(
            {"boxes": g.boxes, "confidence": g.confidence, "classes": g.classes},
            {"boxes": w.boxes, "confidence": w.confidence, "classes": w.classes},
            len(w),
            f"{target} image {i}",
        )
    assert runtimes[target].last_inference_seconds > 0
