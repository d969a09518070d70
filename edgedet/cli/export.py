"""`edgedet export`: a model to SavedModel / ONNX / TFLite artifacts."""

import pathlib
import time

import click

from edgedet.cli.common import inference_config, inference_options, resolve_model, user_errors


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


@click.command("export")
@click.option("--model", "-m", "model_spec", required=True, metavar="MODEL",
              help="A .keras file (edgedet or KerasCV) or a preset name.")
@click.option("--target", "-t", "targets", multiple=True, default=("all",), show_default=True,
              help="savedmodel, onnx, tflite or all (every target this machine can build). "
                   "Repeat or comma-separate for several.")
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder.")
@inference_options
@click.option("--force", is_flag=True, help="Replace artifacts that already exist.")
def export_command(model_spec, targets, out, force, **options):
    """Export a model with the letterbox and NMS inside the graph.

    Every artifact takes `images: uint8 [B, H, W, 3]` RGB of any size and
    returns `boxes [B, max_det, 4]` in original-image pixels, `confidence`,
    `classes` (-1 on padding rows) and `num_detections`. Thresholds, input size
    and box format are fixed at export time and stored in the artifact's
    metadata (see `edgedet info ARTIFACT`).
    """
    started = time.perf_counter()
    names = [name.strip() for target in targets for name in target.split(",") if name.strip()]
    with user_errors():
        from edgedet.export import export

        model = resolve_model(model_spec)
        config = inference_config(model, **options)

        def progress(message):
            click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

        stem = pathlib.Path(model_spec).stem  # model.keras -> model.onnx, yolov8n -> yolov8n.onnx
        results = export(model, names, out, config=config, force=force, progress=progress,
                         stem=stem)
    rows = [(r.target, r.path, _size(r.size_bytes), f"{r.seconds:.1f}") for r in results]
    click.echo(_table(rows, ("target", "path", "size", "seconds")))
