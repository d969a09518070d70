"""`edgedet predict`: detections for image files from a model or any artifact."""

import click

from edgedet.cli.common import inference_config, inference_options, resolve_model, user_errors
from edgedet.cli.info import is_artifact


@click.command("predict")
@click.option("--model", "-m", "model_spec", default="shapes", show_default=True,
              metavar="MODEL",
              help="A .keras file, the built-in model (shapes), a preset name, or an exported artifact "
                   "(SavedModel folder, .onnx, .tflite).")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder.")
@inference_options
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
def predict_command(model_spec, images, out, force, **options):
    """Detect objects in IMAGES (files or folders).

    Writes, per image, `NAME.json` (boxes in original-image pixels in the
    chosen box format, class ids and names, scores) and `NAME.png` (the image
    with labelled boxes). Any image mode is accepted (grayscale, RGBA, palette,
    16-bit); EXIF orientation is honoured.

    Artifacts carry their thresholds: the NMS options apply to Keras models only.
    """
    with user_errors():
        if is_artifact(model_spec):
            given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v not in (None, False)]
            if given:
                raise click.UsageError(
                    f"{', '.join(given)} cannot change an exported artifact: its thresholds and "
                    "box format are fixed at export time. Re-export with these options instead.")
            from edgedet.runtimes.registry import open_runtime

            runtime = open_runtime(model_spec)
        else:
            from edgedet.runtimes.keras_model import KerasRuntime

            model = resolve_model(model_spec)
            runtime = KerasRuntime(model, config=inference_config(model, **options))

        from edgedet.predict import predict_images

        def progress(index, total, path):
            click.echo(f"[{index + 1}/{total}] {path}", err=True)

        with runtime:
            results = predict_images(runtime, list(images), out, force=force, progress=progress)
    count = sum(len(r["detections"]) for r in results)
    click.echo(f"{len(results)} image(s), {count} detection(s) -> {out}")
