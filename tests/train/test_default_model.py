"""The built-in default model shipped in edgedet/models/weights/."""

import pytest

pytest.importorskip("tensorflow")

from edgedet.data import CLASSES, load_dataset  # noqa: E402
from edgedet.models.weights import (  # noqa: E402
    DEFAULT_MODEL,
    load_trained,
    trained_model_path,
    trained_names,
)
from edgedet.train.evaluate import evaluate  # noqa: E402


def test_default_model_is_shipped_with_its_settings():
    assert DEFAULT_MODEL in trained_names()
    path = trained_model_path()
    assert path.suffix == ".keras" and path.stat().st_size < 8_000_000
    model = load_trained()
    assert list(model.class_names) == list(CLASSES)
    assert model.letterbox.size == 320 and model.preset == "pico"


def test_default_model_detects_synthetic_shapes():
    # 32 held-out images of another seed than training and validation. The
    # full 500-image score is in the README (mAP50-95 0.862); this guards
    # against a broken file or a broken end-to-end graph.
    data = load_dataset("synthetic:shapes?n=32&size=224&seed=1000", split="holdout")
    metrics = evaluate(load_trained(), data)
    assert metrics["map50"] > 0.85 and metrics["map50_95"] > 0.7


def test_unknown_trained_model_suggests_a_name():
    with pytest.raises(ValueError, match="shapes"):
        trained_model_path("shape")
