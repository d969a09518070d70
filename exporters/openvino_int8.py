"""OpenVINO INT8 exporter: NNCF post-training quantization of the edgedet IR.

The FP32 IR (`openvino_export.convert` of the session's FP32 end-to-end
ONNX) is quantized by NNCF (`nncf.quantize`, OpenVINO's own tool) on the
export's calibration images (`ExportCalibration.data()`: raw uint8 images,
since the letterbox is in the graph). NNCF places OpenVINO's `FakeQuantize`
nodes where its CPU plugin runs them fused into int8 convolutions; edgedet's
U8S8 Q/DQ ONNX read by OpenVINO measured 23% slower on yolov8n (its
zero-point subtractions stay unfused; docs/benchmarks.md). The letterbox's
resize and the DFL/decode arithmetic (`float_ops`: the ops of `FLOAT_TYPES`
but the FPN's nearest upsamples) are in NNCF's ignored scope, by name, so
only the body's convolutions get int8 inputs; the head's output
convolutions stay float too (unless the session's `quantize_head`), and so
do the model family's float conv blocks
(`edgedet.calibration.body.family_float_blocks`) and those of `float_blocks`
(`--calib-keep-float`). NNCF collects
its own statistics: the session's `method` (`--calib-method`) does not apply.
The preset is `mixed` (symmetric weights, asymmetric activations; NNCF's
default for CNNs is `performance`, symmetric activations): the body's SiLU
outputs are asymmetric, and on the Ultralytics-trained YOLOv8n of
docs/benchmarks.md (1000 images) `mixed` lost 0.23 / 0.09 mAP50-95 point at
conf 0.25 / 0.001 against 0.85 at conf 0.25 for `performance`. Ultralytics'
OpenVINO INT8 export uses `mixed` too. Bias correction is NNCF's full
algorithm (`fast_bias_correction=False`; Ultralytics keeps the fast one): on
that YOLOv8n, 10,000 images at conf 0.25, the drop went from 0.20 to 0.14
point (Ultralytics' OpenVINO INT8: 0.05; the rest is the float parts running
bf16, 0.03 with f32), and on a YOLO26n's one-to-one head from 0.35 to -0.06;
it costs seconds of calibration at 160 px (16 s for 300 images), minutes at
640.
On CPUs without VNNI NNCF's default `overflow_fix` keeps the first layer's weights at 7 bits.

The metadata gets precision `int8` and `extra.quantization` (method `nncf`,
images, what stayed float).
"""

import dataclasses
import re

from edgedet.calibration.body import family_float_blocks, is_head_output, strip_block_suffix
from edgedet.exporters.base import require_precision, stage
from edgedet.exporters.openvino_export import TARGET, check_paths, convert, fp32_onnx, write

#: Op types NNCF may quantize that edgedet keeps float: the letterbox's resize,
#: the DFL and decode arithmetic (body convolutions still get int8 inputs), but
#: not the body's nearest upsamples (`float_ops`).
FLOAT_TYPES = ("Interpolate", "MatMul", "Multiply", "Add", "Subtract", "Divide", "Softmax")
#: The op types of the body's convolutions (a depthwise one is a `GroupConvolution`).
CONVOLUTIONS = ("Convolution", "GroupConvolution")


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
        ExportError: naming the stage (`convert`, `check`, `quantize`, `write`).
        OutputExistsError: the `.xml` or `.bin` exists and `force` is False.
    """
    from edgedet.calibration.session import ExportCalibration

    require_precision(TARGET, precision, "int8")
    path, weights = check_paths(path, force)
    session = session or ExportCalibration()
    ov_model = convert(fp32_onnx(end_to_end, metadata, session))
    with stage(TARGET, "quantize"):
        quantized, facts = quantize(ov_model, session)
    metadata = dataclasses.replace(metadata, target=TARGET, precision="int8",
                                   extra={**metadata.extra, "quantization": facts})
    write(quantized, metadata, path, weights)
    return path


def float_convolutions(ov_model, quantize_head=False, float_blocks=()):
    """Friendly names of the convolutions kept float: head outputs, the model family's
    float blocks (`edgedet.calibration.body.family_float_blocks`) and `float_blocks`."""
    convs = [op for op in ov_model.get_ordered_ops() if op.get_type_name() in CONVOLUTIONS]
    names = [op.get_friendly_name() for op in convs]
    # A block's conv is `<scope>/<block>_bn_1/...`; one tf2onnx fused with its batch norm
    # is `Conv__N`, named by what it feeds (`<scope>/<block>_1/Sigmoid`), as `block_of` reads it.
    present = {strip_block_suffix(re.sub(r"_\d+$", "", part))
               for op in ov_model.get_ordered_ops() for part in op.get_friendly_name().split("/")}
    blocks = dict.fromkeys([*family_float_blocks(present), *float_blocks])
    marks = [f"/{block}_{part}" for block in blocks for part in ("bn_", "conv_", "1/")]
    kept = [op.get_friendly_name() for op in convs
            if any(mark in name for mark in marks for name in _names_around(op))]
    if not quantize_head:
        # The head outputs by the model family table's layer names, as calibration/body.py.
        kept += [n for n in names if n not in kept
                 and any(is_head_output(part) for part in n.split("/"))]
    return kept


def float_ops(ov_model):
    """Friendly names of the ops of `FLOAT_TYPES` kept float (NNCF's ignored scope).

    All but the FPN's nearest 2x upsamples (`Interpolate` in mode `nearest`,
    `onnx_export.repeat_upsamples_resized`): copies, which NNCF quantizes
    through, so the convolution after each FPN concat gets int8 inputs
    (ignored, they left those convolutions in float).
    """
    return [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() in FLOAT_TYPES and not (
                op.get_type_name() == "Interpolate"
                and op.get_attributes().get("mode") == "nearest")]


def _names_around(op, depth=2):
    """`op`'s name; for a `Conv__N` (renamed by tf2onnx), also those of the ops it feeds,
    `depth` levels down (its bias Add, then the SiLU's Sigmoid/Multiply)."""
    names, frontier = [op.get_friendly_name()], [op]
    if not names[0].startswith("Conv__"):
        return names
    for _ in range(depth):
        frontier = [target.get_node() for node in frontier for output in node.outputs()
                    for target in output.get_target_inputs()]
        names += [node.get_friendly_name() for node in frontier]
    return names


def quantize(ov_model, session):
    """`(int8 model, facts)`: `nncf.quantize` of `ov_model` on the session's images."""
    try:
        import nncf
    except ImportError as error:
        raise ImportError("OpenVINO INT8 needs NNCF: pip install 'edgedet[openvino]'.") from error

    data = session.data()
    images = [item["images"] for item in data]
    kept = float_convolutions(ov_model, session.quantize_head, session.float_blocks)
    if session.float_blocks and len(kept) == len(float_convolutions(ov_model,
                                                                     session.quantize_head)):
        raise ValueError(f"No convolution of the blocks {list(session.float_blocks)} was "
                         "found in the OpenVINO model.")
    session.notify(f"quantizing with NNCF on {len(images)} images from {data.source}")
    quantized = nncf.quantize(ov_model, nncf.Dataset(images), subset_size=len(images),
                              preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False,
                              ignored_scope=nncf.IgnoredScope(names=kept + float_ops(ov_model),
                                                              validate=False))
    facts = {"method": "nncf", "nncf": nncf.__version__, "preset": "mixed",
             "bias_correction": "full",
             "calibration_images": len(images),
             "calibration_source": str(data.source), "float_convolutions": kept}
    return quantized, facts
