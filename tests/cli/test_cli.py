"""The `edgedet` command: help, info, predict, and its error paths."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgedet.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (50, 30), dtype=np.uint8)).save(folder / "gray.png")
    rgba = rng.integers(0, 255, (20, 20, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    return folder


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("info", "predict", "export"):
        assert command in result.output


def test_info_on_a_preset_and_a_model_file(tiny_model_file):
    result = run("info", "tiny", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["preset"] == "tiny" and data["num_classes"] == 80
    result = run("info", tiny_model_file)
    assert result.exit_code == 0, result.output
    assert "circle" in result.output and "parameters" in result.output


@pytest.mark.parametrize("args, words", [
    (["info", "missing.keras"], ["missing.keras"]),
    (["info", "yolov8q"], ["'yolov8q'", "Did you mean 'yolov8"]),
])
def test_info_errors_name_the_value(args, words):
    result = run(*args)
    assert result.exit_code == 1
    for word in words:
        assert word in result.output


def test_export_option_is_checked_against_the_target_table(tmp_path):
    result = run("export", "--target", "onnx", "--out", tmp_path / "out", "--no-parity",
                 "--option", "onnx:opst=18")
    assert result.exit_code != 0
    assert "Unknown option 'opst' for target 'onnx'" in result.output
    assert "Did you mean 'opset'" in result.output
    assert not list((tmp_path / "out").glob("*.onnx"))


def test_export_keep_float_needs_int8(tmp_path):
    result = run("export", "--target", "onnx", "--out", tmp_path / "out",
                 "--calib-keep-float", "stem_2")
    assert result.exit_code == 2
    assert "--calib-keep-float applies to --precision int8 only" in result.output
    assert not (tmp_path / "out").exists()


def test_info_on_a_corrupt_model_file(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file")
    result = run("info", bad)
    assert result.exit_code == 1
    assert "bad.keras" in result.output


def test_predict_writes_json_and_annotated_images(tiny_model_file, images, tmp_path):
    out = tmp_path / "out"
    result = run("predict", "--model", tiny_model_file, images, "--out", out, "--conf", "0.0",
                 "--max-det", "5", "--box-format", "xywh")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [".edgedet-output.json", "a.json", "a.png", "gray.json", "gray.png",
                     "rgba.json", "rgba.png"]
    data = json.loads((out / "gray.json").read_text())
    assert (data["width"], data["height"]) == (30, 50)
    assert data["bounding_box_format"] == "xywh"
    # Confidence threshold 0 keeps max_det detections, named from the model's classes.
    assert len(data["detections"]) == 5
    for detection in data["detections"]:
        assert detection["class_name"] in ("circle", "square")
        x, y, w, h = detection["box"]
        assert 0 <= x <= x + w <= 30 + 1e-3 and 0 <= y <= y + h <= 50 + 1e-3
    assert Image.open(out / "a.png").size == (70, 40)


def test_predict_refuses_to_overwrite_without_force(tiny_model_file, images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = run("predict", "--model", tiny_model_file, images, "--out", out)
    assert result.exit_code == 1
    assert str(out) in result.output and "--force" in result.output
    assert (out / "keep.txt").read_text() == "precious"
    # --force replaces only a folder edgedet made: this one is the user's.
    result = run("predict", "--model", tiny_model_file, images, "--out", out, "--force")
    assert result.exit_code == 1 and "edgedet did not create it" in result.output
    assert (out / "keep.txt").read_text() == "precious"
    # Its own output folder is replaced with --force.
    own = tmp_path / "preds"
    assert run("predict", "--model", tiny_model_file, images, "--out", own).exit_code == 0
    (own / "a.json").write_text("stale")
    result = run("predict", "--model", tiny_model_file, images, "--out", own, "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((own / "a.json").read_text())["width"] == 70


def test_predict_errors(tiny_model_file, images, tmp_path):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    result = run("predict", "--model", tiny_model_file, not_image, "--out", tmp_path / "o1")
    assert result.exit_code == 1 and "notes.jpg" in result.output
    assert not (tmp_path / "o1").exists()  # nothing half-written

    result = run("predict", "--model", tiny_model_file, images, "--out", tmp_path / "o2",
                 "--box-format", "xywhh")
    assert result.exit_code == 1 and "'xywhh'" in result.output and "Did you mean" in result.output

    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run("predict", "--model", tiny_model_file, images, "--out", a_file / "sub")
    assert result.exit_code == 1 and str(a_file) in result.output
