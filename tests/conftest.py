"""Shared test fixtures."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402 - after the environment defaults above.
import pytest  # noqa: E402


def _make_decisive_tiny_model(preset="tiny", **kwargs):
    """A tiny YOLOv8 whose outputs are decisive, as a trained model's are.

    A randomly initialised YOLOv8 scores every anchor about 0.5, so which
    class wins and which box NMS keeps is decided by differences of 1e-5
    that runtimes legitimately round differently. This one draws BatchNorm
    statistics at random and scales the class-head kernels up (biased
    down), so agreement between runtimes means what it does for a trained
    model. `kwargs` go to `from_preset(preset, ...)` (any family's preset,
    e.g. `"yolo11_tiny"`).
    """
    keras = pytest.importorskip("keras")
    from edgedet.models import families

    model = families.from_preset(preset, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.2, n))
    for name in families.family_of_model(model).head_output_layers[1::2]:  # class convs
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 15.0, bias - 2.0])
    return model


@pytest.fixture(scope="session")
def make_decisive_tiny_model():
    """Factory fixture: `make_decisive_tiny_model(num_classes=3)` -> a decisive tiny YOLOv8."""
    return _make_decisive_tiny_model
