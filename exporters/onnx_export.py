"""ONNX exporter: tf2onnx on the end-to-end `serve` function.

The model has one input `images` (uint8 `[batch, height, width, 3]`, all
three dynamic) and the contract's outputs `boxes`, `confidence`, `classes`,
`num_detections`; the NMS is ONNX `NonMaxSuppression`. The edgedet metadata
is `metadata_props["edgedet"]`.

Checks run before anything is written: every node is a standard ONNX op
(tf2onnx leaves ops it cannot convert in the graph and only logs them),
`onnx.checker.check_model`, strict `onnx.shape_inference.infer_shapes`
(whose result is what is saved), the I/O names and dtypes, and the presence
of `NonMaxSuppression`.

This module is not called `onnx.py`, so it never shadows the `onnx` package.
"""

import contextlib
import logging
from pathlib import Path

from edgedet.exporters.base import (
    INPUT_NAME,
    OUTPUTS,
    ExportError,
    check_outputs,
    input_signature,
    op_names_in_message,
    require_precision,
    serving_function,
    stage,
)
from edgedet.files import atomic_write_bytes, check_writable_output
from edgedet.metadata import METADATA_KEY

TARGET = "onnx"
# 17 is the lowest opset with everything the graph needs in its final form
# and is supported by ONNX Runtime >= 1.14 and TensorRT >= 8.6.
OPSET = 17
# Names given to the dynamic dimensions (tf2onnx calls them `unk__N`).
INPUT_DIMS = ("batch", "height", "width")


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None,
           opset=OPSET):
    """Converts `end_to_end` to ONNX and writes it to `path`.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata`, stored in `metadata_props["edgedet"]`.
        path: str or path. The `.onnx` file to write.
        force: bool. Replace an existing `path`. Defaults to False.
        precision: str. Must be `"fp32"` (INT8:
            `edgedet.exporters.onnx_int8`).
        session: unused (the exporter signature's INT8 calibration).
        opset: int. ONNX opset, at least 17. Defaults to 17.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage (and the op, for conversion errors).
        OutputExistsError: `path` exists and `force` is False.
    """
    require_precision(TARGET, precision)
    check_opset(opset)
    path = check_writable_output(path, force)
    with stage(TARGET, "trace"):
        serving_function(end_to_end)
    model = convert(end_to_end, opset)
    with stage(TARGET, "check"):
        model = check(model, end_to_end.config.head)
    with stage(TARGET, "write metadata"):
        set_metadata(model, metadata)
    with stage(TARGET, "write"):
        atomic_write_bytes(path, model.SerializeToString())
    return Path(path)


def check_opset(opset):
    """Raises ValueError unless `opset` is an opset edgedet can write (an int >= 17)."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < OPSET:
        raise ValueError(f"Invalid opset: {opset!r}. Expected an int >= {OPSET}.")


def convert(end_to_end, opset=OPSET):
    """Runs tf2onnx on `end_to_end.serve`; returns the `ModelProto` (not yet checked)."""
    with stage(TARGET, "convert", ops_from_error=lambda e: op_names_in_message(str(e))):
        import tf2onnx

        with _quiet_tf2onnx():
            model, _ = tf2onnx.convert.from_function(
                end_to_end.serve, input_signature=input_signature(), opset=opset
            )
    unsupported = unsupported_ops(model)
    if unsupported:
        raise ExportError(
            TARGET,
            "convert",
            "tf2onnx could not convert these TensorFlow ops to ONNX; change the graph "
            "to use ops tf2onnx supports.",
            ops=unsupported,
        )
    _name_dynamic_dims(model)
    split_transposes_removed(model)
    input_round_trip_removed(model)
    repeat_upsamples_resized(model)
    return model


# The ONNX op the selection stage becomes, per head (`InferenceConfig.head`).
SELECTION_OPS = {"one2many": "NonMaxSuppression", "one2one": "TopK"}


def check(model, head="one2many"):
    """Checks a converted model and returns it with inferred shapes.

    Args:
        model: `onnx.ModelProto`.
        head: str. The graph's head: its selection op (`SELECTION_OPS`) must
            be there. Defaults to `"one2many"`.

    Raises:
        ValueError: the checker or shape inference fails, the I/O does not
            follow the contract, or there is no `NonMaxSuppression` (for the
            one-to-one head, no `TopK`).
    """
    import onnx

    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    inputs = [i for i in model.graph.input]
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or (
        inputs[0].type.tensor_type.elem_type != onnx.TensorProto.UINT8
    ):
        raise ValueError(
            f"Expected one uint8 input named '{INPUT_NAME}', received "
            f"{[(i.name, _dtype_name(i)) for i in inputs]}."
        )
    check_outputs(
        {o.name: (_dtype_name(o), len(o.type.tensor_type.shape.dim)) for o in model.graph.output},
        where="ONNX model",
    )
    if SELECTION_OPS[head] not in op_types(model):
        raise ValueError(
            f"The graph has no ONNX {SELECTION_OPS[head]}: the {head} selection did not convert "
            "to the standard op (runtimes would run a slow, unportable emulation)."
        )
    return model


def head_of(model):
    """The head (`InferenceConfig.head`) in an edgedet ONNX's metadata; `"one2many"` if none."""
    from edgedet.metadata import ArtifactMetadata

    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        return "one2many"
    return ArtifactMetadata.from_json(props[METADATA_KEY]).inference.head


def set_metadata(model, metadata):
    """Stores `metadata` as `metadata_props["edgedet"]` (replacing any previous value)."""
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata.to_json()


def iter_nodes(graph):
    """Every node of `graph` and of its subgraphs (Loop / If bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from iter_nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from iter_nodes(subgraph)


def op_types(model):
    """The set of op types in `model`, subgraphs included."""
    return {node.op_type for node in iter_nodes(model.graph)}


def unsupported_ops(model):
    """Op types that are not standard ONNX ops (left behind by tf2onnx), sorted."""
    import onnx

    bad = set()
    for node in iter_nodes(model.graph):
        domain = node.domain or ""
        if domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type, domain):
            bad.add(node.op_type if not domain else f"{domain}.{node.op_type}")
    return sorted(bad)


def cancelling_transposes(model):
    """`(first, second)` names of Transpose pairs whose permutations cancel out.

    A lean graph has none: tf2onnx's optimizer removes them. Used by tests
    and benchmarks to keep it that way.
    """
    producers = {}
    for node in iter_nodes(model.graph):
        for output in node.output:
            producers[output] = node
    pairs = []
    for node in iter_nodes(model.graph):
        if node.op_type != "Transpose":
            continue
        parent = producers.get(node.input[0])
        if parent is None or parent.op_type != "Transpose":
            continue
        first, second = _perm(parent), _perm(node)
        if first and second and [first[i] for i in second] == list(range(len(first))):
            pairs.append((parent.name, node.name))
    return pairs


def split_transposes_removed(model):
    """Splits the channels where the data is, without a layout round trip; returns how many.

    Keras' C2f block splits its NHWC tensor on the channel axis; tf2onnx,
    whose convolutions are NCHW, writes that as `Transpose(NCHW->NHWC) ->
    Split(axis 3) -> Transpose(NHWC->NCHW)` on every half and does not remove
    the pair (two full copies of a large feature map per block: a tenth of
    the whole graph's time in OpenVINO). Where a Transpose feeds only a Split
    whose every output feeds only Transposes that undo it, the Split is
    moved before the Transpose (axis `perm[axis]`) and all the Transposes
    go. Pure data movement: the outputs are bit for bit the same. Edits
    `model` in place (the main graph).
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    removed = []
    for split in [n for n in graph.node if n.op_type == "Split"]:
        first = producers.get(split.input[0])
        if first is None or first.op_type != "Transpose" or first.output[0] in outputs:
            continue
        perm = _perm(first)
        if perm is None or [n.name for n in consumers[first.output[0]]] != [split.name]:
            continue
        inverse = [consumers.get(out, []) for out in split.output]
        if any(out in outputs for out in split.output) or not all(
                len(users) == 1 and users[0].op_type == "Transpose"
                and [perm[i] for i in (_perm(users[0]) or [])] == list(range(len(perm)))
                for users in inverse):
            continue
        axis = next((a for a in split.attribute if a.name == "axis"), None)
        rank = len(perm)
        old_axis = (axis.i if axis is not None else 0) % rank
        if axis is None:
            split.attribute.add().CopyFrom(_int_attribute("axis", perm[old_axis]))
        else:
            axis.i = perm[old_axis]
        gone = [first.output[0], *split.output]
        split.input[0] = first.input[0]
        for index, (undo,) in enumerate(inverse):
            split.output[index] = undo.output[0]
        removed.extend([first, *(undo for (undo,) in inverse)])
        stale = [v for v in graph.value_info if v.name in gone]
        for value in stale:
            graph.value_info.remove(value)
    for node in removed:
        graph.node.remove(node)
    return len(removed)


# Elementwise ops that commute with a Transpose when their other input is one number.
_SCALAR_OPS = ("Mul", "Add", "Sub", "Div")


def input_round_trip_removed(model):
    """Feeds the letterboxed image to the stem in NCHW, without NHWC in between; returns 1 or 0.

    tf2onnx resizes and pads in NCHW, then transposes back to NHWC for the
    letterbox's static-shape `Reshape` and the network's `/255`, and to NCHW
    again for the stem convolution: `Transpose -> Reshape -> Mul(scalar) ->
    Transpose(inverse)`. The Reshape only restates the shape, so the chain is
    `Reshape(permuted shape) -> Mul(scalar)` on the NCHW tensor: two copies
    of the image fewer, and the `/255` sits right before the stem, where
    runtimes fold it into the weights. Exact. Edits `model` in place.
    """
    from onnx import numpy_helper

    graph = model.graph
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {i.name: i for i in graph.initializer}
    outputs = {o.name for o in graph.output}

    def only_user(name):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in outputs else None

    for first in [n for n in graph.node if n.op_type == "Transpose"]:
        reshape = only_user(first.output[0])
        if reshape is None or reshape.op_type != "Reshape" or reshape.input[1] not in initializers:
            continue
        chain, node = [], only_user(reshape.output[0])
        while node is not None and node.op_type in _SCALAR_OPS and node.input[0] == (
                chain[-1] if chain else reshape).output[0] and node.input[1] in initializers and (
                numpy_helper.to_array(initializers[node.input[1]]).size == 1):
            chain.append(node)
            node = only_user(node.output[0])
        perm, back = _perm(first), _perm(node) if node is not None else None
        if not (node is not None and node.op_type == "Transpose" and perm and back
                and [perm[i] for i in back] == list(range(len(perm)))):
            continue
        shape = numpy_helper.to_array(initializers[reshape.input[1]])
        if shape.size != len(perm):
            continue
        permuted = numpy_helper.from_array(shape[back], f"{reshape.name}__nchw_shape")
        graph.initializer.append(permuted)
        if len(consumers[reshape.input[1]]) == 1:  # The old shape is used nowhere else.
            graph.initializer.remove(initializers[reshape.input[1]])
        reshape.input[0], reshape.input[1] = first.input[0], permuted.name
        last = chain[-1] if chain else reshape
        gone = [first.output[0], reshape.output[0], *(n.output[0] for n in chain)]
        last.output[0] = node.output[0]
        for value in [v for v in graph.value_info if v.name in gone]:
            graph.value_info.remove(value)
        graph.node.remove(first)
        graph.node.remove(node)
        return 1
    return 0


# The repeat-based 2x upsample tf2onnx writes for Keras' `UpSampling2D`, from the NCHW
# input back to NCHW: (op type, what its attribute or constant input must be).
_REPEAT_UPSAMPLE = (("Unsqueeze", [3]), ("Tile", [1, 1, 1, 2, 1]), ("Transpose", [0, 2, 3, 4, 1]),
                    ("Reshape", None), ("Unsqueeze", [3]), ("Tile", [1, 1, 1, 2, 1]),
                    ("Reshape", None), ("Transpose", [0, 3, 1, 2]))


def repeat_upsamples_resized(model):
    """Writes each 2x nearest upsample as one `Resize`; returns how many.

    Keras' `UpSampling2D` repeats rows, then columns, in NHWC; tf2onnx writes
    that from the network's NCHW maps as `Unsqueeze -> Tile -> Transpose ->
    Reshape -> Unsqueeze -> Tile -> Reshape -> Transpose` (four full copies of
    the map, the Tiles in slow generic kernels: in OpenVINO they also keep
    NNCF from quantizing the convolution after the FPN's concat). The chain
    is `Resize(mode nearest, asymmetric, floor, scales [1, 1, 2, 2])` of its
    NCHW input, element for element. Chains whose constants or known shapes
    differ are left alone. Edits `model` in place (the main graph).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {i.name: numpy_helper.to_array(i).tolist() for i in graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {v.name: [d.dim_value or None for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.input, *inferred.value_info, *inferred.output]}
    rewritten = []
    for last in [n for n in graph.node if n.op_type == "Transpose"]:
        chain, node = [], last
        for op_type, value in reversed(_REPEAT_UPSAMPLE):
            if node is None or node.op_type != op_type or (value is not None and (
                    _perm(node) if op_type == "Transpose" else constants.get(node.input[1])
            ) != value):
                break
            chain.insert(0, node)
            node = producers.get(node.input[0])
        source = chain[0].input[0] if len(chain) == len(_REPEAT_UPSAMPLE) else None
        if source is None or not _doubles(shapes.get(source), shapes.get(last.output[0])):
            continue
        # Named after the chain's first node: the Keras layer's scope (calibration.body).
        name = f"{chain[0].name}__upsample"
        scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"{name}_scales")
        graph.initializer.append(scales)
        resize = helper.make_node(
            "Resize", [source, "", scales.name], [last.output[0]], name=name,
            mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        graph.node.insert(list(graph.node).index(last), resize)
        rewritten.append(chain)
    for chain in rewritten:
        for node in chain:
            graph.node.remove(node)
    if rewritten:
        _unused_removed(graph)
    return len(rewritten)


def _doubles(before, after):
    """Whether known shapes `[B, C, H, W]` -> `[B, C, 2H, 2W]` (unknown dims: False)."""
    if not before or not after or len(before) != 4 or len(after) != 4:
        return False
    channels, height, width = before[1:]
    return None not in (channels, height, width) and after[1:] == [channels, 2 * height,
                                                                    2 * width]


def _unused_removed(graph):
    """Drops nodes (and their value_info) whose outputs nothing reads, until none is left."""
    outputs = {o.name for o in graph.output}
    while True:  # Subgraph bodies may read outer names: count their inputs too.
        used = {name for node in iter_nodes(graph) for name in node.input} | outputs
        dead = [n for n in graph.node if not any(out in used for out in n.output)]
        if not dead:
            break
        gone = {out for node in dead for out in node.output}
        for node in dead:
            graph.node.remove(node)
        for value in [v for v in graph.value_info if v.name in gone]:
            graph.value_info.remove(value)
    used = {name for node in iter_nodes(graph) for name in node.input}
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)


def _int_attribute(name, value):
    from onnx import helper

    return helper.make_attribute(name, value)


def _perm(node):
    for attribute in node.attribute:
        if attribute.name == "perm":
            return list(attribute.ints)
    return None


def _dtype_name(value_info):
    import onnx

    elem_type = value_info.type.tensor_type.elem_type
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else "undefined"


def _name_dynamic_dims(model):
    """Names the input's dynamic dims batch/height/width, and the outputs' batch dim."""
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    for dim, name in zip(dims, INPUT_DIMS):
        if not dim.HasField("dim_value"):
            dim.dim_param = name
    for output in model.graph.output:
        if output.name in OUTPUTS:
            dim = output.type.tensor_type.shape.dim[0]
            if not dim.HasField("dim_value"):
                dim.dim_param = INPUT_DIMS[0]


@contextlib.contextmanager
def _quiet_tf2onnx():
    """tf2onnx logs every step at INFO; keep only its warnings and errors."""
    tf2onnx_logger = logging.getLogger("tf2onnx")
    level = tf2onnx_logger.level
    tf2onnx_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        tf2onnx_logger.setLevel(level)
