"""OpenVINO INT8 exporter: edgedet's U8S8 Q/DQ ONNX, read and compiled by OpenVINO.

The Q/DQ model comes from the export's `ExportCalibration`
(`edgedet.calibration.session`), the same as the ONNX INT8 artifact: the
body's activations (uint8) and weights (int8, per channel) quantized on the
calibration ranges; letterbox, decode, NMS, the head's output convolutions
and the DFL stay float. OpenVINO's low-precision transformations turn each
QuantizeLinear/DequantizeLinear pair into its own `FakeQuantize` and run the
convolutions in int8. Weights are 7-bit for x86 CPUs without VNNI (the
session's `cpu` class, `--calib-cpu`), as OpenVINO's own NNCF does by
default (`overflow_fix`), so the int8 kernels of AVX2 CPUs do not saturate.

The metadata is the Q/DQ model's (precision `int8`, `extra.quantization`),
with target `openvino`.
"""

from edgedet.exporters.base import require_precision, stage, with_target
from edgedet.exporters.openvino_export import TARGET, check_paths, convert, write
from edgedet.metadata import METADATA_KEY, ArtifactMetadata

#: The Q/DQ flavour OpenVINO compiles (`edgedet.calibration.qdq.FLAVOURS`).
FLAVOUR = "u8s8"


def export(end_to_end, metadata, path, force=False, precision="int8", session=None):
    """Writes the INT8 OpenVINO IR of `end_to_end` at `path` (`.xml`, `.bin` beside it).

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata` (target `"openvino"`).
        path: str or path. The `.xml` file.
        force: bool. Replace an existing IR. Defaults to False.
        precision: str. Must be `"int8"`. Defaults to `"int8"`.
        session: `edgedet.calibration.session.ExportCalibration` or None (the
            default calibration set). Defaults to None.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage (`quantize`, `convert`, `check`, `write`).
        OutputExistsError: the `.xml` or `.bin` exists and `force` is False.
    """
    from edgedet.calibration.session import ExportCalibration

    require_precision(TARGET, precision, "int8")
    path, weights = check_paths(path, force)
    session = session or ExportCalibration()
    with stage(TARGET, "quantize"):
        qdq = session.qdq(end_to_end, metadata, FLAVOUR)
        props = {p.key: p.value for p in qdq.metadata_props}
        quantized = with_target(ArtifactMetadata.from_json(props[METADATA_KEY]), TARGET)
    write(convert(qdq), quantized, path, weights)
    return path
