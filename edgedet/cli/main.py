"""The `edgedet` command: a click group over thin command modules.

Command modules import only click at import time; each command imports the
library (and so TensorFlow) when it runs, so `edgedet --help` is instant and
works without TensorRT or LiteRT installed.
"""

import click

import edgedet
from edgedet.cli.benchmark import benchmark_command
from edgedet.cli.calibrate import calibrate_command
from edgedet.cli.engine import engine_command
from edgedet.cli.export import export_command
from edgedet.cli.import_cmd import import_group
from edgedet.cli.info import info_command
from edgedet.cli.parity import parity_command
from edgedet.cli.predict import predict_command
from edgedet.cli.train import train_command
from edgedet.cli.triton import triton_group
from edgedet.models.families import preset_summary


class EdgedetGroup(click.Group):
    """Turns a missing TensorFlow / Keras (device install) or artifact runtime, and an artifact
    a runtime refuses to load, into a sentence."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ValueError as error:
            from edgedet.runtimes.base import ArtifactLoadError

            if isinstance(error, ArtifactLoadError):  # Names the file and the runtime's reason.
                raise click.ClickException(str(error)) from error
            raise
        except ImportError as error:
            from edgedet.cli.common import WORKSTATION_PACKAGES, missing_workstation_message
            from edgedet.runtimes.registry import RuntimeNotInstalledError

            if isinstance(error, RuntimeNotInstalledError):  # Names the packages and the fix.
                raise click.ClickException(str(error)) from error
            package = (error.name or "").split(".")[0]
            if not isinstance(error, ModuleNotFoundError) or package not in WORKSTATION_PACKAGES:
                raise
            raise click.ClickException(
                missing_workstation_message(package, ctx.invoked_subcommand)) from error


@click.group(cls=EdgedetGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(edgedet.__version__, prog_name="edgedet")
def cli():
    """Ship a Keras 3 YOLO detector (YOLOv8, YOLO11) to the edge.

    A model is a `.keras` file, a KerasCV `.keras` file, or a preset name
    ({presets}: random weights, for trying the pipeline).
    Artifacts (SavedModel folder, .onnx, .tflite, .engine, Triton repository,
    parity bundle) carry their class names and settings inside;
    `edgedet info ARTIFACT` prints them.

    \b
    Examples:
      edgedet info yolov8n
      edgedet predict --model model.keras photo.jpg --out preds/
      edgedet export --model model.keras --target all --out artifacts/
      edgedet predict --model artifacts/model.onnx photo.jpg --out preds-onnx/
    """


cli.help = cli.help.replace("{presets}", preset_summary())
cli.add_command(info_command)
cli.add_command(predict_command)
cli.add_command(export_command)
cli.add_command(parity_command)
cli.add_command(benchmark_command)
cli.add_command(import_group)
cli.add_command(calibrate_command)
cli.add_command(train_command)
cli.add_command(triton_group)
cli.add_command(engine_command)

if __name__ == "__main__":  # pragma: no cover
    cli()
