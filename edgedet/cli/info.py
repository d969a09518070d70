"""`edgedet info`: what a model or an artifact is."""

import json
import pathlib

import click

from edgedet.cli.common import artifact_kinds_text, resolve_model, user_errors


def is_artifact(spec):
    """True for exported artifacts (as opposed to `.keras` models and presets).

    Asks the table of artifact kinds (`edgedet.runtimes.kinds`): a file by
    its suffix (it need not exist), a folder by the kinds' folder rules.
    """
    from edgedet.runtimes.registry import find_kind

    kind = find_kind(pathlib.Path(spec))
    return kind is not None and kind.artifact


def _print_dict(data, indent=0):
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{' ' * indent}{key}:")
            _print_dict(value, indent + 2)
        else:
            if isinstance(value, (list, tuple)) and len(value) > 12:
                value = f"{list(value[:12])} ... ({len(value)} in all)"
            click.echo(f"{' ' * indent}{key}: {value}")


INFO_HELP = f"""Print what MODEL_OR_ARTIFACT is.

    For a `.keras` model or a preset: architecture, classes, input size,
    parameter count. For an artifact: the edgedet metadata inside it (class
    names, letterbox, NMS settings, box format, precision, version, source
    weights hash). For an INT8 artifact also the CPU class it was built for
    and this machine's INT8 instruction sets (`this_machine`), with a warning
    when they do not match.

    Artifacts: {artifact_kinds_text()}.
    """


@click.command("info", help=INFO_HELP)
@click.argument("source", metavar="MODEL_OR_ARTIFACT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_command(source, as_json):
    """`edgedet info` (its help is `INFO_HELP`, which lists the artifact kinds)."""
    with user_errors():
        if is_artifact(source):
            from edgedet.cpu import isa_summary, saturation_warning
            from edgedet.runtimes.registry import read_metadata

            metadata = read_metadata(source)
            data = {"artifact": str(source), **metadata.to_dict()}
            quantization = metadata.extra.get("quantization")
            if quantization:
                data["this_machine"] = isa_summary()
                warning = saturation_warning(quantization)
                if warning:
                    data["this_machine"]["warning"] = warning
        else:
            from edgedet.models.loading import describe_model

            data = describe_model(resolve_model(source))
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        _print_dict(data)
