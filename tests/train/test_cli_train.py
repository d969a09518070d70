"""`edgedet train` from the command line."""

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("tensorflow")

from edgedet.cli.train import train_command  # noqa: E402

DATA = "synthetic:shapes?n=16&size=64&min_object_size=12&max_objects=2"


@pytest.mark.slow  # A whole `edgedet train` run.
def test_train_command_writes_a_run_and_scores_a_holdout_set(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(train_command, [
        "--data", DATA, "--model", "tiny", "--epochs", "1", "--batch", "8", "--out", str(out),
        "--val-images", "8", "--holdout", "8", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    assert "Trained 1 epochs" in result.output and "Held-out (8 images, seed 1000)" in result.output
    for name in ("best.keras", "last.keras", "results.csv", "results.png", "final_metrics.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "final_metrics.json").read_text())
    assert metrics["images"] == 8 and 0.0 <= metrics["map50_95"] <= 1.0
    # The preset's own input size is used when --imgsz is not given.
    assert json.loads((out / "args.json").read_text())["imgsz"] == 64


@pytest.mark.parametrize("args, message", [
    (["--data", "synthetic:shapez"], "synthetic:shapes"),
    (["--data", "/no/such/data"], "not found"),
    (["--data", DATA, "--model", "yolov8q"], "yolov8"),
    (["--data", DATA, "--model", "tiny", "--imgsz", "100"], "multiple of 32"),
])
def test_train_command_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(train_command, args + ["--out", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
