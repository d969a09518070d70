"""TFLite INT8 exporter: the body in full-integer int8, letterbox / decode / NMS in float.

The end-to-end graph is frozen and converted like the FP32 TFLite export
(`edgedet.exporters.tflite`), then quantized in two steps, the way
TensorFlow's own `QuantizationDebugger` does selective quantization:

1. calibrate: the converter runs the representative dataset (raw uint8
   images of the export's `ExportCalibration`, `edgedet.calibration`)
   through the float model and stores each tensor's range in the
   flatbuffer (`_experimental_calibrate_only`);
2. quantize (`mlir_quantize`) with the ops outside the body denylisted.
   Their recorded ranges are also removed first: without them the
   quantizer cannot slip a Quantize/Dequantize pair onto a float op's output
   (it does so for the decode's sigmoid otherwise).

The body is found from the Keras name scope, as for ONNX
(`edgedet.calibration.body`): ops named `<scope>/<layer>...`, minus the
input rescaling, the head's output convolutions and what follows them
(unless `quantize_head`), the model family's float conv blocks
(`family_float_blocks`) and the session's `float_blocks`. The body's
convolutions run int8 with per-channel weights; the input stays uint8 and
the outputs float32/int32, so the model runs on the plain LiteRT
interpreter through the same runtime.

The flatbuffer analysis (`float_ops`, `int8_summary`) lives here because
only this exporter (and its tests) read TFLite graphs; calibration owns the
data, the ONNX body and the conv-block names it reuses.
"""

import collections
import dataclasses
import re
import tempfile
import warnings
from pathlib import Path

from edgedet.calibration.body import (
    INPUT_LAYERS,
    family_float_blocks,
    is_head_output,
    strip_block_suffix,
)
from edgedet.calibration.methods import RULES, combine
from edgedet.exporters.base import require_precision, serving_function, stage
from edgedet.exporters.tflite import (
    SIGNATURE_KEY,
    add_metadata,
    check,
    converter_logs_silenced,
    freeze,
)
from edgedet.files import atomic_write_bytes, check_writable_output
from edgedet.metadata import METADATA_KEY

TARGET = "tflite"
# How each calibration method (`ExportCalibration.method`) sets the activation ranges
# (`image_ranges`): "min_max" is the TFLite calibrator's own (the extremes over all images);
# "p90_min_max" the 90th percentile over the images of each image's max (10th of the mins),
# which ignores the rarest images' extremes; "mean_min_max" their mean, which clips more.
# docs/benchmarks.md (issue 25) has the figures behind the choice.
RANGES = {"minmax": "min_max", "entropy": "p90_min_max", "percentile": "p90_min_max",
          "p90_min_max": "p90_min_max"}
RANGE_QUANTILES = RULES
# The op types of the body's convolutions.
CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def export(end_to_end, metadata, path, force=False, precision="int8", session=None):
    """Converts `end_to_end` to an INT8 `.tflite` at `path`.

    The representative dataset, `quantize_head` and the conv blocks to keep
    float (as found by the sensitivity search) come from `session`.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata`; written with `precision="int8"`.
        path: str or path. The `.tflite` file.
        force: bool. Replace an existing `path`. Defaults to False.
        precision: str. Must be `"int8"`. Defaults to `"int8"`.
        session: `edgedet.calibration.session.ExportCalibration` or None (the
            default calibration set). Defaults to None.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage.
        OutputExistsError: `path` exists and `force` is False.
    """
    from edgedet.calibration.session import ExportCalibration

    require_precision(TARGET, precision, "int8")
    session = session or ExportCalibration()
    data = session.data()
    path = check_writable_output(path, force)
    float_blocks = session.float_blocks
    with stage(TARGET, "trace"):
        function = serving_function(end_to_end)
    with stage(TARGET, "freeze variables"):
        frozen = freeze(function)
    ranges_rule = RANGES[session.method]
    with stage(TARGET, "calibrate"):
        calibrated = calibrate(frozen, data)
        ranges = (None if ranges_rule == "min_max"
                  else image_ranges(calibrated, data, RANGE_QUANTILES[ranges_rule]))
    with stage(TARGET, "quantize"):
        content, floats, float_blocks = quantize(
            calibrated, quantize_head=session.quantize_head, float_blocks=float_blocks,
            ranges=ranges)
    with stage(TARGET, "check"):
        check(content)
    metadata = dataclasses.replace(
        metadata,
        precision="int8",
        extra={
            **metadata.extra,
            "quantization": {
                "format": "tflite-int8",
                "calibration_images": len(data),
                "activation_ranges": ranges_rule,
                "data_key": data.key(),
                "float_ops": len(floats),
                "float_blocks": list(float_blocks),
            },
        },
    )
    with stage(TARGET, "write metadata"):
        content = add_metadata(content, METADATA_KEY, metadata.to_json().encode("utf-8"))
    with stage(TARGET, "write"):
        atomic_write_bytes(path, content)
    return Path(path)


def calibrate(frozen, data):
    """Float flatbuffer of `frozen.serve` with the ranges of `data` recorded in it."""
    from edgedet import backend

    tf = backend.tensorflow()

    with tempfile.TemporaryDirectory(prefix="edgedet-tflite-int8-") as folder:
        tf.saved_model.save(
            frozen,
            folder,
            signatures={SIGNATURE_KEY: frozen.serve.get_concrete_function()},
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[SIGNATURE_KEY])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = data.representative_dataset()
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        # What tf.lite.experimental.QuantizationDebugger sets for selective
        # quantization: calibrate now, quantize later with a denylist.
        converter.experimental_mlir_quantizer = True
        converter._experimental_calibrate_only = True
        with converter_logs_silenced():
            calibrated = converter.convert()
    data.check_degenerate()
    return calibrated


def image_ranges(calibrated, data, quantile=None):
    """`{tensor index: (min, max)}` from each image's extremes, instead of the extremes of all.

    The TFLite calibrator keeps the extremes over all images, so one image
    with a rare large activation widens the range, and coarsens the steps,
    for every image. Here each tensor's min and max are taken per image,
    then combined over the images (`edgedet.calibration.methods.combine`):
    their mean (`quantile` None), or their `quantile` (the max's; `1 -
    quantile` of the mins), which drops only the rarest images' extremes.
    Only the tensors the calibrator gave a range are measured, by running
    the float calibrated model with every intermediate tensor kept.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgedet import backend
    from edgedet.calibration.data import INPUT_NAME

    backend.tensorflow()  # Imported quietly before its submodules.
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    measured = [i for i, t in enumerate(tensors) if t.quantization is not None
                and t.quantization.min is not None and len(t.quantization.min) == 1]
    with warnings.catch_warnings():  # "intended for debugging": keeping them is the point.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=calibrated,
                                  experimental_preserve_all_tensors=True)
    (entry,) = interpreter.get_input_details()
    lows, highs, shape = {i: [] for i in measured}, {i: [] for i in measured}, None
    for feed in data:
        image = feed[INPUT_NAME]
        if image.shape != shape:
            interpreter.resize_tensor_input(entry["index"], image.shape, strict=False)
            interpreter.allocate_tensors()
            shape = image.shape
        interpreter.set_tensor(entry["index"], image)
        interpreter.invoke()
        for index in measured:
            values = interpreter.get_tensor(index)
            if values.size:
                lows[index].append(float(values.min()))
                highs[index].append(float(values.max()))
    return {i: combine(lows[i], highs[i], quantile) for i in measured if lows[i]}


def _op_graph(content):
    """`(ops, names)`: op details of the flatbuffer's main subgraph, tensor index -> name."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    return interpreter._get_ops_details(), names


def float_ops(ops, names, quantize_head=False, float_blocks=()):
    """Indices of the ops that stay float, from `_op_graph`'s `(ops, names)`.

    Returns:
        `(outside, kept, blocks)`: `outside` is everything off the int8 path
        (outside the body, the input rescaling, the head's output
        convolutions unless `quantize_head`, and what follows them); `kept`
        the ops of the conv blocks kept float (as
        `edgedet.calibration.sensitivity` names them), which sit inside the
        body between int8 ops; `blocks` those blocks: the model family's
        (`edgedet.calibration.body.family_float_blocks`), then `float_blocks`.
    """

    def first(op):
        return names[op["outputs"][0]].split(";")[0] if len(op["outputs"]) else ""

    scopes = collections.Counter(
        first(op).split("/")[0] for op in ops if op["op_name"] == "CONV_2D" and "/" in first(op)
    )
    if not scopes:
        raise ValueError("No scoped CONV_2D op in the TFLite model: cannot find the network body.")
    scope = scopes.most_common(1)[0][0]

    def layer(op):
        name = first(op)
        if not name.startswith(scope + "/"):
            return None
        return re.sub(r"_\d+$", "", name[len(scope) + 1:].split("/")[0])

    body = {op["index"] for op in ops if layer(op) is not None}
    head = {op["index"] for op in ops if op["index"] in body and op["op_name"] == "CONV_2D"
            and is_head_output(layer(op))}
    if not head:
        raise ValueError(f"No head output convolutions under '{scope}' in the TFLite model.")
    consumers = collections.defaultdict(list)
    for op in ops:
        for tensor in op["inputs"]:
            if tensor >= 0:
                consumers[tensor].append(op["index"])
    after, stack = set(), list(head)
    while stack:
        for tensor in ops[stack.pop()]["outputs"]:
            for user in consumers[tensor]:
                if user in body and user not in after:
                    after.add(user)
                    stack.append(user)
    floats = {op["index"] for op in ops if op["index"] not in body} | after
    floats |= {op["index"] for op in ops if layer(op) in INPUT_LAYERS}
    if not quantize_head:
        floats |= head
    block = {op["index"]: strip_block_suffix(layer(op)) for op in ops if op["index"] in body}
    unknown = sorted(set(float_blocks) - set(block.values()))
    if unknown:
        raise ValueError(f"Unknown conv block(s) to keep float: {unknown}; not in the "
                         "TFLite model's body.")
    blocks = tuple(dict.fromkeys([*family_float_blocks(block.values()), *float_blocks]))
    kept = {index for index, name in block.items() if name in blocks}
    return floats, kept, blocks


def quantize(calibrated, quantize_head=False, float_blocks=(), ranges=None):
    """Quantizes the body of a calibrated flatbuffer.

    Returns `(bytes, float op indices, conv blocks kept float)`.

    `ranges` (`{tensor index: (min, max)}`, from `image_ranges`) replaces the
    calibrator's ranges of those tensors; None keeps them.
    """
    from edgedet import backend

    backend.tensorflow()  # Imported quietly before its submodules.
    from tensorflow.lite.python import convert
    from tensorflow.lite.tools import flatbuffer_utils

    ops, names = _op_graph(calibrated)
    outside, kept, blocks = float_ops(ops, names, quantize_head, float_blocks)
    floats = outside | kept
    denied_nodes = []
    for index in floats:
        outputs = [names[t] for t in ops[index]["outputs"]]
        denied_nodes.extend(outputs)
        denied_nodes.append(";".join(outputs))  # How multi-output ops are named.
    body_types = {op["op_name"] for op in ops if op["index"] not in floats}
    denied_ops = sorted({ops[i]["op_name"] for i in floats} - body_types)

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    # Kept blocks keep their output ranges: their int8 consumers need them.
    for index, (low, high) in (ranges or {}).items():
        if tensors[index].quantization is not None:
            tensors[index].quantization.min = [min(low, high)]
            tensors[index].quantization.max = [max(low, high)]
    for index in outside:
        for tensor in ops[index]["outputs"]:
            tensors[tensor].quantization = None  # No range: cannot be quantized.
    stripped = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    with converter_logs_silenced():
        content = convert.mlir_quantize(
            stripped,
            fully_quantize=False,
            denylisted_ops=denied_ops,
            denylisted_nodes=sorted(set(denied_nodes)),
        )
    return bytes(content), floats, blocks


def int8_summary(content):
    """`{"body_int8_ops", "post_int8_ops", "float_convs"}` of a quantized flatbuffer.

    `post_int8_ops` lists ops outside the body with an int8 output (should
    be empty); `float_convs` the convolutions (`CONV_2D`, `DEPTHWISE_CONV_2D`) with
    float outputs.
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    scope = collections.Counter(
        details[op["outputs"][0]]["name"].split("/")[0] for op in convs
    ).most_common(1)[0][0]
    body_int8, post_int8, float_convs = 0, [], []
    for op in ops:
        if not len(op["outputs"]):
            continue
        out = details[op["outputs"][0]]
        in_body = out["name"].split(";")[0].startswith(scope + "/")
        quantized = out["dtype"] in (np.int8, np.uint8)
        if quantized and in_body:
            body_int8 += 1
        elif quantized and not (op["op_name"] == "QUANTIZE"
                                and _feeds_body(op, ops, details, scope)):
            post_int8.append(f"{op['op_name']} {out['name']}")
        if op["op_name"] in CONVOLUTIONS and out["dtype"] == np.float32:
            float_convs.append(out["name"].split(";")[0])
    return {"body_int8_ops": body_int8, "post_int8_ops": post_int8, "float_convs": float_convs}


def _feeds_body(op, ops, details, scope):
    """Whether a QUANTIZE op's output is read by body ops only (the body's entry)."""
    out = op["outputs"][0]
    users = [o for o in ops if out in o["inputs"]]
    return bool(users) and all(
        details[u["outputs"][0]]["name"].split(";")[0].startswith(scope + "/") for u in users
    )
