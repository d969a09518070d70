"""`edgedet import`: weights trained elsewhere to an edgedet `.keras` model."""

import contextlib
import pathlib

import click

from edgedet.cli.common import user_errors


@click.group("import")
def import_group():
    """Convert weights trained with another framework into an edgedet .keras model.

    The model keeps the preprocessing it was trained with, so `edgedet export`
    and `edgedet parity` on it need no extra flags.
    """


def read_class_names(path):
    """Reads class names from a text file (one per line) or a YAML file with `names`.

    Args:
        path: str or path-like. A `.txt` file, or an Ultralytics `data.yaml`
            whose `names` is a list or an `{index: name}` mapping.
    """
    path = pathlib.Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not isinstance(names, list) or not names:
            raise ValueError(f"'{path}' has no 'names' list or {{index: name}} mapping.")
        return [str(n) for n in names]
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"'{path}' lists no class names (expected one per line).")
    return names


def _classes(value):
    """`--classes`: an int (the class count), a names file or a comma list -> (num_classes, names).

    An existing file wins over a comma list (a file name may hold a comma).
    """
    if value is None:
        return None, None
    path = pathlib.Path(value)
    if path.is_file():
        return None, read_class_names(path)
    if "," in value:
        names = [name.strip() for name in value.split(",")]
        empty = [i + 1 for i, name in enumerate(names) if not name]
        if empty:
            raise click.BadParameter(
                f"'{value}' has an empty class name (position {empty[0]} of {len(names)}); "
                "expected names separated by single commas, e.g. 'cat,dog,bird'.",
                param_hint="--classes",
            )
        return None, names
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is neither a class count nor an existing names file (nor a comma "
            "list of names such as 'cat,dog').",
            param_hint="--classes",
        ) from None
    if count < 1:
        raise click.BadParameter(f"expected a class count >= 1, got {count}.",
                                 param_hint="--classes")
    return count, None


@contextlib.contextmanager
def _missing_packages():
    """An optional package (torch, ultralytics) that is not installed is a user error."""
    try:
        yield
    except ImportError as e:
        raise click.ClickException(str(e)) from e


@import_group.command("ultralytics")
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .keras file to write.")
@click.option("--size", type=click.Choice(["n", "s", "m", "l", "x"]), default=None,
              help="Check that the weights are this scale of their family's yaml (yolov8.yaml, "
                   "yolo11.yaml), e.g. for a plain state_dict. Default: any layout, read from "
                   "the tensor shapes.")
@click.option("--classes", default=None, metavar="N|FILE|A,B,...",
              help="The class count, a file of class names (one per line, or a data.yaml "
                   "with 'names'), or a comma list of names (cat,dog,bird). Default: the "
                   "checkpoint's names, else class_0, class_1, ...")
@click.option("--imgsz", type=int, default=None,
              help="Model input size (multiple of 32). Default: the checkpoint's training "
                   "imgsz, else 640.")
@click.option("--trust-pickle", is_flag=True,
              help="Read a full Ultralytics checkpoint (a Python pickle) with the full loader, "
                   "which RUNS CODE stored in the file. Only for files you trust; without it "
                   "only plain state_dicts (and .npz) are read.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def ultralytics_command(weights, out, size, classes, imgsz, force, trust_pickle):
    """Import Ultralytics YOLOv8 or YOLO11 detection weights (best.pt, a state_dict, or a .npz).

    WEIGHTS is a full Ultralytics checkpoint (needs the `ultralytics` package:
    pip install 'edgedet[ultralytics]'), a plain PyTorch state_dict file (read
    with torch.load(weights_only=True); give --size and --classes), or a .npz of
    the state_dict (no torch needed). The family is recognised from the
    tensor names, the layout from their shapes. The model gets Ultralytics'
    preprocessing: centred letterbox padded with 114, RGB, /255, class-aware
    NMS.

    WARNING: a full Ultralytics checkpoint is a Python pickle, and reading it
    runs code stored in the file, so it is read only with --trust-pickle.
    Import only checkpoints you trust (a plain state_dict is read without
    running code).

    Not importable: YOLOv5u, YOLO26, YOLOv8-p2/p6, segmentation, pose, OBB
    and classification models.

    \b
    Example:
      edgedet import ultralytics runs/detect/train/weights/best.pt --trust-pickle \\
          --out best.keras
      edgedet export --model best.keras --target onnx --out artifacts/
    """
    with user_errors(), _missing_packages():
        from edgedet.files import check_writable_output
        from edgedet.models.ultralytics_import import import_ultralytics

        if pathlib.Path(out).suffix != ".keras":
            raise click.BadParameter(f"expected a .keras file, got '{out}'.", param_hint="--out")
        check_writable_output(out, force)  # fail before reading any weights
        num_classes, names = _classes(classes)
        path, model = import_ultralytics(weights, out, size=size, num_classes=num_classes,
                                         class_names=names, image_size=imgsz, force=force,
                                         trust_pickle=trust_pickle)
    from edgedet.models import families

    letterbox = model.letterbox
    layout = f"custom {families.family_of_model(model).title} layout"
    click.echo(
        f"Wrote {path}: {model.preset or layout}, {model.num_classes} classes, "
        f"{model.count_params():,} parameters, input {letterbox.size} "
        f"(letterbox {letterbox.pad_position}, pad {letterbox.pad_value})."
    )
