"""Threshold defaults, overrides and checks."""

import json

import pytest

from edgedet import thresholds as T


def test_defaults_tighten_with_precision():
    fp32, fp16, int8 = T.DEFAULTS["fp32"], T.DEFAULTS["fp16"], T.DEFAULTS["int8"]
    assert fp32.min_recall >= fp16.min_recall >= int8.min_recall
    assert fp32.max_corner_shift_px <= 1.0
    assert int8.min_recall >= 0.9 and int8.min_map_vs_reference >= 0.8


def test_override_parsing():
    assert T.parse_override("min_recall=0.95") == ("*", "min_recall", 0.95)
    assert T.parse_override("onnx:min_recall=0.95") == ("onnx", "min_recall", 0.95)
    assert T.parse_override("a:b.onnx:max_corner_shift_px=none") == (
        "a:b.onnx", "max_corner_shift_px", None)
    with pytest.raises(ValueError, match="min_recal.*Did you mean 'min_recall'"):
        T.parse_override("onnx:min_recal=0.9")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        T.parse_override("onnx:min_recall")
    with pytest.raises(ValueError, match="'abc'"):
        T.parse_override("min_recall=abc")


def test_resolve_precedence():
    config = {"*": {"min_recall": 0.5}, "int8": {"min_recall": 0.6},
              "onnx": {"min_recall": 0.7}, "m.onnx": {"min_precision": 0.1}}
    got = T.resolve("m.onnx", "onnx", "int8", config)
    assert got.min_recall == 0.7 and got.min_precision == 0.1
    assert got.min_map_vs_reference == T.DEFAULTS["int8"].min_map_vs_reference
    # The command line beats the config at the same level, not a more specific one.
    got = T.resolve("m.onnx", "onnx", "int8", config,
                    [("*", "min_recall", 0.9), ("onnx", "min_recall", 0.8)])
    assert got.min_recall == 0.8
    got = T.resolve("x.tflite", "tflite", "fp32", config, [("*", "min_recall", 0.9)])
    assert got.min_recall == 0.9 and got.max_corner_shift_px == 1.0


def test_config_files(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"onnx": {"min_recall": 0.9}}))
    assert T.load_config(tmp_path / "t.json") == {"onnx": {"min_recall": 0.9}}
    (tmp_path / "t.yaml").write_text("int8:\n  max_score_delta: none\n  min_recall: 0.8\n")
    assert T.load_config(tmp_path / "t.yaml") == {
        "int8": {"max_score_delta": None, "min_recall": 0.8}}
    (tmp_path / "bad.yaml").write_text("onnx: {min_recal: 0.9}\n")
    with pytest.raises(ValueError, match="min_recal"):
        T.load_config(tmp_path / "bad.yaml")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="Cannot parse"):
        T.load_config(tmp_path / "broken.json")


def test_invalid_values():
    with pytest.raises(ValueError, match="min_recall=-1"):
        T.Thresholds(min_recall=-1)
    with pytest.raises(ValueError, match="Unknown threshold"):
        T.DEFAULTS["fp32"].replace(recall=0.3)


def test_evaluate():
    limits = T.Thresholds(min_recall=0.9, max_corner_shift_px=1.0, min_mean_iou=0.9)
    checks = T.evaluate({"recall": 0.95, "worst_corner_shift_px": 1.5, "mean_iou": None}, limits)
    by_name = {c["threshold"]: c for c in checks}
    assert by_name["min_recall"]["passed"] is True
    assert by_name["max_corner_shift_px"]["passed"] is False
    assert by_name["min_mean_iou"]["passed"] is None  # n/a: nothing matched.
    assert len(checks) == 3  # Unset thresholds are not checks.
    assert T.evaluate({"recall": 0.9}, T.Thresholds(min_recall=0.9))[0]["passed"] is True
