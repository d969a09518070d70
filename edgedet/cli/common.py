"""Helpers shared by the commands: model resolution, error translation, options."""

import contextlib
import pathlib

import click

from edgedet.config import HEADS, LETTERBOX_SHAPES
from edgedet.exporters.registry import letterbox_help

#: Exit code of predict / benchmark when some inputs could not be read (the rest
#: were processed and written).
EXIT_SOME_INPUTS_FAILED = 3

# Errors a user can act on. Library code raises these with a message that
# names the bad value; the CLI shows the message without a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError)


@contextlib.contextmanager
def user_errors():
    """Turns library errors into `click.ClickException`s (exit code 1)."""
    try:
        yield
    except click.ClickException:
        raise
    except USER_ERRORS as e:
        raise click.ClickException(str(e) or repr(e)) from e


def artifact_kinds_text():
    """The built-in exported-artifact kinds (`edgedet.runtimes.kinds.KINDS`), for `--help`.

    The table is plain Python (no numpy, no runtime), so reading it when the
    command is defined keeps `edgedet --help` instant. Built-in rows only:
    the help must not depend on what was registered before the CLI was imported.
    """
    from edgedet.runtimes.kinds import KINDS

    return "; ".join(kind.description for kind in KINDS if kind.artifact)


# Packages of the workstation install (not in the device install).
WORKSTATION_PACKAGES = ("tensorflow", "keras", "tf2onnx", "keras_cv")


def missing_workstation_message(package, command=None):
    """What to tell a user whose command needs TensorFlow / Keras on a device install."""
    what = f"`edgedet {command}`" if command else "This command"
    return (
        f"{what} needs TensorFlow and Keras, and the Python package '{package}' is not "
        "installed: this is the device install, which runs `info`, `predict`, `benchmark` and "
        "`parity --reference` on exported artifacts (.onnx, .engine; .tflite with "
        "ai-edge-litert). Keras models (.keras, presets, the built-in model) and `export`, "
        "`calibrate`, `train`, `import` need the workstation install: Python >= 3.11, "
        "`pip install edgedet` (see the README). On the device, use the artifacts the "
        "workstation exported."
    )


def preset_names():
    from edgedet.models import families

    return sorted(families.preset_names())


def resolve_model(spec):
    """Returns a Keras YOLOv8 for `spec`: a `.keras` path, a built-in trained
    model (`shapes`, the default) or a preset name.

    A preset builds the architecture with random weights (a warning says so).
    """
    from edgedet.models.weights import TRAINED_MODELS, load_trained
    from edgedet.suggest import closest

    path = pathlib.Path(spec)
    if path.exists() or path.suffix:
        from edgedet.models.loading import load_model

        return load_model(path)
    if spec in TRAINED_MODELS:
        return load_trained(spec)
    names = sorted(TRAINED_MODELS) + preset_names()
    if spec in names:
        from edgedet.models import families

        click.echo(f"note: '{spec}' is a preset: random weights, for trying the pipeline.",
                   err=True)
        return families.family_of_preset(spec).model_class().from_preset(spec)
    raise click.ClickException(
        f"Model '{spec}' is neither an existing file, a built-in model nor a preset. "
        f"Built-in models and presets: {names}."
        + closest(spec, names)
    )


def inference_options(function):
    """The NMS / output options shared by `predict` and `export`."""
    options = [
        click.option("--imgsz", type=int, default=None,
                     help="Model input size (multiple of 32). Default: the model's own."),
        click.option("--letterbox", type=click.Choice(LETTERBOX_SHAPES),
                     default=None,
                     help="Network input: square (imgsz x imgsz, every runtime) or rect "
                          "(the long side at imgsz, the short side padded only to a multiple "
                          "of 32, as Ultralytics' PyTorch predict: a 1280x720 frame runs at "
                          "640x384). " + letterbox_help()),
        click.option("--conf", type=click.FloatRange(0, 1), default=None,
                     help="Confidence threshold. Default: 0.25."),
        click.option("--iou", type=click.FloatRange(0, 1), default=None,
                     help="NMS IoU threshold. Default: 0.7."),
        click.option("--max-det", type=click.IntRange(min=1), default=None,
                     help="Detections per image (fixed output size). Default: 100."),
        click.option("--agnostic", is_flag=True, default=False,
                     help="Class-agnostic NMS (KerasCV's behaviour). Default: class-aware."),
        click.option("--box-format", default=None,
                     help="Output box format: xyxy, yxyx, xywh, center_xywh, center_yxhw, "
                          "rel_xyxy, rel_yxyx, rel_xywh, rel_center_xywh. Default: xyxy."),
        click.option("--head", type=click.Choice(HEADS), default=None,
                     help="Detection head: one2many (NMS in the graph; every model) or "
                          "one2one (NMS-free top-k selection; families with a one-to-one "
                          "head, YOLO26). Default: one2many."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def inference_config(model, imgsz=None, conf=None, iou=None, max_det=None, agnostic=False,
                     box_format=None, head=None, letterbox=None):
    """The model's default `InferenceConfig` with the command-line overrides.

    Raises:
        ValueError: `head` is not one of the model's family's heads.
    """
    import dataclasses

    from edgedet.end_to_end import check_head

    config = model.default_inference_config()
    shape = letterbox  # --letterbox: square or rect.
    letterbox = config.letterbox
    if imgsz is not None:
        letterbox = dataclasses.replace(letterbox, size=imgsz)
    if shape is not None:
        letterbox = dataclasses.replace(letterbox, shape=shape)
    nms = config.nms
    changes = {k: v for k, v in [("confidence_threshold", conf), ("iou_threshold", iou),
                                 ("max_detections", max_det)] if v is not None}
    if agnostic:
        changes["class_aware"] = False
    nms = dataclasses.replace(nms, **changes)
    if head is not None:
        check_head(model, head)  # Before any work, naming the family and its heads.
        config = config.replace(head=head)
    return config.replace(letterbox=letterbox, nms=nms,
                          bounding_box_format=box_format or config.bounding_box_format)
