"""The table of model families: what edgedet knows about each architecture.

A family row (keras-hub style) names the Keras class (imported only when a
model is built, so this module costs no Keras import), its presets, the name
Keras serializes it under, and the Keras layers the INT8 path treats apart:
the head's output convolutions (kept float, found by name in the exported
graphs) and the input layers kept float. A new family is its own modules
(layers, model, presets) plus one row in `_FAMILIES` below.

```python
from edgedet.models.families import get_family, family_of_preset

family = family_of_preset("yolov8n")  # the "yolo_v8" row
model = family.model_class().from_preset("yolov8n", num_classes=3)
family.head_output_layers             # ("yolo_v8_head_1_box_3_conv", ...)
```
"""

import dataclasses
import importlib

from edgedet.models import yolo_v8_presets
from edgedet.suggest import closest


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One row of the family table.

    Args:
        name: str. The family's name (`"yolo_v8"`).
        title: str. Its name in messages (`"YOLOv8"`).
        model_class_path: str. `"module:Class"` of the Keras model; imported
            by `model_class()` only.
        registered_names: tuple of str. The names Keras serializes the
            model and its custom objects under (`"edgedet>YOLOV8Detector"`).
        preset_names: callable returning the list of preset names.
        get_preset: callable `(name) -> dict`, a preset's constructor
            arguments (its `letterbox` among them).
        head_output_layers: tuple of str. Keras layers whose outputs are the
            raw head (kept float by default when quantizing; the exported
            graphs keep Keras layer names, see `edgedet.calibration.body`).
        input_layers: tuple of str. Layers at the network's input kept float
            when quantizing. Defaults to `()`.
    """

    name: str
    title: str
    model_class_path: str
    registered_names: tuple
    preset_names: object
    get_preset: object
    head_output_layers: tuple
    input_layers: tuple = ()

    def model_class(self):
        """Imports and returns the Keras model class (imports Keras)."""
        module, _, name = self.model_class_path.partition(":")
        return getattr(importlib.import_module(module), name)


def _yolo_v8_head_outputs(levels=3, name="yolo_v8_head"):
    # The names `edgedet.models.yolo_v8_layers.apply_yolo_v8_head` gives the
    # last convolution of each level's box and class branch.
    return tuple(
        f"{name}_{level}_{branch}_3_conv"
        for level in range(1, levels + 1)
        for branch in ("box", "class")
    )


_FAMILIES = {
    "yolo_v8": ModelFamily(
        name="yolo_v8",
        title="YOLOv8",
        model_class_path="edgedet.models.yolo_v8_detector:YOLOV8Detector",
        registered_names=("edgedet>YOLOV8Detector",),
        preset_names=yolo_v8_presets.preset_names,
        get_preset=yolo_v8_presets.get_preset,
        head_output_layers=_yolo_v8_head_outputs(),
        input_layers=("rescaling",),
    ),
}


def families():
    """Returns every `ModelFamily`, in table order."""
    return list(_FAMILIES.values())


def get_family(name):
    """Returns the `ModelFamily` called `name`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in _FAMILIES:
        raise ValueError(
            f"Unknown model family: {name!r}. Expected one of {list(_FAMILIES)}."
            + closest(name, _FAMILIES)
        )
    return _FAMILIES[name]


def preset_names():
    """Returns every family's preset names, in table order."""
    return [preset for family in families() for preset in family.preset_names()]


def family_of_preset(preset):
    """Returns the `ModelFamily` that has preset `preset`.

    Raises:
        ValueError: for an unknown preset, listing the known ones.
    """
    for family in families():
        if preset in family.preset_names():
            return family
    names = preset_names()
    raise ValueError(
        f"Unknown preset: {preset!r}. Expected one of {names}." + closest(preset, names)
    )


def head_output_layers():
    """Returns the head output layer names of every family (a set)."""
    return {name for family in families() for name in family.head_output_layers}


def input_layers():
    """Returns the float-kept input layer names of every family (a set)."""
    return {name for family in families() for name in family.input_layers}
