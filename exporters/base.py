"""What every exporter shares: the I/O contract, errors, stages, metadata.

An exporter is one function per target (and precision, where INT8 is
written by another function), all with one signature:
`export(end_to_end, metadata, path, force=False, precision="fp32",
session=None, **options) -> pathlib.Path`. It turns the end-to-end
`tf.Module` (see `edgedet.end_to_end`) into one artifact, writes `metadata`
into it and moves it into place atomically. `session` is the INT8
calibration shared by one export's targets (None at fp32); `options` are the
target's own (the registry's `Target.options`).
"""

import contextlib
import dataclasses
import logging
import re

from edgedet import backend

INPUT_NAME = "images"
# Output name -> (dtype name, rank), the contract of DESIGN.md.
OUTPUTS = {
    "boxes": ("float32", 3),
    "confidence": ("float32", 2),
    "classes": ("int32", 2),
    "num_detections": ("int32", 1),
}
# Extra outputs of `build_end_to_end(..., debug=True)`; allowed in test exports only.
DEBUG_OUTPUTS = ("pre_nms_boxes", "pre_nms_scores")

logger = logging.getLogger("edgedet.export")


class ExportError(ValueError):
    """An export failed; the message names the target, the stage and, when known, the op.

    Args:
        target: str. Target name, e.g. `"onnx"`.
        stage: str. What was being done, e.g. `"convert"`, `"check"`, `"write"`.
        message: str. What went wrong.
        ops: list of str. Ops the converter could not handle, if it said so.
            Defaults to `()`.
    """

    def __init__(self, target, stage, message, ops=()):
        self.target = target
        self.stage = stage
        self.ops = tuple(ops)
        self.detail = message
        where = f" (op: {', '.join(self.ops)})" if self.ops else ""
        super().__init__(f"{target} export failed at stage '{stage}'{where}: {message}")


@contextlib.contextmanager
def stage(target, name, ops_from_error=None):
    """Re-raises any error inside the block as an `ExportError` naming the stage.

    Args:
        target: str. Target name.
        name: str. Stage name.
        ops_from_error: callable or None. Maps the caught exception to the
            list of op names it blames. Defaults to None.
    """
    try:
        yield
    except ExportError:
        raise
    except Exception as error:  # noqa: BLE001 - re-raised with context.
        ops = ops_from_error(error) if ops_from_error else ()
        message = _first_lines(str(error)) or type(error).__name__
        raise ExportError(target, name, message, ops=ops) from error


def _first_lines(text, limit=12, width=300):
    lines = [
        line if len(line) <= width else line[:width] + " ..."
        for line in text.strip().splitlines()
        if line.strip()
    ]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def require_precision(target, precision, expected="fp32"):
    """Raises ValueError unless `precision` is the one this exporter writes."""
    if precision != expected:
        raise ValueError(f"This {target} exporter writes {expected} artifacts; received "
                         f"precision '{precision}'.")


def input_signature():
    """The one input of every artifact: `images` uint8 `[B, H, W, 3]`."""
    tf = backend.tensorflow()

    return [tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_NAME)]


def serving_function(end_to_end):
    """The concrete `serve` function of an end-to-end module, checked against the contract.

    Args:
        end_to_end: `tf.Module` with a `serve` `tf.function` (see
            `edgedet.end_to_end.build_end_to_end`).

    Returns:
        The `ConcreteFunction` for `images: uint8 [None, None, None, 3]`.

    Raises:
        ValueError: the module has no `serve`, or its outputs do not follow
            the contract (names, dtypes, ranks).
    """
    serve = getattr(end_to_end, "serve", None)
    if serve is None or not hasattr(serve, "get_concrete_function"):
        raise ValueError(
            f"Expected an end-to-end tf.Module with a `serve` tf.function, received "
            f"{type(end_to_end).__name__}."
        )
    function = serve.get_concrete_function(*input_signature())
    check_outputs(
        {name: (spec.dtype.name, spec.shape.rank) for name, spec in _output_specs(function).items()}
    )
    return function


def _output_specs(function):
    outputs = function.structured_outputs
    if not isinstance(outputs, dict):
        raise ValueError(
            f"Expected `serve` to return a dict of outputs, received {type(outputs).__name__}."
        )
    return outputs


def check_outputs(found, where="end-to-end module"):
    """Checks output names, dtypes and ranks against the contract.

    Args:
        found: dict of output name -> `(dtype name, rank)`.
        where: str. What is being checked, for the message.

    Raises:
        ValueError: listing every missing, unexpected or mistyped output.
    """
    problems = []
    for name, (dtype, rank) in OUTPUTS.items():
        if name not in found:
            problems.append(f"missing output '{name}'")
        elif tuple(found[name]) != (dtype, rank):
            problems.append(
                f"output '{name}' is {found[name][0]} rank {found[name][1]}, "
                f"expected {dtype} rank {rank}"
            )
    extra = sorted(set(found) - set(OUTPUTS) - set(DEBUG_OUTPUTS))
    if extra:
        problems.append(f"unexpected outputs {extra}")
    if problems:
        raise ValueError(
            f"The {where} does not follow the output contract "
            f"{ {k: v[0] for k, v in OUTPUTS.items()} }: " + "; ".join(problems) + "."
        )


def with_target(metadata, target, **extra):
    """A copy of `metadata` for `target`, with `extra` facts merged in."""
    return dataclasses.replace(
        metadata, target=target, extra={**metadata.extra, **extra}
    )


def op_names_in_message(text):
    """Op names a converter's message blames (`'tf.Foo' op ...`, `ops: Foo, Bar`)."""
    names = re.findall(r"'tf\.(\w+)' op", text)
    for listed in re.findall(r"(?:TF Select ops|Unsupported ops|Flex ops): ([\w, ]+)", text):
        names.extend(n.strip() for n in listed.split(",") if n.strip())
    return list(dict.fromkeys(names))
