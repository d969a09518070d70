"""What every `Detect`-head detector class shares (YOLOv8, YOLO11, YOLO26): argument checks,
strides, reg_max, the default inference settings and the raw head's outputs.

No Keras import at import time: the mixin is mixed into each family's `keras.Model`
subclass.
"""

from edgedet.config import InferenceConfig

STRIDES = (8, 16, 32)
# Distribution Focal Loss bins per box side: 4 sides x 16 bins = 64 channels.
REG_MAX = 16


def int_list(name, value, length):
    """`value` as a list of `length` positive ints, else a `ValueError` naming it."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != length
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise ValueError(f"Invalid {name}: {value!r}. Expected a list of {length} positive ints.")
    return [int(v) for v in value]


def preset_arguments(presets, name, family):
    """A copy of the constructor arguments of preset `name` in a family's `presets` table.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    import copy

    from edgedet.suggest import closest

    if name not in presets:
        raise ValueError(
            f"Unknown {family} preset: '{name}'. Expected one of {list(presets)}."
            + closest(name, presets)
        )
    return copy.deepcopy(presets[name])


def check_num_classes(num_classes):
    """Raises a `ValueError` unless `num_classes` is an int >= 1."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"Invalid num_classes: {num_classes!r}. Expected an int >= 1.")


def check_class_names(class_names, num_classes):
    """The class names as a tuple (`class_0`, ... for None), one per class."""
    if class_names is None:
        return tuple(f"class_{i}" for i in range(num_classes))
    if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
        raise ValueError(f"Invalid class_names: {class_names!r}. Expected a list of str.")
    if len(class_names) != num_classes:
        raise ValueError(
            f"Got {len(class_names)} class_names for num_classes={num_classes}; "
            "expected one name per class."
        )
    return tuple(class_names)


def ultralytics_class_channels(p3_channels, num_classes):
    """Ultralytics' class-branch width: `max(p3_channels, min(num_classes, 100))`."""
    return max(p3_channels, min(num_classes, 100))


class DetectHeadMixin:
    """Properties of a detector whose raw head is Ultralytics' `Detect` (3 levels, DFL 16)."""

    @property
    def strides(self):
        """Strides of the three output levels, in anchor order: `(8, 16, 32)`."""
        return STRIDES

    @property
    def reg_max(self):
        """DFL bins per box side (16): `boxes` has `4 * reg_max` channels."""
        return REG_MAX

    def _set_common(self, num_classes, head_class_channels, include_rescaling, activation,
                    bounding_box_format, class_names, letterbox, preset):
        """Stores the constructor arguments every `Detect`-head family shares."""
        self.num_classes = num_classes
        self.head_class_channels = head_class_channels
        self.include_rescaling = bool(include_rescaling)
        self.activation = activation
        self.bounding_box_format = bounding_box_format
        self.class_names = class_names
        self.letterbox = letterbox
        self.preset = preset

    def _common_config(self):
        """The `get_config` entries every `Detect`-head family shares."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "head_class_channels": self.head_class_channels,
            "include_rescaling": self.include_rescaling,
            "activation": self.activation,
            "bounding_box_format": self.bounding_box_format,
            "class_names": list(self.class_names),
            "letterbox": self.letterbox.to_dict(),
            "preset": self.preset,
        }

    def default_inference_config(self):
        """Returns the `InferenceConfig` matching the model's letterbox and box format."""
        return InferenceConfig(
            letterbox=self.letterbox, bounding_box_format=self.bounding_box_format
        )


def raw_head_outputs(box_levels, class_levels, prefix=""):
    """The raw head as every family's `call()` returns it: `{"boxes": [B, A, 4 * reg_max],
    "classes": [B, A, C]}` (logits), levels concatenated stride 8, 16, 32, in float32.

    `prefix` names a second head's outputs and layers (`"one2one_"`:
    `{"one2one_boxes", "one2one_classes"}`). Defaults to `""`.
    """
    from edgedet.backend import keras

    keras = keras()
    box_out = keras.layers.Concatenate(axis=1, name=f"{prefix}box_concat")(box_levels)
    class_out = keras.layers.Concatenate(axis=1, name=f"{prefix}class_concat")(class_levels)
    return {
        f"{prefix}boxes": keras.layers.Activation(
            "linear", dtype="float32", name=f"{prefix}boxes")(box_out),
        f"{prefix}classes": keras.layers.Activation(
            "linear", dtype="float32", name=f"{prefix}classes")(class_out),
    }
