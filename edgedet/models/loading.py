"""Load an edgedet (or KerasCV) YOLOv8 `.keras` file safely, and describe a model.

`.keras` files are always loaded with Keras' `safe_mode=True`: a file that
would run arbitrary Python on load (a `Lambda` layer, a serialized lambda
function) is refused with an explanation, before Keras sees it.
"""

import json
import math
import os
import zipfile

from edgedet.backend import keras as _keras

KERASCV_CLASS = "keras_cv>YOLOV8Detector"


class ModelLoadError(ValueError):
    """A model file is missing, corrupt, unsafe, or not a YOLOv8 detector."""


def _read_config(path):
    """Returns the parsed `config.json` of a `.keras` archive."""
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(
            f"'{path}' is not a valid .keras file: it is not a zip archive (corrupt, "
            "truncated, or another format such as a legacy .h5 file)."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("config.json")
        return json.loads(text)
    except KeyError:
        raise ModelLoadError(
            f"'{path}' is not a valid .keras file: the archive has no config.json."
        ) from None
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelLoadError(f"'{path}' is not a valid .keras file: {e}") from e


def _unsafe_entries(config):
    """Yields descriptions of entries that `safe_mode` would refuse to deserialize."""
    if isinstance(config, dict):
        class_name = config.get("class_name")
        if class_name == "Lambda":
            name = (config.get("config") or {}).get("name", "?")
            yield f"Lambda layer '{name}'"
        elif class_name == "__lambda__":
            yield "a serialized Python lambda function"
        for value in config.values():
            yield from _unsafe_entries(value)
    elif isinstance(config, list):
        for value in config:
            yield from _unsafe_entries(value)


def _refuse_unsafe(path, what):
    return ModelLoadError(
        f"Refused to load '{path}': it contains {what}. Loading it would run Python code "
        "stored in the file, and edgedet loads models with Keras safe_mode=True so that "
        "opening a model file cannot execute code. Rebuild the model without Lambda layers "
        "(edgedet's YOLOV8Detector has none)."
    )


def _outputs_description(model):
    """Describes a model's output shapes, e.g. `[(None, 3)]`, for error messages."""
    try:
        output = model.output
    except (AttributeError, ValueError):
        output = getattr(model, "outputs", None)
    if isinstance(output, dict):
        return {key: tuple(value.shape) for key, value in output.items()}
    if isinstance(output, (list, tuple)):
        return [tuple(t.shape) for t in output]
    return "unknown" if output is None else tuple(output.shape)


def load_model(path, compile=False):
    """Loads an edgedet `YOLOV8Detector` from a `.keras` file (safe mode).

    A KerasCV `YOLOV8Detector` `.keras` file is accepted too when keras-cv is
    installed: it is converted with `edgedet.models.from_kerascv`.

    Args:
        path: str or path-like. A `.keras` file.
        compile: bool. Restore the training configuration saved with the
            model. Defaults to False.

    Returns:
        `edgedet.models.YOLOV8Detector`.

    Raises:
        ModelLoadError: for a missing, corrupt or unsafe file, or a model that
            is not a YOLOv8 detector.
    """
    keras = _keras()
    from edgedet.models import families

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"No such model file: '{path}'.")
    if os.path.isdir(path):
        raise ModelLoadError(
            f"'{path}' is a folder; expected a .keras file (exported SavedModel folders are "
            "artifacts: open them with an edgedet runtime)."
        )
    if path.endswith(".weights.h5"):
        raise ModelLoadError(
            f"'{path}' holds weights only; expected a .keras file. KerasCV weights can be "
            "imported with edgedet.models.from_kerascv(path, config=...)."
        )
    if not path.endswith(".keras"):
        raise ModelLoadError(f"Unsupported model file '{path}': expected a '.keras' file.")
    config = _read_config(path)
    for what in _unsafe_entries(config):
        raise _refuse_unsafe(path, what)

    if config.get("registered_name") == KERASCV_CLASS or (
        config.get("class_name") == "YOLOV8Detector"
        and str(config.get("module", "")).startswith("keras_cv")
    ):
        from edgedet.models import kerascv_import

        try:
            return kerascv_import.from_kerascv(path)
        except ImportError as e:
            raise ModelLoadError(f"'{path}' is a KerasCV YOLOV8Detector file. {e}") from e

    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as e:
        if "safe_mode" in str(e):
            raise _refuse_unsafe(path, "code that Keras' safe mode refuses") from e
        raise ModelLoadError(f"Could not load '{path}': {type(e).__name__}: {e}") from e
    if not isinstance(model, tuple(f.model_class() for f in families.families())):
        raise ModelLoadError(
            f"'{path}' holds a {type(model).__name__} ('{model.name}'), not an edgedet "
            f"YOLOV8Detector: its head is not YOLOv8-shaped (outputs "
            f"{_outputs_description(model)}; expected {{'boxes': (batch, anchors, 64), "
            "'classes': (batch, anchors, num_classes)})."
        )
    return model


def describe_model(model):
    """Returns a JSON-ready summary of an edgedet detector (for `edgedet info`).

    The settings every family shares, then the family's own `layout`
    (`ModelFamily.describe_layout`).

    Args:
        model: a model of a registered family (`edgedet.models.families`),
            such as `edgedet.models.YOLOV8Detector`.

    Raises:
        ValueError: for a model of no registered family.
    """
    from edgedet.models import families

    family = families.family_of_model(model)
    if family is None:
        known = ", ".join(f.model_class_path.rpartition(":")[2] for f in families.families())
        raise ValueError(
            f"Expected an edgedet detector ({known}), received: {type(model).__name__}."
        )
    size = model.letterbox.size
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return {
        "model": type(model).__name__,
        "family": family.name,
        "heads": list(family.heads),  # `edgedet export --head` choices, the default first
        "preset": model.preset,
        "num_classes": model.num_classes,
        "class_names": list(model.class_names),
        "input_size": size,
        "num_anchors": sum((size // s) ** 2 for s in model.strides),
        "letterbox": model.letterbox.to_dict(),
        "bounding_box_format": model.bounding_box_format,
        "include_rescaling": model.include_rescaling,
        "parameters": int(model.count_params()),
        "trainable_parameters": trainable,
        "dtype_policy": model.dtype_policy.name,
        "int8_float_blocks": list(family.int8_float_layers),
        "layout": family.describe_layout(model),
    }
