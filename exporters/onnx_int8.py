"""ONNX INT8 exporter: the U8S8 Q/DQ model for ONNX Runtime on CPU.

The Q/DQ model comes from the export's `ExportCalibration`
(`edgedet.calibration.session`): the FP32 end-to-end ONNX with the body's
activations and weights quantized on the calibration ranges, for the CPU
class the session was made for (`extra.quantization` in the metadata says
which). Calibration and quantization work at opset 17; another `opset` is
reached here with ONNX's own version converter, then checked.
"""

from pathlib import Path

from edgedet.exporters.base import require_precision, stage
from edgedet.exporters.onnx_export import OPSET, TARGET, check_opset
from edgedet.files import atomic_write_bytes, check_writable_output


def export(end_to_end, metadata, path, force=False, precision="int8", session=None,
           opset=OPSET):
    """Writes the U8S8 Q/DQ ONNX of `end_to_end` at `path`.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata` (target `"onnx"`).
        path: str or path. The `.onnx` file.
        force: bool. Replace an existing file. Defaults to False.
        precision: str. Must be `"int8"`. Defaults to `"int8"`.
        session: `edgedet.calibration.session.ExportCalibration` or None (the
            default calibration set). Defaults to None.
        opset: int. ONNX opset, at least 17. Defaults to 17.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage (`quantize`, `convert to opset N`,
            `write`).
        OutputExistsError: `path` exists and `force` is False.
    """
    from edgedet.calibration.session import ExportCalibration

    require_precision(TARGET, precision, "int8")
    check_opset(opset)
    path = check_writable_output(path, force)
    session = session or ExportCalibration()
    with stage(TARGET, "quantize"):
        model = session.qdq(end_to_end, metadata, "u8s8")
    if opset != OPSET:
        with stage(TARGET, f"convert to opset {opset}"):
            model = to_opset(model, opset)
    with stage(TARGET, "write"):
        atomic_write_bytes(path, model.SerializeToString())
    return Path(path)


def to_opset(model, opset):
    """`model` converted to `opset` by `onnx.version_converter` (metadata kept), checked."""
    import onnx
    from onnx import version_converter

    converted = version_converter.convert_version(model, opset)
    del converted.metadata_props[:]
    converted.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(converted)
    return converted
