"""Trained models shipped inside the package.

`shapes` is edgedet's built-in default model: the `pico` architecture
(~0.9 M parameters) at a 320 px input, trained with `edgedet train` on
`synthetic:shapes` (5 classes: circle, square, triangle, ring, cross; 224 px
images). It is what `edgedet predict` / `edgedet export` use when no
`--model` is given. Its COCO mAP50-95 on 500 held-out synthetic images
(another seed) is 0.862 (mAP50 0.960); README.md ("The built-in model") has
the commands that produced it, docs/benchmarks.md the times.
Importing this module does not import Keras.

```python
from edgedet.models.weights import load_trained

model = load_trained()  # the default, "shapes"
```
"""

import importlib.resources
import pathlib

DEFAULT_MODEL = "shapes"

TRAINED_MODELS = {
    "shapes": {
        "file": "shapes_pico.keras",
        "preset": "pico",
        "data": "synthetic:shapes?size=224",
        "description": "pico (~0.9 M params, 320 px input) trained on synthetic shapes",
    },
}


def trained_names():
    """Names of the shipped trained models."""
    return sorted(TRAINED_MODELS)


def trained_model_path(name=DEFAULT_MODEL):
    """Path of a shipped `.keras` file.

    Args:
        name: str. One of `trained_names()`. Defaults to `DEFAULT_MODEL`.

    Raises:
        ValueError: an unknown name, or a package installed without the file.
    """
    from edgedet.suggest import closest

    if name not in TRAINED_MODELS:
        raise ValueError(
            f"Unknown trained model: {name!r}. Expected one of {trained_names()}."
            + closest(name, TRAINED_MODELS)
        )
    path = pathlib.Path(
        str(importlib.resources.files(__name__).joinpath(TRAINED_MODELS[name]["file"]))
    )
    if not path.is_file():
        raise ValueError(
            f"The trained model {name!r} is missing from this installation (expected "
            f"'{path}'): reinstall edgedet with its package data."
        )
    return path


def load_trained(name=DEFAULT_MODEL):
    """Loads a shipped trained model (`edgedet.models.YOLOV8Detector`)."""
    from edgedet.models.loading import load_model

    return load_model(trained_model_path(name))
