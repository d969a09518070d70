"""`edgedet calibrate`: INT8 artifacts from one calibration pass, no engine build."""

import pathlib
import time

import click

from edgedet.calibration.methods import DEFAULT_METHOD, METHODS
from edgedet.cli.common import inference_config, inference_options, resolve_model, user_errors
from edgedet.cpu import CPU_CHOICES


@click.command("calibrate")
@click.option("--model", "-m", "model_spec", required=True, metavar="MODEL",
              help="A .keras file, a preset name, or an .onnx exported by edgedet.")
@click.option("--data", "-d", "data", default=None, metavar="PATH",
              help="Calibration images: a folder, a COCO JSON / YOLO data.yaml / VOC root, or "
                   "'synthetic:shapes?n=300'. Default: edgedet's synthetic shapes.")
@click.option("--method", type=click.Choice(METHODS),
              default=DEFAULT_METHOD, show_default=True,
              help="Range calibration method: p90_min_max takes the 90th percentile over the "
                   "images of each image's extremes; the others are ONNX Runtime's "
                   "calibrators (OpenVINO INT8 uses NNCF's own).")
@click.option("--size", type=click.IntRange(min=1), default=300, show_default=True,
              help="Images sampled (deterministically) from --data.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Sampling seed.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output folder.")
@click.option("--trt-version", default=None, metavar="X.Y.Z",
              help="TensorRT version of the target device, for the calibration cache header. "
                   "Default: the installed TensorRT, else 10.3.0 (JetPack 6).")
@click.option("--quantize-head", is_flag=True,
              help="Also quantize the head's output convolutions (kept float by default).")
@click.option("--sensitivity-data", default=None, metavar="PATH",
              help="Held-out images for the sensitivity search: keep the layers that hurt "
                   "parity most in float until the INT8 model passes.")
@click.option("--sensitivity-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images sampled from --sensitivity-data.")
@click.option("--sensitivity-recall", type=click.FloatRange(0, 1), default=None,
              metavar="FRACTION",
              help="Share of the reference detections the INT8 model must match for the "
                   "sensitivity search to stop (e.g. 0.97). Default: the INT8 parity "
                   "threshold (min_recall 0.90).")
@click.option("--cpu", type=click.Choice(CPU_CHOICES), default="auto", show_default=True,
              help="The CPU class that will run the U8S8 model: x86 without VNNI (avx2, "
                   "avx512) gets 7-bit weights, which its int8 kernels compute exactly; vnni "
                   "and arm keep 8 bits. auto: this machine's.")
@inference_options
@click.option("--force", is_flag=True, help="Replace files that already exist.")
def calibrate_command(model_spec, data, method, size, seed, out, trt_version, quantize_head,
                      sensitivity_data, sensitivity_size, sensitivity_recall, cpu, force,
                      **options):
    """Calibrate once; write every INT8 artifact that needs no GPU.

    \b
    Writes into OUT:
      <stem>.onnx              FP32 end-to-end ONNX (when MODEL is a Keras model)
      <stem>_int8.onnx         U8S8 Q/DQ for ONNX Runtime on CPU
      <stem>_int8_trt.onnx     symmetric S8S8 Q/DQ for TensorRT (explicit INT8)
      <stem>_int8.calib.cache  TensorRT calibration cache (implicit INT8, 8.x/10.x)
      <stem>_int8.calib.json   method, ranges, image hashes, cache key

    \b
    Example:
      edgedet calibrate --model model.keras --data calib_images/ --out int8/
    """
    started = time.perf_counter()

    def progress(message):
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    thresholds = None
    if sensitivity_recall is not None:
        if sensitivity_data is None:
            raise click.UsageError("--sensitivity-recall needs --sensitivity-data.")
        from edgedet.thresholds import DEFAULTS

        thresholds = DEFAULTS["int8"].replace(min_recall=sensitivity_recall)
    with user_errors():
        from edgedet.calibration.calibrate import calibrate
        from edgedet.calibration.data import calibration_data

        stem = pathlib.Path(model_spec).stem
        if pathlib.Path(model_spec).suffix.lower() == ".onnx":
            if not pathlib.Path(model_spec).is_file():
                raise click.ClickException(f"ONNX model '{model_spec}' does not exist.")
            onnx_path = pathlib.Path(model_spec)
        else:
            from edgedet.export import export

            model = resolve_model(model_spec)
            config = inference_config(model, **options)
            (result,) = export(model, ["onnx"], out, config=config, force=force,
                               progress=progress, stem=stem)
            onnx_path = result.path
        held_out = None
        if sensitivity_data is not None:
            source = calibration_data(sensitivity_data, size=sensitivity_size, seed=seed + 1,
                                      split="val", min_images=1)
            held_out = source.images()
        result = calibrate(onnx_path, data, out, method=method, size=size, seed=seed,
                           stem=stem, trt_version=trt_version, quantize_head=quantize_head,
                           sensitivity_images=held_out, sensitivity_thresholds=thresholds,
                           force=force, progress=progress, cpu=cpu)
    record = result.record
    click.echo(f"calibrated ({record['method']}) on {len(record['data']['images'])} images "
               f"from {record['data']['source']}; {len(record['ranges'])} tensor ranges")
    if result.sensitivity is not None:
        kept = result.sensitivity.kept
        verdict = "passes" if result.sensitivity.passed else "still fails"
        click.echo(f"sensitivity: kept {len(kept)} block(s) float {kept}; the INT8 model "
                   f"{verdict} parity")
    for kind, path in result.paths.items():
        click.echo(f"{kind:6s} {path}")
