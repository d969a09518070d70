"""`edgedet engine`: build a TensorRT engine on the device from the TensorRT-ready ONNX.

The workstation (TensorFlow, Keras) writes `<stem>_trt.onnx`, the Q/DQ
`<stem>_int8_trt.onnx`, the calibration cache and the parity bundle with
`edgedet export --target trt`; this command turns them into an engine where
TensorRT is, without TensorFlow.
"""

import click

from edgedet.cli.common import user_errors


def _shapes(ctx, param, text):
    if text is None:
        return None
    from edgedet.exporters.tensorrt_plan import parse_shape

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise click.BadParameter(f"{text!r}: expected MIN,OPT,MAX, e.g. "
                                 "'32x32,720x1280,2160x3840' (BxHxW or HxW).", ctx, param)
    try:
        return tuple(parse_shape(p) for p in parts)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from error


@click.command("engine")
@click.argument("onnx_path", metavar="TRT_ONNX", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .engine to write (its .engine.json sidecar goes next to it).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True, help="fp16 from the FP32 ONNX (TensorRT < 11) or the FP16 ONNX "
                                      "(11); int8 from the Q/DQ ONNX (explicit).")
@click.option("--int8-mode", type=click.Choice(["explicit", "implicit"]), default="explicit",
              show_default=True,
              help="implicit: the FP32 ONNX + --calib-cache (TensorRT 8.x / 10.x).")
@click.option("--calib-cache", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Calibration cache for implicit INT8 (<stem>.calib.cache).")
@click.option("--trt-shapes", "shapes", default=None, callback=_shapes, metavar="MIN,OPT,MAX",
              help="Optimization profile of the images input. Default: "
                   "1x32x32,1x720x1280,1x2160x3840.")
@click.option("--workspace", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Builder workspace limit, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="Timing cache file (read if present, updated after the build).")
@click.option("--dla-core", type=click.IntRange(min=0), default=None,
              help="Build for this DLA core (Jetson), GPU fallback; fp16 or int8.")
@click.option("--force", is_flag=True, help="Replace the engine and its sidecar.")
def engine_command(onnx_path, out, precision, int8_mode, calib_cache, shapes, workspace,
                   timing_cache, dla_core, force):
    """Build a TensorRT engine from TRT_ONNX, on the machine that will run it.

    TRT_ONNX is a file `edgedet export --target trt` wrote on the workstation;
    its metadata (classes, letterbox, NMS) goes into the engine's sidecar. The
    ONNX is checked against this TensorRT's rules first (the TensorRT lint).
    Needs TensorRT (JetPack's on a Jetson) but not TensorFlow.

    \b
    Examples:
      edgedet engine out/model_trt.onnx --out engines/model.engine
      edgedet engine out/model_trt.onnx --precision fp16 --out engines/model_fp16.engine
      edgedet engine out/model_int8_trt.onnx --precision int8 --out engines/model_int8.engine
    """
    try:
        import tensorrt  # noqa: F401
    except ImportError as error:
        raise click.ClickException(
            f"`edgedet engine` needs TensorRT's Python package ({error}). On a Jetson it comes "
            "with JetPack: create the venv with --system-site-packages. On a GPU server: "
            "pip install tensorrt polygraphy.") from error
    from edgedet.exporters.base import ExportError
    from edgedet.exporters.tensorrt_device import build_from_onnx

    options = {"precision": precision, "int8_mode": int8_mode, "workspace_mib": workspace,
               "timing_cache": timing_cache, "dla_core": dla_core}
    if shapes is not None:
        options["shapes"] = shapes
    with user_errors():
        try:
            path = build_from_onnx(onnx_path, out, force=force, calib_cache=calib_cache,
                                   **options)
        except ExportError as error:
            raise click.ClickException(str(error)) from error
    click.echo(f"wrote {path} (+ {path.name}.json)")
