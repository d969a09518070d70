"""benchmarks/int8.py: the trained-like YOLOv8n it measures, its options and its table."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "int8.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("int8_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_yolov8n_is_a_full_yolov8n_with_trained_like_statistics(bench):
    model = bench.synthetic_yolov8n(image_size=64)
    assert model.preset == "yolov8n" and len(model.class_names) == 80
    assert model.letterbox.size == 64
    weights = {w.path: np.asarray(w) for w in model.weights}
    variances = [v for k, v in weights.items() if k.endswith("moving_variance")]
    assert variances and all(v.min() >= 0.5 for v in variances)  # Not BatchNorm's 1.0 init.


def test_options_and_markdown(bench):
    args = bench.parse_args(["--out", "x", "--only-tflite", "--conf", "0.001", "--max-det", "300"])
    assert args.only_tflite and args.max_det == 300 and args.head is None
    assert bench.parse_args(["--out", "x", "--head", "one2one"]).head == "one2one"
    assert bench.parse_args(["--out", "x", "--lift-head-refusals"]).lift_head_refusals
    report = {
        "model": "shapes", "calibration": "entropy, 300 images", "command": "python b.py",
        "machine": {"cpu": "cpu", "cpu_class": "vnni", "int8_flags": ["avx512_vnni"]},
        "accuracy": {
            "clear_margin": 0.1,
            "tflite_int8": {"status": "failed", "matched_reference_detections": 0.95,
                            "matched_clear_of_threshold": 0.99,
                            "map50_95_vs_reference": 0.9, "map50_95_drop_points": 1.7,
                            "score_delta_p95": 0.04, "worst_score_delta": 0.3,
                            "failed_checks": ["max_map_drop"]},
            "labels_note": "computed at confidence >= 0.001",
        },
    }
    text = bench.markdown(report)
    assert ("| tflite_int8 | 95.0% | 99.0% | 0.900 | 1.700 | 0.040 / 0.300 | failed "
            "(max_map_drop) |") in text
    assert "matched, score >= conf + 0.1 |" in text
    assert "computed at confidence >= 0.001" in text


def test_matched_clear_of_the_threshold_uses_the_int8_score_tolerance(bench):
    from types import SimpleNamespace

    from edgedet.detections import Detections
    from edgedet.matching import match_detections
    from edgedet.thresholds import DEFAULTS

    assert bench.clear_margin() == DEFAULTS["int8"].max_score_delta_p95
    rows = np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.3, 1]], np.float32)
    ref = Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32), "xyxy")
    art = Detections(rows[:1, :4], rows[:1, 4], rows[:1, 5].astype(np.int32), "xyxy")
    reference = SimpleNamespace(inference={"nms": {"confidence_threshold": 0.25}},
                                detections=[ref])
    result = SimpleNamespace(reference_runs=[reference])
    ran = SimpleNamespace(matches=[match_detections(art, ref)], reference_run=0)
    assert bench._matched_clear(result, ran) == 1.0  # The 0.3 detection is within 0.25 + 0.1.
    reference.inference["nms"]["confidence_threshold"] = 0.1
    assert bench._matched_clear(result, ran) == 0.5
    assert bench._matched_clear(result, SimpleNamespace(matches=None, reference_run=0)) is None
