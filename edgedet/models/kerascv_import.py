"""Import a KerasCV 0.9 `YOLOV8Detector` into an edgedet `YOLOV8Detector`.

KerasCV's architecture is YOLOv8's with two fixed choices that edgedet
expresses in its config: the neck's two downsampling C2fs always have depth 2
(`neck_depths=[fpn_depth, fpn_depth, 2, 2]`), and the class branch is
`max(num_classes, p3_channels)` wide. edgedet uses KerasCV's layer names, so
the weights are copied name to name; every tensor is checked first, and all
mismatches are reported together.

`keras_cv` is an optional dependency (`pip install keras-cv==0.9.0`); it is
imported only when a KerasCV model has to be built or loaded.
"""

import os

from edgedet.config import LetterboxConfig
from edgedet.models.yolo_v8_detector import YOLOV8Detector, kerascv_class_channels

# KerasCV's PAN-FPN hard-codes depth 2 for its two downsampling C2f blocks.
KERASCV_DOWNSAMPLE_DEPTH = 2
# Arguments needed to rebuild a KerasCV detector for a `.weights.h5` file.
WEIGHTS_CONFIG_KEYS = (
    "stackwise_channels",
    "stackwise_depth",
    "num_classes",
    "fpn_depth",
    "include_rescaling",
    "bounding_box_format",
)


class KerasCVImportError(ValueError):
    """A KerasCV model or file cannot be converted to an edgedet model."""


def import_keras_cv():
    """Imports and returns `keras_cv`, with an actionable error when missing."""
    try:
        import keras_cv
    except ImportError as e:
        raise ImportError(
            "Importing a KerasCV model needs the optional package keras-cv "
            "(pip install keras-cv==0.9.0); it could not be imported: " + str(e)
        ) from e
    return keras_cv


def is_kerascv_detector(model):
    """Whether `model` is a `keras_cv.models.YOLOV8Detector` (no keras_cv import)."""
    return any(
        cls.__name__ == "YOLOV8Detector" and cls.__module__.startswith("keras_cv")
        for cls in type(model).__mro__
    )


def edgedet_config_from_kerascv(detector):
    """Returns the edgedet constructor arguments equivalent to a KerasCV detector.

    Args:
        detector: `keras_cv.models.YOLOV8Detector`.
    """
    backbone = detector.backbone
    if getattr(backbone, "activation", "swish") != "swish":
        raise KerasCVImportError(
            f"KerasCV backbone activation is '{backbone.activation}'; only 'swish' can be "
            "imported (KerasCV's neck and head always use swish, edgedet uses one activation)."
        )
    channels = list(backbone.stackwise_channels)
    fpn_depth = detector.fpn_depth
    return {
        "num_classes": detector.num_classes,
        "stackwise_channels": channels,
        "stackwise_depth": list(backbone.stackwise_depth),
        "neck_depths": [fpn_depth, fpn_depth, KERASCV_DOWNSAMPLE_DEPTH, KERASCV_DOWNSAMPLE_DEPTH],
        "head_class_channels": kerascv_class_channels(channels[1], detector.num_classes),
        "include_rescaling": bool(backbone.include_rescaling),
        "bounding_box_format": detector.bounding_box_format,
    }


def _layers_by_name(model):
    """Maps the names of all weighted layers of `model` (nested models flattened)."""
    found = {}

    def walk(layer):
        sub_layers = getattr(layer, "layers", None)
        if sub_layers:
            for sub in sub_layers:
                walk(sub)
        elif layer.weights:
            previous = found.setdefault(layer.name, layer)
            if previous is not layer:
                raise KerasCVImportError(
                    f"Two different KerasCV layers are named '{layer.name}'; cannot match "
                    "weights by name."
                )

    walk(model)
    return found


def copy_weights(source, target):
    """Copies the weights of `source` into `target`, matching layers by name.

    Args:
        source: Keras model (e.g. a KerasCV detector), nested models allowed.
        target: edgedet `YOLOV8Detector` with KerasCV's layer names.

    Raises:
        KerasCVImportError: listing every tensor that is missing on either
            side or whose shapes differ (with both shapes).
    """
    source_layers = _layers_by_name(source)
    target_layers = _layers_by_name(target)
    problems = []
    for name, layer in target_layers.items():
        src = source_layers.get(name)
        if src is None:
            problems.extend(f"{w.path}: missing in the KerasCV model" for w in layer.weights)
            continue
        src_weights = {w.path.split("/")[-1]: w for w in src.weights}
        for w in layer.weights:
            key = w.path.split("/")[-1]
            if key not in src_weights:
                problems.append(f"{w.path}: missing in the KerasCV model")
            elif tuple(src_weights[key].shape) != tuple(w.shape):
                problems.append(
                    f"{w.path}: KerasCV shape {tuple(src_weights[key].shape)} != edgedet "
                    f"shape {tuple(w.shape)}"
                )
        extra = set(src_weights) - {w.path.split("/")[-1] for w in layer.weights}
        problems.extend(f"{name}/{key}: not in the edgedet model" for key in sorted(extra))
    for name in sorted(set(source_layers) - set(target_layers)):
        problems.extend(f"{w.path}: not in the edgedet model" for w in source_layers[name].weights)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise KerasCVImportError(
            f"Cannot copy KerasCV weights: {len(problems)} tensor(s) do not match:\n  {shown}{more}"
        )
    for name, layer in target_layers.items():
        src_weights = {w.path.split("/")[-1]: w for w in source_layers[name].weights}
        for w in layer.weights:
            w.assign(src_weights[w.path.split("/")[-1]].numpy())


def _build_kerascv_detector(config):
    """Builds a randomly initialised KerasCV detector from `WEIGHTS_CONFIG_KEYS`."""
    if not isinstance(config, dict):
        raise KerasCVImportError(
            f"A .weights.h5 file needs `config`, a dict with keys {list(WEIGHTS_CONFIG_KEYS)}; "
            f"received: {config!r}"
        )
    missing = [k for k in WEIGHTS_CONFIG_KEYS if k not in config]
    unknown = sorted(set(config) - set(WEIGHTS_CONFIG_KEYS))
    if missing or unknown:
        raise KerasCVImportError(
            f"Invalid KerasCV config for a .weights.h5 file: missing keys {missing}, unknown "
            f"keys {unknown}. Expected keys {list(WEIGHTS_CONFIG_KEYS)}."
        )
    keras_cv = import_keras_cv()
    backbone = keras_cv.models.YOLOV8Backbone(
        stackwise_channels=list(config["stackwise_channels"]),
        stackwise_depth=list(config["stackwise_depth"]),
        include_rescaling=config["include_rescaling"],
    )
    return keras_cv.models.YOLOV8Detector(
        backbone=backbone,
        num_classes=config["num_classes"],
        bounding_box_format=config["bounding_box_format"],
        fpn_depth=config["fpn_depth"],
    )


def load_kerascv_detector(path, config=None):
    """Loads a KerasCV detector from a `.keras` file or a `.weights.h5` file.

    Args:
        path: str or path-like. A KerasCV `.keras` file, or a `.weights.h5`
            file saved by `keras_cv.models.YOLOV8Detector.save_weights`.
        config: dict or None. For `.weights.h5` only: the KerasCV arguments
            `WEIGHTS_CONFIG_KEYS`. Defaults to None.
    """
    from edgedet.backend import keras as get_keras

    keras = get_keras()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise KerasCVImportError(f"No such KerasCV model file: '{path}'.")
    if path.endswith(".weights.h5"):
        detector = _build_kerascv_detector(config)
        try:
            detector.load_weights(path)
        except Exception as e:
            raise KerasCVImportError(
                f"Could not load KerasCV weights '{path}' into a detector built from {config}: {e}"
            ) from e
        return detector
    if not path.endswith(".keras"):
        raise KerasCVImportError(
            f"Unsupported KerasCV file: '{path}'. Expected a '.keras' or '.weights.h5' file."
        )
    if config is not None:
        raise KerasCVImportError(
            "`config` is only for .weights.h5 files; a .keras file carries its own config."
        )
    import_keras_cv()  # registers KerasCV's classes for deserialization
    try:
        detector = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:
        raise KerasCVImportError(f"Could not load KerasCV model '{path}': {e}") from e
    if not is_kerascv_detector(detector):
        raise KerasCVImportError(
            f"'{path}' holds a {type(detector).__name__}, not a keras_cv YOLOV8Detector."
        )
    return detector


def from_kerascv(source, config=None, class_names=None, letterbox=None):
    """Converts a KerasCV YOLOv8 detector into an edgedet `YOLOV8Detector`.

    Args:
        source: a live `keras_cv.models.YOLOV8Detector`, or the path of a
            KerasCV `.keras` file or `.weights.h5` file.
        config: dict or None. Only for `.weights.h5`: the KerasCV arguments
            `stackwise_channels`, `stackwise_depth`, `num_classes`,
            `fpn_depth`, `include_rescaling`, `bounding_box_format`.
            Defaults to None.
        class_names: list of str or None. Defaults to None (`class_0`, ...).
        letterbox: `LetterboxConfig`, dict or None. Defaults to KerasCV's
            letterbox (bottom-right, 0) at 640.

    Returns:
        An edgedet `YOLOV8Detector` whose raw head equals KerasCV's (class
        logits here, sigmoid scores in KerasCV).

    Example:
    ```python
    kcv = keras_cv.models.YOLOV8Detector(backbone=..., num_classes=20,
                                         bounding_box_format="xyxy", fpn_depth=1)
    model = edgedet.models.from_kerascv(kcv, class_names=names)
    ```
    """
    if isinstance(source, (str, os.PathLike)):
        detector = load_kerascv_detector(source, config)
    elif is_kerascv_detector(source):
        if config is not None:
            raise KerasCVImportError("`config` is only for .weights.h5 files.")
        detector = source
    else:
        raise KerasCVImportError(
            f"Expected a keras_cv YOLOV8Detector or a path, received: {type(source).__name__}."
        )
    model = YOLOV8Detector(
        **edgedet_config_from_kerascv(detector),
        class_names=class_names,
        letterbox=LetterboxConfig.kerascv(640) if letterbox is None else letterbox,
    )
    copy_weights(detector, model)
    return model
