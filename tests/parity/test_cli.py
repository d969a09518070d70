"""`edgedet parity` exit codes and output, with fake runtimes behind artifact paths."""

import json

import pytest
from click.testing import CliRunner

from edgedet.cli import parity as parity_cli
from edgedet.cli.parity import parity_command


@pytest.fixture
def setup(monkeypatch, tmp_path, case, image_dir, fakes):
    """Artifacts `good.onnx`, `bad.onnx` (shifts img_01 and img_03) on disk; a fake reference."""
    from edgedet.runtimes import registry

    _, table = case
    runtimes = {
        "good.onnx": lambda: fakes.FakeRuntime(table, target="onnx"),
        "bad.onnx": lambda: fakes.FakeRuntime(
            table, target="onnx", precision="int8",
            transform=fakes.shift_boxes({"img_01.png", "img_03.png"}, 15)),
        "other.onnx": lambda: fakes.FakeRuntime(table, target="onnx", class_names=("a", "b")),
    }
    real_open = registry.open_runtime
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in runtimes:
        (folder / name).write_bytes(b"")

    def fake_open(path, **options):
        name = str(path).rsplit("/", 1)[-1]
        return runtimes[name]() if name in runtimes else real_open(path, **options)

    monkeypatch.setattr(registry, "open_runtime", fake_open)
    monkeypatch.setattr(parity_cli, "load_reference", lambda spec: fakes.FakeRuntime(table))
    return folder


def invoke(*args):
    return CliRunner().invoke(parity_command, [str(a) for a in args], catch_exceptions=False)


def test_all_pass_exit_0(setup, image_dir, tmp_path):
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert "| good.onnx | onnx | fp32 | pass |" in result.output
    assert str((out / "report.html").resolve()) in result.output
    assert json.loads((out / "parity.json").read_text())["passed"] is True


def test_broken_artifact_exit_1_names_images(setup, image_dir, tmp_path):
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", setup / "bad.onnx",
                    "--images", image_dir, "--out", out)
    assert result.exit_code == 1, result.output
    assert "FAILED bad.onnx" in result.output
    assert "img_03.png" in result.output and "img_01.png" in result.output
    junit = (out / "junit.xml").read_text()
    assert "img_03.png" in junit and "img_02.png" not in junit
    # A looser threshold for that artifact (from the command line or a file) passes it.
    result = invoke("--model", "ref.keras", setup / "bad.onnx", "--images", image_dir,
                    "--out", out, "--force", "--threshold", "bad.onnx:min_recall=0",
                    "-t", "int8:min_precision=0", "-t", "min_map_vs_reference=none")
    assert result.exit_code == 0, result.output
    config = tmp_path / "t.yaml"
    config.write_text("int8: {min_recall: 0, min_precision: 0, min_map_vs_reference: none}\n")
    result = invoke("--model", "ref.keras", setup / "bad.onnx", "--images", image_dir,
                    "--out", out, "--force", "--config", config)
    assert result.exit_code == 0, result.output


def test_skipped_artifact_is_reported(setup, image_dir, tmp_path):
    corrupt = setup / "corrupt.onnx"
    corrupt.write_bytes(b"garbage")
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", corrupt, "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert "skipped corrupt.onnx: cannot load" in result.output
    for name in ("parity.md", "junit.xml", "report.html", "parity.json"):
        assert "corrupt.onnx" in (out / name).read_text()
    result = invoke("--model", "ref.keras", corrupt, "--images", image_dir, "--out", out,
                    "--force")
    assert result.exit_code == 1 and "no artifact could be compared" in result.output


@pytest.mark.parametrize("extra, message", [
    (["--threshold", "min_recal=0.9"], "Did you mean 'min_recall'"),
    (["--threshold", "tensorrt:min_recall=0.9"], "match no artifact"),
    (["--threshold", "min_recall"], "KEY=VALUE"),
    (["--match-iou", "0"], "match-iou"),
])
def test_usage_errors_exit_2(setup, image_dir, tmp_path, extra, message):
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", tmp_path / "report", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "report").exists()


def test_bad_inputs_exit_2(setup, image_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", empty, "--out", out)
    assert result.exit_code == 2 and "No images found" in result.output
    result = invoke("--model", "ref.keras", setup / "other.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "other.onnx: class names differ" in result.output
    result = invoke("--model", "ref.keras", setup / "nope.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "does not exist" in result.output
    out.mkdir()
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "--force" in result.output


def test_unknown_preset_exit_2(image_dir, tmp_path):
    result = invoke("--model", "yolov8q", "--images", image_dir, "--out", tmp_path / "r",
                    tmp_path)
    assert result.exit_code == 2, result.output
    assert "is neither an existing file" in result.output


def test_no_artifacts_exports_every_target_first(setup, image_dir, tmp_path, monkeypatch):
    calls = []

    def fake_export(model, out_dir):
        calls.append(out_dir)
        return [str(setup / "good.onnx")]

    monkeypatch.setattr(parity_cli, "_export_all", fake_export)
    result = invoke("--model", "ref.keras", "--images", image_dir, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and "good.onnx" in result.output


def test_reference_artifact_instead_of_a_keras_model(setup, image_dir, tmp_path):
    """`--reference ARTIFACT`: parity with no Keras model (a device without TensorFlow)."""
    result = invoke("--reference", setup / "good.onnx", setup / "good.onnx", "--images",
                    image_dir, "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    result = invoke("--reference", setup / "good.onnx", setup / "bad.onnx", "--images",
                    image_dir, "--out", tmp_path / "bad")
    assert result.exit_code == 1 and "FAILED bad.onnx" in result.output
    for args, message in [
        (("--model", "ref.keras", "--reference", setup / "good.onnx"), "exactly one of"),
        ((), "exactly one of"),
        (("--reference", setup / "good.onnx"), "Missing option '--images'"),
    ]:
        result = invoke(*args, setup / "good.onnx", "--out", tmp_path / "x")
        assert result.exit_code == 2 and message in result.output, result.output
    result = invoke("--reference", setup / "good.onnx", "--images", image_dir,
                    "--out", tmp_path / "x")
    assert result.exit_code == 2 and "none were given" in result.output
