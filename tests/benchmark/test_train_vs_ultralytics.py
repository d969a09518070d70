"""benchmarks/train_vs_ultralytics.py: arguments, the shared dataset, the figures, both sides.

The edgedet side runs on the tiny preset at 64 px for two steps (seconds);
the Ultralytics side needs the `benchmark` extra (torch, Ultralytics) and is
skipped without it.
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_vs_ultralytics.py"
SMALL = ["--images", "32", "--val-images", "8", "--imgsz", "64", "--batch", "16",
         "--epochs", "1", "--warmup-steps", "1"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_vs_ultralytics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--images", "40", "--batch", "16"], "not a multiple of --batch"),
    (["--sides", "edgedet,darknet"], "--sides"),
    (["--imgsz", "300"], "multiple of 32"),
    (["--images", "32", "--batch", "16", "--warmup-steps", "2"], "--warmup-steps"),
    (["--model", "resnet50"], "--model"),
    (["--model", "yolo26q"], "yolo26n ... yolo26x"),
    (["--epochs", "0"], "--epochs"),
])
def test_bad_arguments_are_refused(bench, argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err


def test_yolo26_models_are_accepted(bench):
    assert bench.parse_args(["--model", "yolo26n"]).model == "yolo26n"


def test_dataset_is_written_once_in_yolo_format(bench, tmp_path):
    from edgedet.data import load_dataset

    yaml_path = bench.write_data(str(tmp_path / "data"), 16, 4, 64, seed=0)
    assert os.path.basename(yaml_path) == "data.yaml"
    train = load_dataset(yaml_path, split="train")
    val = load_dataset(yaml_path, split="val")
    assert (len(train), len(val)) == (16, 4)
    assert list(train.class_names) == list(bench.CLASSES)
    assert len(os.listdir(tmp_path / "data" / "labels" / "train")) == 16
    # The splits are different images.
    assert not (train[0]["image"].shape == val[0]["image"].shape
                and (train[0]["image"] == val[0]["image"]).all())


def test_throughput_leaves_out_warm_up_and_epoch_starts(bench):
    clock = bench.StepClock()
    # Epoch 1 starts at 0: steps end at 10 (warm-up), 11, 12; epoch 2 at 20: 25 (restart), 26.
    clock.epochs = [(0.0, [10.0, 11.0, 12.0]), (20.0, [25.0, 26.0])]
    figures = bench.throughput(clock, batch=4, warmup_steps=1, wall_seconds=40.0)
    assert figures["steps"] == 5
    assert figures["steady_images_per_second"] == pytest.approx(4 * 3 / 3.0)
    assert figures["epoch_images_per_second"] == pytest.approx(4 * 5 / (12.0 + 6.0))
    assert figures["wall_images_per_second"] == pytest.approx(4 * 5 / 40.0)
    assert figures["step_seconds_first"] == [10.0, 1.0, 1.0]


def test_edgedet_side_trains_and_scores_on_the_shared_data(bench, tmp_path):
    pytest.importorskip("tensorflow")
    args = bench.parse_args(SMALL + ["--out", str(tmp_path)])
    args.model = "tiny"  # the same code path as yolov8n, in seconds
    data_yaml = bench.write_data(str(tmp_path / "data"), args.images, args.val_images,
                                 args.imgsz, args.seed)
    figures = bench.run_edgedet(args, data_yaml, str(tmp_path))
    assert figures["steps"] == 2
    for key in ("steady_images_per_second", "epoch_images_per_second",
                "wall_images_per_second"):
        assert figures[key] > 0
    assert figures["wall_images_per_second"] <= figures["epoch_images_per_second"]
    assert 0 <= figures["map50_95"] <= figures["map50"] <= 1
    assert os.path.exists(tmp_path / "edgedet_run" / "results.csv")


@pytest.mark.slow
def test_ultralytics_side_runs_through_the_script(bench, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("ultralytics")
    pytest.importorskip("tensorflow")
    out = tmp_path / "results.json"
    summary = bench.main(SMALL + ["--sides", "ultralytics", "--out", str(tmp_path),
                                  "--json", str(out)])
    result = summary["results"]["ultralytics"]
    assert result["steps"] == 2
    assert result["steady_images_per_second"] > 0
    assert 0 <= result["map50_95"] <= result["map50"] <= 1
    assert json.loads(out.read_text())["results"]["ultralytics"]["side"] == "ultralytics"
    assert (tmp_path / "ultralytics_run" / "train" / "weights" / "last.pt").exists()
