"""TFLite (LiteRT) exporter: builtin ops only, resizable input, metadata inside.

What this exporter does, and why:

- **Variables are frozen first.** Converting the end-to-end module directly
  (`from_concrete_functions(..., trackable_obj)` or `from_saved_model`)
  keeps Keras 3 weights as resource variables (`VAR_HANDLE` /
  `READ_VARIABLE` ops, TF 2.21) that the plain interpreter never initializes:
  outputs are garbage or the invoke fails. So the serving function is frozen
  with `convert_variables_to_constants_v2` and re-wrapped in a variable-free
  module with the same signature (`serving_default`: `images` in, the
  contract's names out).
- **Builtin ops only** (`TFLITE_BUILTINS`; no `SELECT_TF_OPS`/Flex), so the
  artifact runs on the plain `ai_edge_litert` interpreter and on devices.
  The NMS becomes the builtin `NON_MAX_SUPPRESSION_V4`.
- **Resizable input.** The letterbox is dynamic (`Shape`, integer math,
  `RESIZE_BILINEAR` with a size tensor, `PAD`), so the input keeps the shape
  signature `[-1, -1, -1, 3]`; runtimes call `resize_tensor_input` (the
  signature runner does it per call) for each image size. No fixed-size
  variant is needed.
- **Metadata** is an entry of the flatbuffer's own `metadata` table
  (name `"edgedet"`, a buffer holding the JSON), the mechanism the converter
  uses for its own `CONVERSION_METADATA`. It survives any TFLite tooling and
  is read back with the flatbuffer schema shipped in `ai_edge_litert`
  (`edgedet.runtimes.litert.read_metadata`), no TensorFlow needed.
"""

from pathlib import Path

from edgedet import backend
from edgedet.exporters.base import (
    INPUT_NAME,
    ExportError,
    input_signature,
    op_names_in_message,
    require_precision,
    serving_function,
    stage,
)
from edgedet.files import atomic_write_bytes, check_writable_output
from edgedet.metadata import METADATA_KEY

TARGET = "tflite"
SIGNATURE_KEY = "serving_default"
# BuiltinOperator.CUSTOM in the TFLite schema (Flex ops are custom ops).
_CUSTOM_OPCODE = 32


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None):
    """Converts `end_to_end` to a `.tflite` flatbuffer at `path`.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata`, stored in the flatbuffer's metadata
            table under `"edgedet"`.
        path: str or path. The `.tflite` file to write.
        force: bool. Replace an existing `path`. Defaults to False.
        precision: str. Must be `"fp32"` (INT8 has its own exporter).
        session: unused (the exporter signature's INT8 calibration).

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage and, for conversion errors, the ops the
            converter could not map to TFLite builtins.
        OutputExistsError: `path` exists and `force` is False.
    """
    require_precision(TARGET, precision)
    path = check_writable_output(path, force)
    with stage(TARGET, "trace"):
        function = serving_function(end_to_end)
    with stage(TARGET, "freeze variables"):
        frozen = freeze(function)
    content = convert(frozen)
    with stage(TARGET, "check"):
        check(content)
    with stage(TARGET, "write metadata"):
        content = add_metadata(content, METADATA_KEY, metadata.to_json().encode("utf-8"))
    with stage(TARGET, "write"):
        atomic_write_bytes(path, content)
    return Path(path)


def freeze(function):
    """A variable-free `tf.Module` whose `serve` computes `function`.

    Args:
        function: the end-to-end `ConcreteFunction` (dict outputs).

    Returns:
        A `tf.Module` with `serve`, a `tf.function` with the same input
        signature and output names, weights baked in as constants.
    """
    tf = backend.tensorflow()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    constant_function = convert_variables_to_constants_v2(function)
    structure = function.structured_outputs

    module = tf.Module()
    module.serve = tf.function(
        lambda images: tf.nest.pack_sequence_as(structure, constant_function(images)),
        input_signature=input_signature(),
    )
    return module


def convert(module):
    """Runs the TFLite converter (builtin ops only) on a frozen module; returns bytes.

    The module is saved as a temporary SavedModel first (without custom
    gradients: Keras' activations carry some, which the converter's own
    save fails on, silently dropping the signature) and converted from
    there, so the flatbuffer keeps the `serving_default` signature.
    """
    import tempfile

    tf = backend.tensorflow()

    with tempfile.TemporaryDirectory(prefix="edgedet-tflite-") as folder:
        with stage(TARGET, "save frozen graph"):
            tf.saved_model.save(
                module,
                folder,
                signatures={SIGNATURE_KEY: module.serve.get_concrete_function()},
                options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
            )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            folder, signature_keys=[SIGNATURE_KEY]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            with converter_logs_silenced():
                return converter.convert()
        except Exception as error:  # noqa: BLE001 - re-raised with the blamed ops.
            ops = _blamed_ops(error)
            if not ops:
                raise ExportError(TARGET, "convert", _first_line(error)) from error
            raise ExportError(
                TARGET,
                "convert",
                "the TFLite converter cannot map these TensorFlow ops to TFLite builtin "
                "ops (Flex / SELECT_TF_OPS is not used: the plain LiteRT interpreter "
                "lacks them). Change the graph to use ops TFLite supports.",
                ops=ops,
            ) from error


def check(content):
    """Checks builtin-only ops and the `serving_default` signature of converted bytes.

    Raises:
        ValueError: a custom/Flex op, or a signature that does not take
            `images`.
    """
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    custom = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _CUSTOM_OPCODE:
            custom.append((code.CustomCode() or b"?").decode())
    if custom:
        raise ExportError(
            TARGET, "check", "the model needs custom or Flex ops, which the plain "
            "LiteRT interpreter does not have.", ops=custom,
        )
    signatures = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        inputs = [signature.Inputs(j).Name().decode() for j in range(signature.InputsLength())]
        signatures[signature.SignatureKey().decode()] = inputs
    if signatures.get(SIGNATURE_KEY) != [INPUT_NAME]:
        raise ValueError(
            f"Expected a '{SIGNATURE_KEY}' signature with one input '{INPUT_NAME}', "
            f"received signatures {signatures}."
        )


def add_metadata(content, name, data):
    """Returns `content` with a `metadata` table entry `name` holding `data`.

    An existing entry of that name is replaced.

    Args:
        content: bytes. A `.tflite` flatbuffer.
        name: str. Metadata entry name.
        data: bytes. Entry content.
    """
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    schema = flatbuffer_utils.schema_fb
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model.metadata = [m for m in (model.metadata or []) if _decode(m.name) != name]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return flatbuffer_utils.convert_object_to_bytearray(model)


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def converter_logs_silenced():
    """A context manager hiding the TFLite converter's C++ logs (MLIR dumps, NodeDef
    notes): noise, since its errors reach Python in the exception. Used by the FP32
    and INT8 TFLite exporters; `EDGEDET_VERBOSE_TF=1` shows the logs."""
    import contextlib
    import os

    if os.environ.get("EDGEDET_VERBOSE_TF"):
        return contextlib.nullcontext()
    return backend.stderr_silenced()


def _first_line(error, limit=500):
    lines = [line for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def _blamed_ops(error):
    names = []
    for data in getattr(error, "errors", []) or []:
        operator = getattr(getattr(data, "operator", None), "name", "")
        if operator:
            names.append(operator.removeprefix("tf."))
    return list(dict.fromkeys(names + op_names_in_message(str(error))))
