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
    assert "| ul_openvino_int8 | 0.400 | 0.600 | 0.30 | - | - | - | 5 |" in text
    assert "holds" in text and "no onnx2tf" in text
    setting = report["settings"]["conf=0.25,max_det=300"]
    setting["rows"]["ul_openvino_int8"].update(matched=0.9367, matched_clear=0.99)
    setting["noise"] = {"chunks": 10, "drops": {"ul_openvino_int8": {"mean": 0.12, "se": 0.05}},
                        "differences": {"edgedet_onnx_u8s8 - ul_openvino_int8":
                                        {"mean": 0.14, "se": 0.06},
                                        "edgedet_tflite_int8 - ul_openvino_int8":
                                        {"mean": 0.1, "se": 0.06}}}
    text = bench.markdown(report)
    assert "| ul_openvino_int8 | 0.400 | 0.600 | 0.30 | 0.12 ± 0.05 | 93.7% | 99.0% | 5 |" in text
    assert "edgedet_onnx_u8s8 - ul_openvino_int8 0.14 ± 0.06 (worse)" in text
    assert "edgedet_tflite_int8 - ul_openvino_int8 0.10 ± 0.06;" not in text
    assert "edgedet_tflite_int8 - ul_openvino_int8 0.10 ± 0.06" in text


def test_agreement_and_chunk_noise(bench):
    from edgedet.detections import Detections

    def det(rows):
        rows = np.asarray(rows, np.float32).reshape(-1, 6)
        return Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32), "xyxy")

    fp32 = [det([[0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.3, 1], [50, 50, 60, 60, 0.1, 0]])]
    int8 = [det([[0, 0, 10, 10, 0.85, 0], [50, 50, 60, 60, 0.12, 0]])]
    # The 0.1 detection is below the deployed threshold; the 0.3 one is lost but not clear of it.
    assert bench.agreement(int8, fp32) == {"matched": 0.5, "matched_clear": 1.0}
    truth = [det([[0, 0, 10, 10, 1, 0]]) for _ in range(4)]
    good = [det([[0, 0, 10, 10, 0.9, 0]]) for _ in range(4)]
    half = [det([[0, 0, 10, 10, 0.9, 0]]), det([]), det([[0, 0, 10, 10, 0.9, 0]]), det([])]
    runs = {"edgedet_onnx_fp32": good, "edgedet_onnx_u8s8": half,
            "ul_onnx_fp32": good, "ul_openvino_int8": good}
    base = {"edgedet": "edgedet_onnx_fp32", "ul": "ul_onnx_fp32"}
    noise = bench.chunk_noise(truth, runs, [(64, 64)] * 4, base, chunks=4)
    assert noise["drops"]["ul_openvino_int8"] == {"mean": 0.0, "se": 0.0}
    assert noise["drops"]["edgedet_onnx_u8s8"]["mean"] == pytest.approx(50.0)
    assert noise["differences"]["edgedet_onnx_u8s8 - ul_openvino_int8"]["se"] > 0
    assert "edgedet_onnx_fp32" not in noise["drops"]


def test_merge_detections(bench):
    first = {"ultralytics": "8.4.190", "models": {"ul_openvino_int8": "a"},
             "failed": {"ul_tflite_int8": "no tensorflow"},
             "predictions": {"k": {"ul_openvino_int8": {"a.png": []}}}}
    second = {"ultralytics": "8.4.190", "models": {"ul_tflite_int8": "b"}, "failed": {},
              "predictions": {"k": {"ul_tflite_int8": {"a.png": []}}}}
    merged = bench.merge_detections([first, second])
    assert merged["failed"] == {}
    assert list(merged["predictions"]["k"]) == ["ul_openvino_int8", "ul_tflite_int8"]
