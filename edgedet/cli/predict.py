"""`edgedet predict`: detections for image files from a model or any artifact."""

import pathlib

import click

from edgedet.cli.common import (
    EXIT_SOME_INPUTS_FAILED,
    artifact_kinds_text,
    inference_config,
    inference_options,
    resolve_model,
    user_errors,
)
from edgedet.cli.info import is_artifact


@click.command("predict")
@click.option("--model", "-m", "model_spec", default="shapes", show_default=True,
              metavar="MODEL",
              help="A .keras file, the built-in model (shapes), a preset name, or an exported "
                   f"artifact: {artifact_kinds_text()}.")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder.")
@inference_options
@click.option("--force", is_flag=True,
              help="Replace the output folder if it exists and is an edgedet output folder "
                   "holding only edgedet's files (never an input, ~, / or the current folder).")
def predict_command(model_spec, images, out, force, **options):
    """Detect objects in IMAGES (files or folders).

    Writes, per image, `NAME.json` (boxes in original-image pixels in the
    chosen box format, class ids and names, scores) and `NAME.png` (the image
    with labelled boxes). Any image mode is accepted (grayscale, RGBA, palette,
    16-bit); EXIF orientation is honoured.

    Artifacts carry their thresholds: the NMS options apply to Keras models only.

    An image that cannot be read is skipped and listed (file and reason) in
    OUT/failures.json; the others are processed and written.

    Exit code: 0 every image processed, 1 an error (nothing written),
    3 some images could not be read (the rest were written).
    """
    failures = []
    with user_errors():
        from edgedet.files import check_writable_output

        model_path = [model_spec] if pathlib.Path(model_spec).exists() else []
        check_writable_output(out, force, protected=[*images, *model_path])  # Before any work.
        if is_artifact(model_spec):
            given = [f"--{k.replace('_', '-')}" for k, v in options.items()
                     if v not in (None, False)]
            if given:
                raise click.UsageError(
                    f"{', '.join(given)} cannot change an exported artifact: its thresholds and "
                    "box format are fixed at export time. Re-export with these options instead.")
            from edgedet.runtimes.registry import check_installed, open_runtime

            check_installed(model_spec)  # A missing runtime is one sentence, before any work.
            runtime = open_runtime(model_spec)
        else:
            from edgedet.runtimes.keras_model import KerasRuntime

            model = resolve_model(model_spec)
            runtime = KerasRuntime(model, config=inference_config(model, **options))

        from edgedet.predict import predict_images

        def progress(index, total, path):
            click.echo(f"[{index + 1}/{total}] {path}", err=True)

        with runtime:
            results = predict_images(runtime, list(images), out, force=force, progress=progress,
                                     protected=model_path, failures=failures)
    count = sum(len(r["detections"]) for r in results)
    click.echo(f"{len(results)} image(s), {count} detection(s) -> {out}")
    if failures:
        for failure in failures:
            click.echo(f"FAILED {failure['image']}: {failure['reason']}", err=True)
        click.echo(f"{len(failures)} image(s) could not be read; listed in "
                   f"{pathlib.Path(out) / 'failures.json'}.", err=True)
        click.get_current_context().exit(EXIT_SOME_INPUTS_FAILED)
