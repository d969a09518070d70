"""The table of model families: what edgedet knows about each architecture.

A family row (keras-hub style) names the Keras class (imported only when a
model is built, so this module costs no Keras import), its presets, the name
Keras serializes it under, the Keras layers the INT8 path treats apart (the
head's output convolutions, kept float and found by name in the exported
graphs, the input layers and the conv blocks the INT8 artifacts keep float),
and the family's hooks: its decode
(stage 3 of the end-to-end graph), its head-bias initialisation (training),
its layout description (`edgedet info`), the modules that register its Keras
objects, and its Ultralytics key map. Hooks are `"module:attr"` strings,
imported on use. A new family is its own modules (layers, model, presets,
Ultralytics key map) plus one row: `_FAMILIES` below, or `register_family`.

```python
from edgedet.models.families import family_of_model, family_of_preset

family = family_of_preset("yolov8n")  # the "yolo_v8" row
model = family.model_class().from_preset("yolov8n", num_classes=3)
family.head_output_layers             # ("yolo_v8_head_1_box_3_conv", ...)
family_of_model(model) is family      # True
```
"""

import dataclasses
import importlib

from edgedet.models import yolo11_presets, yolo26_presets, yolo_v8_presets
from edgedet.suggest import closest

DFL_DECODE = "edgedet.decode:decode"
DETECT_BIAS_INIT = "edgedet.models.heads:init_detect_head_biases"


def load_attr(path):
    """Imports and returns the object named by a `"module:attr"` string."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


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
            raw head, per level box then class (kept float by default when
            quantizing; the exported graphs keep Keras layer names, see
            `edgedet.calibration.body`).
        input_layers: tuple of str. Layers at the network's input kept float
            when quantizing. Defaults to `()`.
        int8_float_layers: tuple of str. Conv blocks (Keras `conv_bn`
            units, as `edgedet.calibration.sensitivity` names them:
            `yolo11_head_1_class_1_dw`) that every INT8 artifact keeps float
            by default (ONNX Q/DQ U8S8 and S8S8, the TensorRT cache, TFLite
            INT8, OpenVINO INT8; `edgedet.calibration.body.family_float_blocks`).
            Chosen by the sensitivity search on a trained model; the figures
            and what they cost are in `docs/benchmarks.md`. Defaults to `()`.
        keras_modules: tuple of str. Modules whose import registers the
            family's Keras objects (`edgedet.keras_objects`). Defaults to
            the model class's module.
        decode_path: str. `"module:function"` decoding the raw head,
            called as `edgedet.decode.decode` is. Defaults to the DFL decode.
        head_bias_init_path: str. `"module:function"` called as
            `(detector, head_output_layers, objects_per_image)` before
            training a fresh model. Defaults to Ultralytics' `Detect.bias_init`.
        describe_path: str or None. `"module:function"` returning the
            JSON-ready layout of a model (`edgedet info`). None: the model's
            `get_config()` without the settings every family shares.
            Defaults to None.
        ultralytics_path: str or None. Module of the family's Ultralytics
            key map (`why_not`, `infer_layout`, `matching_preset`,
            `weight_table`, `HEAD`, `PRESET_PREFIX`; see
            `edgedet.models.ultralytics_import`). None: no Ultralytics import.
            Defaults to None.
        heads: tuple of str. The detection heads the family's models carry
            (`edgedet.config.HEADS`), the first the default. A model with
            `"one2one"` returns `"one2one_boxes"` / `"one2one_classes"` beside
            `"boxes"` / `"classes"`, decoded by the same `decode_path`.
            Defaults to `("one2many",)`.
    """

    name: str
    title: str
    model_class_path: str
    registered_names: tuple
    preset_names: object
    get_preset: object
    head_output_layers: tuple
    input_layers: tuple = ()
    int8_float_layers: tuple = ()
    keras_modules: tuple = None
    decode_path: str = DFL_DECODE
    head_bias_init_path: str = DETECT_BIAS_INIT
    describe_path: str = None
    ultralytics_path: str = None
    heads: tuple = ("one2many",)

    def model_class(self):
        """Imports and returns the Keras model class (imports Keras)."""
        return load_attr(self.model_class_path)

    def modules_to_register(self):
        """The modules whose import registers this family's Keras objects."""
        if self.keras_modules is not None:
            return tuple(self.keras_modules)
        return (self.model_class_path.partition(":")[0],)

    def decoder(self):
        """Returns the family's decode function (stage 3 of the end-to-end graph)."""
        return load_attr(self.decode_path)

    def init_head_biases(self, detector, objects_per_image=5.0):
        """Initialises the head biases of a fresh `detector` for training."""
        load_attr(self.head_bias_init_path)(detector, self.head_output_layers, objects_per_image)

    def describe_layout(self, model):
        """Returns the JSON-ready layout of `model` (for `edgedet info`)."""
        if self.describe_path is not None:
            return load_attr(self.describe_path)(model)
        shared = {"name", "trainable", "num_classes", "class_names", "letterbox", "preset",
                  "bounding_box_format", "include_rescaling", "dtype"}
        layout = {k: v for k, v in model.get_config().items() if k not in shared}
        layout.update(strides=list(model.strides), reg_max=model.reg_max, heads=list(self.heads))
        return layout

    def ultralytics(self):
        """Returns the family's Ultralytics key map module, or None."""
        if self.ultralytics_path is None:
            return None
        return importlib.import_module(self.ultralytics_path)


def _head_outputs(name, levels=3):
    # The names the families' head helpers give the last convolution of each
    # level's box and class branch (`{name}_{level}_{box|class}_3_conv`).
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
        head_output_layers=_head_outputs("yolo_v8_head"),
        input_layers=("rescaling",),
        ultralytics_path="edgedet.models.yolo_v8_ultralytics",
    ),
    "yolo11": ModelFamily(
        name="yolo11",
        title="YOLO11",
        model_class_path="edgedet.models.yolo11_detector:YOLO11Detector",
        registered_names=("edgedet>YOLO11Detector", "edgedet>MultiHeadAttention2D"),
        preset_names=yolo11_presets.preset_names,
        get_preset=yolo11_presets.get_preset,
        head_output_layers=_head_outputs("yolo11_head"),
        input_layers=("rescaling",),
        # The sensitivity search's choice on a YOLO11n trained by Ultralytics (S8S8,
        # docs/benchmarks.md "YOLO11"): the second stem conv, the P3 class branch's
        # last 1x1 and the first C3k2's input conv.
        int8_float_layers=("stem_2", "yolo11_head_1_class_2", "stack1_c3k2_cv1"),
        ultralytics_path="edgedet.models.yolo11_ultralytics",
    ),
    "yolo26": ModelFamily(
        name="yolo26",
        title="YOLO26",
        model_class_path="edgedet.models.yolo26_detector:YOLO26Detector",
        registered_names=("edgedet>YOLO26Detector", "edgedet>MultiHeadAttention2D"),
        preset_names=yolo26_presets.preset_names,
        get_preset=yolo26_presets.get_preset,
        # The one-to-many head's, then the one-to-one head's.
        head_output_layers=_head_outputs("yolo26_head") + _head_outputs("yolo26_one2one_head"),
        input_layers=("rescaling",),
        decode_path="edgedet.decode:decode_distances",
        head_bias_init_path="edgedet.models.yolo26_detector:init_head_biases",
        ultralytics_path="edgedet.models.yolo26_ultralytics",
        heads=("one2many", "one2one"),
    ),
}
_BUILT_IN = tuple(_FAMILIES)


def register_family(family):
    """Adds a `ModelFamily` row to the table (a plug-in family, or a test's).

    Raises:
        ValueError: for a name or a preset that another family already has.
    """
    if not isinstance(family, ModelFamily):
        raise ValueError(f"Expected a ModelFamily, received: {type(family).__name__}.")
    if family.name in _FAMILIES:
        raise ValueError(f"A model family named {family.name!r} is already registered.")
    taken = set(family.preset_names()) & set(preset_names())
    if taken:
        raise ValueError(
            f"Family {family.name!r} has presets {sorted(taken)} that another family has."
        )
    _FAMILIES[family.name] = family


def unregister_family(name):
    """Removes a family added by `register_family` (built-in rows stay).

    Raises:
        ValueError: for an unknown or built-in family.
    """
    get_family(name)
    if name in _BUILT_IN:
        raise ValueError(f"The built-in model family {name!r} cannot be removed.")
    del _FAMILIES[name]


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


def preset_summary():
    """Every family's presets in short, for help texts: `"yolov8n/s/m/l/x, pico, ..."`."""
    parts = []
    for family in families():
        names = family.preset_names()
        scaled = [n for n in names if n[:-1] + "n" in names and n[-1] in "nsmlx"]
        for name in names:
            if name in scaled and name.endswith("n"):
                parts.append(name + "/" + "/".join(n[-1] for n in scaled
                                                     if n[:-1] == name[:-1] and n != name))
            elif name not in scaled:
                parts.append(name)
    return ", ".join(parts)


def get_preset(name):
    """Returns a copy of the constructor arguments of preset `name`, of any family."""
    return family_of_preset(name).get_preset(name)


def from_preset(name, num_classes=None, class_names=None, **overrides):
    """Builds a randomly initialised model of any family from preset `name`.

    Args:
        name: str. One of `preset_names()` (`"yolov8n"`, `"yolo11n"`, ...).
        num_classes, class_names, **overrides: see the family class's
            `from_preset`.
    """
    return family_of_preset(name).model_class().from_preset(
        name, num_classes=num_classes, class_names=class_names, **overrides)


def family_of_model(model):
    """Returns the `ModelFamily` whose class `model` is an instance of, or None.

    Compares the class path of `model`'s type and its bases with each row's
    `model_class_path`, so no family module is imported.
    """
    paths = {f"{cls.__module__}:{cls.__qualname__}" for cls in type(model).__mro__}
    for family in families():
        if family.model_class_path in paths:
            return family
    return None


def head_output_layers():
    """Returns the head output layer names of every family (a set)."""
    return {name for family in families() for name in family.head_output_layers}


def input_layers():
    """Returns the float-kept input layer names of every family (a set)."""
    return {name for family in families() for name in family.input_layers}


def int8_float_layers():
    """Returns the conv blocks every family's INT8 artifacts keep float, in table order."""
    return tuple(dict.fromkeys(name for family in families() for name in family.int8_float_layers))
