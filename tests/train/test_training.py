"""A short training run of the tiny preset: loss, mAP, save/load, resume, NaN, bad input."""

import csv
import math
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from edgedet.data import load_dataset  # noqa: E402
from edgedet.models import load_model  # noqa: E402
from edgedet.runtimes.keras_model import KerasRuntime  # noqa: E402
from edgedet.train import losses  # noqa: E402
from edgedet.train.callbacks import NonFiniteLossError  # noqa: E402
from edgedet.train.pipeline import AugmentConfig  # noqa: E402
from edgedet.train.run import holdout_spec, train  # noqa: E402
from edgedet.train.trainer import WarmupDecay  # noqa: E402

# Two big, easy classes on 64 px images: a few epochs of the tiny preset find them.
DATA = ("synthetic:shapes?n=96&size=64&classes=square,circle&min_objects=1&max_objects=2"
        "&min_object_size=16&max_object_size=32&noise=0")
KWARGS = dict(model="tiny", imgsz=64, batch=8, val_data=DATA, val_images=24, lr=0.01,
              warmup_epochs=0.2, ema_tau=20,
              augment=AugmentConfig(mosaic=0, scale=0.1, hsv_h=0, hsv_s=0, hsv_v=0),
              max_boxes=4, plot=True, verbose=0)
EPOCHS = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    # EPOCHS: with 3, thread-order nondeterminism in tf.data left mAP at 0 once in ~3 runs,
    # and with 4 once in CI (loss 9.3, no box above the evaluation threshold yet). After
    # the first (tracing) epoch each takes about a second.
    return train(DATA, epochs=EPOCHS, out=out, **KWARGS)


@pytest.mark.slow  # Trains a model for several epochs.
def test_training_lowers_the_loss_and_finds_objects(run):
    history = run.history
    assert [int(row["epoch"]) for row in history] == list(range(1, EPOCHS + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert run.best_map50_95 > 0
    assert max(row["map50"] for row in history) > 0
    for name in ("best.keras", "last.keras", "last_state.npz", "results.csv", "results.png",
                 "train_batch.png", "args.json"):
        assert os.path.exists(os.path.join(run.out_dir, name)), name
    with open(f"{run.out_dir}/results.csv") as f:
        header = next(csv.reader(f))
    assert {"epoch", "loss", "map50_95", "map50", "images_per_second"} <= set(header)


@pytest.mark.slow  # Trains a model for several epochs.
def test_saved_model_keeps_classes_letterbox_and_predictions(run):
    loaded = load_model(f"{run.out_dir}/last.keras")
    assert list(loaded.class_names) == ["square", "circle"]
    assert loaded.letterbox.size == 64
    images = [load_dataset(DATA, split="val")[i]["image"] for i in range(4)]
    config = run.model.default_inference_config()
    config = config.replace(nms=config.nms.__class__(confidence_threshold=0.01))
    with KerasRuntime(run.model, config) as a, KerasRuntime(loaded, config) as b:
        first, second = a.predict(images), b.predict(images)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x.boxes, y.boxes)
        np.testing.assert_array_equal(x.confidence, y.confidence)
        np.testing.assert_array_equal(x.classes, y.classes)
    assert sum(len(d) for d in first) > 0


@pytest.mark.slow  # Trains a model for several epochs.
def test_resume_continues_the_run(run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(run.out_dir, out)
    resumed = train(DATA, epochs=EPOCHS + 1, out=out, resume=True, **KWARGS)
    assert [int(row["epoch"]) for row in resumed.history] == list(range(1, EPOCHS + 2))
    assert resumed.epochs == EPOCHS + 1
    with pytest.raises(ValueError, match="already holds a run"):
        train(DATA, epochs=EPOCHS + 1, out=out, **KWARGS)


@pytest.mark.slow  # Trains a model for several epochs.
def test_nan_loss_stops_and_names_the_last_good_epoch(run, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "nan"
    shutil.copytree(run.out_dir, out)
    original = losses.DetectionLoss.__call__

    def poisoned(self, labels, outputs):
        total, parts = original(self, labels, outputs)
        return total * math.nan, parts

    monkeypatch.setattr(losses.DetectionLoss, "__call__", poisoned)
    with pytest.raises(NonFiniteLossError, match=f"Last good epoch: {EPOCHS}") as info:
        train(DATA, epochs=EPOCHS + 1, out=out, resume=True, **KWARGS)
    assert "last_state.npz" in str(info.value)
    assert (out / "last.keras").exists() and (out / "best.keras").exists()
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == EPOCHS  # nothing written for the bad epoch


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        train("synthetic:shapes?n=0&size=64", model="tiny", imgsz=64, out=tmp_path / "a")
    with pytest.raises(ValueError, match="imgsz"):
        train(DATA, model="tiny", imgsz=70, out=tmp_path / "b")
    with pytest.raises(ValueError, match="Cannot resume"):
        train(DATA, model="tiny", imgsz=64, out=tmp_path / "c", resume=True)
    with pytest.raises(ValueError, match="preset"):
        train(DATA, model="yolov8q", imgsz=64, out=tmp_path / "d")


def test_holdout_spec_changes_seed_and_count():
    spec = holdout_spec("synthetic:shapes?n=10&size=224&seed=3&classes=ring,cross", 500, 1000)
    dataset = load_dataset(spec, split="holdout")
    assert len(dataset) == 500 and dataset.seed == 1000
    assert dataset.class_names == ("ring", "cross")
    with pytest.raises(ValueError, match="synthetic"):
        holdout_spec("data/coco.json", 10, 1)


def test_warmup_then_cosine_schedule():
    schedule = WarmupDecay(0.01, total_steps=110, warmup_steps=10, final_fraction=0.1)
    values = [float(schedule(step)) for step in (0, 4, 9, 10, 60, 110, 500)]
    np.testing.assert_allclose(values[:3], [0.001, 0.005, 0.01], rtol=1e-5)
    np.testing.assert_allclose(values[3], 0.01, rtol=1e-5)
    np.testing.assert_allclose(values[4], 0.001 + 0.009 * 0.5, rtol=1e-5)  # half-way: mean
    np.testing.assert_allclose(values[5:], [0.001, 0.001], rtol=1e-5)
    linear = WarmupDecay(0.01, total_steps=100, decay="linear", final_fraction=0.0)
    np.testing.assert_allclose(float(linear(50)), 0.005, rtol=1e-5)
    with pytest.raises(ValueError, match="decay"):
        WarmupDecay(0.01, 10, decay="step")
