"""The Q/DQ rules of TensorRT's explicit quantization (the lint's `qdq` rule).

What TensorRT's ONNX parser and builder take from a Q/DQ model, the same in
8.5, 8.6, 10.x and 11 (onnx-tensorrt `docs/operators.md`: QuantizeLinear
"`y_zero_point` must be 0", DequantizeLinear "`x_zero_point` must be zero";
TensorRT developer guide, "Explicit Quantization": symmetric INT8 (and FP8 /
INT4) only, activations per tensor, weights per output channel; "only
activation types allowed as input to this layer" for an INT32 bias):

- every zero point is a constant INT8 0 (a QuantizeLinear without one
  quantizes to UINT8, which TensorRT refuses);
- nothing is quantized to INT32: biases stay float (ONNX Runtime quantizes
  them by default);
- a per-axis (vector) scale only on convolution weights, along the output
  channel: axis 0 for Conv, 1 for ConvTranspose;
- scales are positive constants.

`edgedet.exporters.trt_lint.lint_onnx` runs `check_qdq`; this module has no
edgedet import, so either can be read alone.
"""

import numpy as np

# Output-channel axis of a weight, per weighted op.
WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def check_qdq(graph, constants):
    """Problems with the Q/DQ nodes of `graph` for TensorRT.

    Args:
        graph: `onnx.GraphProto`.
        constants: dict of name -> numpy value (initializers and Constant
            outputs).

    Returns:
        A list of str, one sentence per problem.
    """
    from onnx import TensorProto

    producer = {out: n for n in graph.node for out in n.output}
    readers = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, index))
    inits = {i.name: i for i in graph.initializer}
    problems = []
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        zero_name = node.input[2] if len(node.input) > 2 else ""
        if not zero_name:
            if node.op_type == "QuantizeLinear":
                problems.append(f"QuantizeLinear '{node.name}' has no zero point, so it "
                                "quantizes to UINT8; TensorRT takes INT8 Q/DQ.")
        elif zero_name not in constants:
            problems.append(f"{node.op_type} '{node.name}' has a computed zero point.")
        elif np.any(constants[zero_name] != 0):
            problems.append(
                f"{node.op_type} '{node.name}' has a nonzero zero point: TensorRT needs "
                "symmetric quantization (zero points 0; onnx-tensorrt docs/operators.md). Use "
                "the S8S8 Q/DQ model.")
        elif zero_name in inits and inits[zero_name].data_type != TensorProto.INT8:
            problems.append(
                f"{node.op_type} '{node.name}' quantizes to "
                f"{TensorProto.DataType.Name(inits[zero_name].data_type)}; TensorRT takes INT8 "
                "Q/DQ (a quantized bias must stay float).")
        problems += _check_scale(node, constants)
        if node.op_type == "DequantizeLinear":
            problems += _check_readers(node, readers, producer, constants)
    return problems


def _check_scale(node, constants):
    scale = constants.get(node.input[1])
    if scale is None:
        return [f"{node.op_type} '{node.name}' has a computed scale; TensorRT needs a "
                "constant one."]
    if not np.all(np.asarray(scale) > 0):
        return [f"{node.op_type} '{node.name}' has a scale <= 0."]
    return []


def _check_readers(node, readers, producer, constants):
    """A DequantizeLinear: never a bias; a vector scale only on a conv weight's axis."""
    problems = []
    scale = np.asarray(constants.get(node.input[1], 0.0))
    per_axis = scale.size > 1
    source = producer.get(node.input[0])
    weight = node.input[0] in constants or (
        source is not None and source.op_type == "QuantizeLinear"
        and source.input[0] in constants)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    for reader, index in readers.get(node.output[0], []):
        if reader.op_type in WEIGHT_AXIS and index == 2:
            problems.append(f"DequantizeLinear '{node.name}' feeds the bias of "
                            f"{reader.op_type} '{reader.name}'; TensorRT takes float biases.")
        elif per_axis and not (weight and reader.op_type in WEIGHT_AXIS and index == 1):
            problems.append(f"DequantizeLinear '{node.name}' has a per-axis scale on "
                            f"what '{reader.name}' reads as input {index}; TensorRT quantizes "
                            "activations per tensor.")
        elif per_axis and axis != WEIGHT_AXIS[reader.op_type]:
            problems.append(f"DequantizeLinear '{node.name}' quantizes the weight of "
                            f"{reader.op_type} '{reader.name}' along axis {axis}; TensorRT "
                            f"takes the output-channel axis ({WEIGHT_AXIS[reader.op_type]}).")
    return problems
