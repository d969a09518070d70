"""benchmarks/int8_vs_ultralytics.py: its pure helpers (settings, drops, verdict, table)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "int8_vs_ultralytics.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("int8_vs_ultralytics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings(bench):
    assert bench.parse_settings("0.25:300, 0.001") == [(0.25, 300), (0.001, 300)]
    assert bench.setting_key(0.001, 300) == "conf=0.001,max_det=300"
    for bad in ("", "x:3", "1.5:300", "0.25:0"):
        with pytest.raises(ValueError, match="setting"):
            bench.parse_settings(bad)


def test_drop_and_verdict(bench):
    assert bench.drop_points(0.417, 0.414) == 0.3
    assert bench.drop_points(None, 0.4) is None
    rows = {"edgedet_onnx_fp32": {"drop_points": 0.0},
            "edgedet_onnx_u8s8": {"drop_points": 0.2},
            "edgedet_tflite_int8": {"drop_points": 0.5},
            "ul_onnx_fp32": {"drop_points": 0.0},
            "ul_openvino_int8": {"drop_points": 0.3}}
    judged = bench.verdict(rows)
    assert judged == {"ultralytics_best_loss": 0.3, "worse": ["edgedet_tflite_int8"],
                      "holds": False}
    rows["ul_openvino_int8"]["drop_points"] = -0.2  # A gain is no loss, not a stricter limit.
    rows["edgedet_tflite_int8"]["drop_points"] = -0.1
    rows["edgedet_onnx_u8s8"]["drop_points"] = 0.0
    assert bench.verdict(rows)["holds"]
    assert bench.verdict({"edgedet_onnx_u8s8": {"drop_points": 0.2}}) is None


def test_ultralytics_rows_become_detections_in_image_order(bench):
    per_image = {"a.png": [[1, 2, 11, 12, 0.9, 2]], "b.png": []}
    first, second = bench.ultralytics_detections(per_image, ["sub/b.png", "a.png"])
    assert len(first) == 0 and len(second) == 1
    np.testing.assert_allclose(second.boxes, [[1, 2, 11, 12]])
    assert second.classes.tolist() == [2]
    with pytest.raises(ValueError, match="c.png"):
        bench.ultralytics_detections(per_image, ["c.png"])


def test_markdown(bench):
    report = {"machine": {"cpu": "cpu", "cpu_class": "vnni", "int8_flags": ["avx512_vnni"]},
              "ultralytics": "8.4.190", "ultralytics_failed": {"ul_tflite_int8": "no onnx2tf"},
              "settings": {"conf=0.25,max_det=300": {
                  "images": 2, "verdict": {"ultralytics_best_loss": 0.3, "worse": [],
                                           "holds": True},
                  "rows": {"ul_openvino_int8": {"map50_95": 0.4, "map50": 0.6,
                                                "drop_points": 0.3, "detections": 5}}}}}
    text = bench.markdown(report)
    assert "| ul_openvino_int8 | 0.400 | 0.600 | 0.30 | 5 |" in text
    assert "holds" in text and "no onnx2tf" in text


def test_merge_detections(bench):
    first = {"ultralytics": "8.4.190", "models": {"ul_openvino_int8": "a"},
             "failed": {"ul_tflite_int8": "no tensorflow"},
             "predictions": {"k": {"ul_openvino_int8": {"a.png": []}}}}
    second = {"ultralytics": "8.4.190", "models": {"ul_tflite_int8": "b"}, "failed": {},
              "predictions": {"k": {"ul_tflite_int8": {"a.png": []}}}}
    merged = bench.merge_detections([first, second])
    assert merged["failed"] == {}
    assert list(merged["predictions"]["k"]) == ["ul_openvino_int8", "ul_tflite_int8"]
