"""`edgedet export`: a model to SavedModel / ONNX / TFLite / TensorRT artifacts."""

import pathlib
import time

import click

from edgedet.calibration.methods import DEFAULT_METHOD, METHODS
from edgedet.cli.common import inference_config, inference_options, resolve_model, user_errors
from edgedet.cpu import CPU_CHOICES
from edgedet.exporters.registry import precision_names, precisions_help, targets_help

# Default parity images: synthetic shapes of varied sizes and aspect ratios (the
# letterbox is exercised), generated here, so nothing is downloaded.
PARITY_IMAGES = "synthetic:shapes?n=12&seed=2024&size=200-480x240-640"
PARITY_SIZE = 32


def _parity_images(parity_images, calib_data, precision):
    """The parity check's images: the given ones, else `PARITY_SIZE` of an INT8 export's
    --calib-data folder (a model trained on other classes finds little in synthetic shapes,
    and a gate on a few borderline detections says little about INT8), else `PARITY_IMAGES`."""
    if parity_images is not None:
        return parity_images
    if precision != "int8" or not calib_data or not pathlib.Path(calib_data).is_dir():
        return PARITY_IMAGES
    from edgedet.sources import ImageSource

    source = ImageSource(calib_data)
    if not source.paths:
        return PARITY_IMAGES
    return [str(path) for path in source.sample(PARITY_SIZE, seed=1).paths]


def _size(num_bytes):
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024


def _table(rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line.format(*headers), line.format(*("-" * w for w in widths))]
                     + [line.format(*map(str, row)) for row in rows])


def _comma_list(*texts):
    """Non-empty, stripped items of comma-separated option values."""
    return [item.strip() for text in texts for item in text.split(",") if item.strip()]


def _trt_shapes(text):
    from edgedet.exporters.tensorrt_plan import parse_shape

    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise click.BadParameter(
            f"{text!r}: expected MIN,OPT,MAX, e.g. '32x32,720x1280,2160x3840'.",
            param_hint="--trt-shapes")
    try:
        return tuple(parse_shape(p.strip()) for p in parts)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--trt-shapes") from error


@click.command("export")
@click.option("--model", "-m", "model_spec", default="shapes", show_default=True,
              metavar="MODEL",
              help="A .keras file (edgedet or KerasCV), a built-in trained model (shapes) "
                   "or a preset name (random weights).")
@click.option("--target", "-t", "targets", multiple=True, default=("all",), show_default=True,
              help=targets_help())
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder.")
@inference_options
@click.option("--precision", type=click.Choice(precision_names()), default="fp32",
              show_default=True,
              help=precisions_help())
@click.option("--option", "target_options", multiple=True, metavar="TARGET:KEY=VALUE",
              help="An option of one target's exporter (the target table's options), e.g. "
                   "'onnx:opset=18' or 'triton:max_batch_size=4'; VALUE is read as YAML. "
                   "Repeatable.")
@click.option("--calib-data", default=None, metavar="PATH",
              help="INT8 calibration images: a folder, a COCO JSON / YOLO data.yaml / VOC root, "
                   "or 'synthetic:shapes?n=300'. Default: edgedet's synthetic shapes.")
@click.option("--calib-method", type=click.Choice(METHODS),
              default=DEFAULT_METHOD, show_default=True,
              help="INT8 range calibration method: p90_min_max takes the 90th percentile over the "
                   "images of each image's extremes; the others are ONNX Runtime's "
                   "calibrators (OpenVINO INT8 uses NNCF's own).")
@click.option("--calib-size", type=click.IntRange(min=1), default=300, show_default=True,
              help="Calibration images sampled (deterministically) from --calib-data.")
@click.option("--calib-keep-float", default=None, metavar="BLOCK[,BLOCK...]",
              help="INT8: conv blocks to keep in float, e.g. 'stack2_c2f_pre' (the blocks "
                   "`edgedet calibrate --sensitivity-data` reports), besides those the model "
                   "family keeps float (`edgedet info MODEL`).")
@click.option("--calib-cpu", type=click.Choice(CPU_CHOICES), default="auto", show_default=True,
              help="onnx INT8: the CPU class that will run the U8S8 model. x86 without VNNI "
                   "(avx2, avx512) gets 7-bit weights, which its int8 kernels compute exactly; "
                   "vnni and arm keep 8 bits. auto: this machine's (see `edgedet info`). Build "
                   "with avx2 for an artifact that is exact on every x86 CPU.")
@click.option("--int8-mode", type=click.Choice(["explicit", "implicit"]), default="explicit",
              show_default=True,
              help="trt INT8: explicit Q/DQ ONNX, or implicit with a calibration cache "
                   "(TensorRT 8.x/10.x only).")
@click.option("--calib-cache", type=click.Path(dir_okay=False), default=None,
              help="trt implicit INT8: reuse this calibration cache (checked against its "
                   ".calib.json: a cache from another model or data is refused).")
@click.option("--trt-shapes", default=None, metavar="MIN,OPT,MAX",
              help="trt optimization profile of the image input, e.g. "
                   "'32x32,720x1280,2160x3840' (HxW or BxHxW). Default: that one.")
@click.option("--workspace", type=click.IntRange(min=1), default=4096, show_default=True,
              help="trt builder workspace limit, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="trt timing cache file (read if present, updated after the build).")
@click.option("--dla-core", type=click.IntRange(min=0), default=None,
              help="trt: build for this DLA core (Jetson), with GPU fallback.")
@click.option("--trt-version", default=None, metavar="X.Y.Z",
              help="Without TensorRT here: the device's TensorRT version, for the files "
                   "written instead of the engine. Default: 10.3.0 (JetPack 6).")
@click.option("--parity/--no-parity", default=True, show_default=True,
              help="After exporting, compare every artifact with the Keras reference "
                   "(edgedet parity) and write OUT/parity/report.html.")
@click.option("--parity-images", default=None, metavar="DIR|synthetic:shapes[?...]",
              help="Images for the parity check. Default: for --precision int8 with a "
                   f"--calib-data folder, {PARITY_SIZE} of its images (the model's own domain; "
                   f"sampled with seed 1, calibration uses seed 0); else {PARITY_IMAGES}.")
@click.option("--force", is_flag=True,
              help="Replace artifacts of the same name that already exist in OUT (only the "
                   "files this export writes; nothing else in OUT is touched).")
@click.pass_context
def export_command(ctx, model_spec, targets, out, force, precision, calib_data, calib_method,
                   calib_size, calib_keep_float, calib_cpu, int8_mode, calib_cache, trt_shapes,
                   workspace, timing_cache, dla_core, trt_version, parity, parity_images,
                   target_options, **options):
    """Export a model with the letterbox and NMS inside the graph.

    Every artifact takes `images: uint8 [B, H, W, 3]` RGB of any size and
    returns `boxes [B, max_det, 4]` in original-image pixels, `confidence`,
    `classes` (-1 on padding rows) and `num_detections`. Thresholds, input size
    and box format are fixed at export time and stored in the artifact's
    metadata (see `edgedet info ARTIFACT`). Without --letterbox, the letterbox
    is the targets' default (the target table's): rect when every target of
    the call defaults to rect, else square; the choice is printed.

    TensorRT engines are built on the device that runs them. Without TensorRT
    or a GPU, `--target trt` writes the TensorRT-ready ONNX (and calibration
    cache) and prints the trtexec and edgedet commands to run on the device.

    OUT may already hold artifacts: another target is added beside them
    (same-named artifacts are replaced only with --force), and the parity
    check then covers every artifact of this model in OUT. OUT/parity is
    edgedet's report folder, rewritten by each export; a file you add to it
    makes the export stop before any work.
    """
    started = time.perf_counter()
    if calib_keep_float and precision != "int8":
        raise click.UsageError("--calib-keep-float applies to --precision int8 only.")
    names = _comma_list(*targets)
    report_dir = pathlib.Path(out) / "parity"
    inputs = [p for p in (model_spec, calib_data, calib_cache, parity_images)
              if p and pathlib.Path(p).exists()]
    with user_errors():
        from edgedet.export import export
        from edgedet.exporters.registry import default_letterbox, resolve_targets
        from edgedet.files import check_replaceable, check_writable_folder

        check_writable_folder(out)  # Before any work, naming the folder.
        if parity and (report_dir.exists() or report_dir.is_symlink()):
            check_replaceable(report_dir, protected=inputs)  # Only edgedet's own report.
        model = resolve_model(model_spec)
        # Without --letterbox: the target table's default for this call (one graph for all).
        given = options.pop("letterbox")
        targets = resolve_targets(names, allow_fallback=True)
        config = inference_config(model, letterbox=given or default_letterbox(targets),
                                  **options)
        if given is None:
            _explain_letterbox(targets, config.letterbox)

        def progress(message):
            click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

        stem = pathlib.Path(model_spec).stem  # model.keras -> model.onnx, yolov8n -> yolov8n.onnx
        calibration = {"data": calib_data, "method": calib_method, "size": calib_size,
                       "float_blocks": _comma_list(calib_keep_float or ""), "cpu": calib_cpu}
        trt = {"int8_mode": int8_mode, "workspace_mib": workspace, "timing_cache": timing_cache,
               "dla_core": dla_core, "calib_cache": calib_cache, "trt_version": trt_version,
               "model_spec": model_spec, "calib_data": calib_data}
        if trt_shapes:
            trt["shapes"] = _trt_shapes(trt_shapes)
        by_target = _target_options(target_options)
        by_target["trt"] = {**trt, **by_target.get("trt", {})}
        results = export(model, names, out, config=config, force=force, progress=progress,
                         stem=stem, precision=precision, calibration=calibration,
                         target_options=by_target, protected=inputs)
    rows = [(r.target, r.path, _size(r.size_bytes), f"{r.seconds:.1f}") for r in results]
    click.echo(_table(rows, ("target", "path", "size", "seconds")))
    if parity and results:
        # The parity command's own code path: same checks, reports and exit code
        # (0 all pass, 1 a parity failure).
        from edgedet.cli.parity import parity_command

        images = _parity_images(parity_images, calib_data, precision)
        what = images if isinstance(images, str) else (
            f"{len(images)} images of --calib-data '{calib_data}'")
        click.echo(f"\nParity with the Keras reference on {what}:", err=True)
        artifacts = [str(r.path) for r in results] + _earlier_artifacts(results, precision)
        # The report folder was checked above: it is new or edgedet's own report.
        ctx.invoke(parity_command, model_spec=model, artifacts=artifacts, images=images,
                   out=str(report_dir), force=True)


def _explain_letterbox(targets, letterbox):
    """Prints which letterbox a call without `--letterbox` got and why, when one of its
    `targets` defaults to rect (square-default targets alone get what they always got)."""
    rect = [t.name for t in targets if t.letterbox == "rect"]
    if not rect:
        return
    size = letterbox.size
    if letterbox.shape == "rect":
        why = (f"the {', '.join(rect)} target's default; --letterbox square for a fixed "
               f"{size}x{size} body")
    else:
        square = [t.name for t in targets if t.letterbox != "rect"]
        rect_ok = "" if any(t.static_body for t in targets) else ", or add --letterbox rect"
        why = (f"one graph for every target, and {', '.join(square)} default to square; "
               f"export {', '.join(rect)} alone{rect_ok} for a body padded only to a "
               "multiple of 32")
    click.echo(f"letterbox: {letterbox.shape} ({why})", err=True)


def _target_options(texts):
    """`{target: {key: value}}` from `--option TARGET:KEY=VALUE` values (VALUE read as YAML).

    The one path of every target's options to its exporter: `export` checks
    them against the target table (naming an unknown target or option).
    """
    import yaml

    from edgedet.exporters.registry import get_target

    options = {}
    for text in texts:
        target, colon, assignment = text.partition(":")
        key, equals, value = assignment.partition("=")
        if not (colon and equals and target.strip() and key.strip()):
            raise click.BadParameter(f"{text!r}: expected TARGET:KEY=VALUE, e.g. "
                                     "'onnx:opset=18'.", param_hint="--option")
        try:
            name = get_target(target.strip()).name
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--option") from error
        options.setdefault(name, {})[key.strip()] = yaml.safe_load(value)
    return options


def _earlier_artifacts(results, precision):
    """Artifacts of the same model already in OUT (an earlier export), for the parity check."""
    from edgedet.exporters.registry import TARGETS, get_target

    first = results[0]
    named = first.path.name[: -len(get_target(first.target).suffix)]
    stem = named if precision == "fp32" else named[: -len(f"_{precision}")]
    written = {r.path for r in results}
    found = []
    for target in TARGETS:
        if target.unavailable_reason() is not None:
            continue  # Its runtime may be missing here.
        for each in target.precisions:
            path = first.path.parent / target.artifact_name(stem if each == "fp32"
                                                            else f"{stem}_{each}")
            if path.exists() and path not in written:
                found.append(str(path))
    return found
