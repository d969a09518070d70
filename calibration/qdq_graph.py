"""Graph edits and checks of Q/DQ models (`edgedet.calibration.qdq` writes them).

- `unshare_initializers`: before quantizing, body nodes get their own copy of
  a constant tf2onnx shared with the post-processing;
- `unround_other_readers`: after quantizing for TensorRT, readers that are
  not convolutions read the float tensor again;
- `check_placement`: every Q/DQ node sits in the body;
- `qdq_summary`: counts and zero points, for tests and reports.
"""

import numpy as np


def load_onnx(model):
    """`model` if it is an `onnx.ModelProto`, else the model at that path."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    return onnx.load(str(model))


def unround_other_readers(model, op_types):
    """Rewires the readers of dequantized activations that are not `op_types` to the
    float tensor, then drops the Q/DQ nodes left without readers.

    ONNX Runtime's quantizer gives every reader of a quantized tensor the
    dequantized copy (also with `DedicatedQDQPair`, a pair per reader), so a
    residual Add or a Concat would read a rounded value that TensorRT's
    recipe keeps float. Done in place; returns `model`.
    """
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    producer = {out: n for n in graph.node for out in n.output}
    for node in graph.node:
        if node.op_type in op_types or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for index, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] not in inits:
                node.input[index] = q.input[0]
    outputs = {o.name for o in graph.output}
    while True:  # Drop Q/DQ nodes nothing reads any more (a DQ first, then its Q).
        read = {name for n in graph.node for name in n.input} | outputs
        unused = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                  and not any(out in read for out in n.output)]
        if not unused:
            break
        for n in unused:
            graph.node.remove(n)


def unshare_initializers(model, quantize):
    """A copy of `model` where no initializer is shared by a node to quantize and another node.

    tf2onnx merges equal constants, so a body constant (an attention's
    `key_dim ** -0.5`) can be the very initializer the NMS compares scores
    with (a 0.25 confidence threshold); quantizing it would put a Q/DQ pair
    on the post-processing's input. The quantized nodes get their own copy.

    Args:
        model: `onnx.ModelProto`.
        quantize: iterable of str. The names of the nodes to quantize.
    """
    import onnx

    quantize = set(quantize)
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    shared = [
        init for init in model.graph.initializer
        if {n.name in quantize for n in users.get(init.name, [])} == {True, False}
    ]
    if not shared:
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for init in shared:
        copy = model.graph.initializer.add()
        copy.CopyFrom(init)
        copy.name = f"{init.name}__body"
        for node in users[init.name]:
            if node.name in quantize:
                node.input[:] = [copy.name if i == init.name else i for i in node.input]
    return model


def qdq_summary(model):
    """Counts and zero points of a Q/DQ model, for tests and reports.

    Returns:
        dict with `quantize` / `dequantize` counts, `zero_point_dtypes`
        (set of numpy dtype names), and `nonzero_zero_points` (names of
        zero-point initializers with a value other than 0).
    """
    from onnx import numpy_helper

    proto = load_onnx(model)
    inits = {i.name: i for i in proto.graph.initializer}
    dtypes, nonzero = set(), []
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in proto.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
            if len(node.input) > 2 and node.input[2] in inits:
                value = numpy_helper.to_array(inits[node.input[2]])
                dtypes.add(value.dtype.name)
                if np.any(value != 0):
                    nonzero.append(node.input[2])
    return {
        "quantize": counts["QuantizeLinear"],
        "dequantize": counts["DequantizeLinear"],
        "zero_point_dtypes": dtypes,
        "nonzero_zero_points": sorted(set(nonzero)),
    }


def check_placement(model, body):
    """Problems with where the Q/DQ nodes of a quantized model sit (empty when fine).

    Q/DQ must only touch the body: every `QuantizeLinear` reads a tensor made
    by a body node, every `DequantizeLinear` feeds body nodes only (or another
    Q/DQ, or a `Shape`, which reads no values), and the float-kept nodes (head
    output convolutions, ...) read no dequantized weights.

    Args:
        model: path or `onnx.ModelProto`. The quantized model.
        body: `Body` of the FP32 model it was made from.

    Returns:
        A list of str, one per problem.
    """
    proto = load_onnx(model)
    qdq = {"QuantizeLinear", "DequantizeLinear"}
    nodes = list(proto.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    consumers = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    inits = {i.name for i in proto.graph.initializer}
    body_nodes, float_nodes = set(body.nodes), set(body.float_nodes)

    def upstream(tensor):  # First non-Q/DQ producer of a tensor.
        node = producer.get(tensor)
        while node is not None and node.op_type in qdq:
            node = producer.get(node.input[0])
        return node

    problems = []
    for n in nodes:
        if n.op_type == "QuantizeLinear":
            source = upstream(n.input[0])
            if n.input[0] not in inits and (source is None or source.name not in body_nodes):
                where = source.name if source is not None else f"graph input {n.input[0]}"
                problems.append(
                    f"{n.name} quantizes '{n.input[0]}' made outside the body ({where})")
        elif n.op_type == "DequantizeLinear":
            for user in consumers.get(n.output[0], []):
                if user.op_type in qdq or user.op_type == "Shape":  # Shape reads no values.
                    continue
                if user.name not in body_nodes:
                    problems.append(f"{n.name} feeds '{user.name}', outside the body")
                elif user.name in float_nodes and n.input[0] in inits:
                    problems.append(f"{n.name} feeds int8 weights to float-kept '{user.name}'")
    return problems
