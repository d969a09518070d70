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
    model. A head without DFL (reg_max 1, YOLO26) predicts the box distances
    themselves: they are made positive, as a trained model's are (random
    ones give inverted boxes that no runtime agrees on). `kwargs` go to
    `from_preset(preset, ...)` (any family's preset, e.g. `"yolo11_tiny"`).
    """
    keras = pytest.importorskip("keras")
    from edgedet.models import families

    keras.utils.set_random_seed(0)  # The same kernels whichever tests ran before.
    model = families.from_preset(preset, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.2, n))
    head = families.family_of_model(model).head_output_layers
    for name in head[1::2]:  # class convs
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 15.0, bias - 2.0])
    for name in head[0::2] if getattr(model, "reg_max", 16) == 1 else ():  # box distances ~2
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 4.0, bias + 2.0])
    return model


@pytest.fixture(scope="session")
def make_decisive_tiny_model():
    """Factory fixture: `make_decisive_tiny_model(num_classes=3)` -> a decisive tiny YOLOv8."""
    return _make_decisive_tiny_model


def _tool(name):
    """A module of the repository's `tools/` folder (they are scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_like_ultralytics_state(name="yolov8n", seed=0):
    """An Ultralytics state_dict (80 classes; YOLOv8, YOLO11, YOLO26, ...) with trained-like
    statistics.

    The layout is a real Ultralytics model's (`tests/fixtures/ultralytics/
    state_dict_shapes.json.gz`); the values come from `tools/
    make_ultralytics_fixture.py: synthetic_weights` (non-zero BatchNorm means
    and betas, varied variances, useful activation ranges), the DFL projection
    is Ultralytics' fixed `arange(16)`, and the class outputs (both heads of
    a YOLO26) are made decisive (kernels scaled up, biases down), as a
    trained model's are: a
    model whose every score is about 0.5 hides what weights do to INT8.
    """
    import gzip
    import json
    import re
    from pathlib import Path

    path = (Path(__file__).resolve().parent / "fixtures" / "ultralytics"
            / "state_dict_shapes.json.gz")
    with gzip.open(path) as f:
        shapes = json.loads(f.read())[name]["shapes"]
    tool = _tool("make_ultralytics_fixture")
    state = tool.synthetic_weights([(k, s) for k, s in shapes if tool.is_random(k)], seed)
    for key, shape in shapes:
        if key.endswith("dfl.conv.weight"):
            state[key] = np.arange(16, dtype=np.float32).reshape(shape)
        elif key.endswith("num_batches_tracked"):
            state[key] = np.zeros(shape, np.int64)
    class_output = re.compile(r"\.(one2one_)?cv3\.\d+\.2\.(weight|bias)$")
    box_bias = re.compile(r"\.(one2one_)?cv2\.\d+\.2\.bias$")
    for key in state:
        if class_output.search(key) and key.endswith(".weight"):
            state[key] = state[key] * 8.0
        elif class_output.search(key):
            state[key] = state[key] - 4.0
        elif box_bias.search(key) and state[key].shape == (4,):
            # reg_max 1 (YOLO26): the box outputs are the distances, positive when trained.
            state[key] = state[key] + 2.0
    return state


@pytest.fixture(scope="session", name="trained_like_ultralytics_state")
def trained_like_ultralytics_state_fixture():
    """Factory fixture: `trained_like_ultralytics_state("yolov8s")` -> a state_dict."""
    return trained_like_ultralytics_state


@pytest.fixture(scope="session")
def plug_in_family(tmp_path_factory):
    """Registers a family written at run time: `with plug_in_family(name, source, row):`.

    `source` is the family's module, written to a temporary folder and imported
    as `name`; `row(module)` returns its `ModelFamily`. The context yields the
    module; on exit the row is unregistered and the module forgotten.
    """
    import contextlib
    import importlib
    import sys

    from edgedet.models import families

    @contextlib.contextmanager
    def plug_in(name, source, row):
        folder = tmp_path_factory.mktemp(name)
        (folder / f"{name}.py").write_text(source)
        sys.path.insert(0, str(folder))
        module = importlib.import_module(name)
        family = row(module)
        families.register_family(family)
        try:
            yield module
        finally:
            families.unregister_family(family.name)
            sys.path.remove(str(folder))
            sys.modules.pop(name, None)

    return plug_in
