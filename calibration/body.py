"""Which nodes of an end-to-end ONNX graph are the network body.

The end-to-end graph is letterbox -> network -> decode -> NMS -> undo
letterbox (see `edgedet.end_to_end`). Only the network is quantized. tf2onnx
keeps the Keras name scope in node names: every node of the network is named
`<scope>/<layer>_N/...` where `<scope>` is the model's call scope (e.g.
`yolov8_detector_1`). The body is found from that scope, then cleaned:

- the head's output convolutions (the model family's `head_output_layers`,
  `edgedet.models.families`: `yolo_v8_head_<level>_{box,class}_3_conv`) and
  everything after them (reshape, concat, the `boxes`/`classes` identity)
  stay float by default, so the raw head that the DFL decode reads is float;
- the family's `input_layers` (`rescaling`) stay float (a constant multiply
  of the letterboxed pixels);
- the family's `int8_float_layers` (conv blocks the sensitivity search found
  INT8 cannot carry, e.g. YOLO11's stride-8 class branch) stay float:
  `family_float_blocks` is the one rule every INT8 path reads (this body for
  the ONNX Q/DQ models and the TensorRT cache, the TFLite and OpenVINO INT8
  exporters);
- unnamed nodes tf2onnx inserted inside the body (layout `Transpose`s) join
  it when every input comes from the body and every consumer is in it.

Example:

```python
import onnx
from edgedet.calibration.body import find_body

body = find_body(onnx.load("model.onnx"))
body.quantize   # node names to quantize
body.float_head # head output convolutions kept float
```
"""

import collections
import dataclasses
import re

from edgedet.models import families

# Layers kept float at the body's input, for every model family.
INPUT_LAYERS = tuple(sorted(families.input_layers()))
# Op types that carry no arithmetic worth quantizing on their own.
_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Constant", "Range"}
# A conv block's Keras layers: `<block>_conv`, `<block>_bn`, `<block>_pad`, and `<block>` (SiLU).
_BLOCK_SUFFIX = re.compile(r"_(bn|conv|pad)$")


class BodyNotFoundError(ValueError):
    """The ONNX graph has no recognisable network body."""


@dataclasses.dataclass(frozen=True)
class Body:
    """The body of an end-to-end graph.

    Attributes:
        scope: str. The name scope of the network's nodes.
        nodes: tuple of str. Every body node (float-kept ones included).
        quantize: tuple of str. Nodes to quantize.
        float_head: tuple of str. Head output convolutions kept float.
        float_nodes: tuple of str. Body nodes kept float (head outputs, what
            follows them, input rescaling, the family's float blocks, and
            any `exclude`).
        input_tensors: tuple of str. Tensors entering the body from the
            letterbox.
        output_tensors: tuple of str. Tensors leaving the body (raw head).
        family_float: tuple of str. Conv blocks kept float by the model
            family table (`family_float_blocks`).
    """

    scope: str
    nodes: tuple
    quantize: tuple
    float_head: tuple
    float_nodes: tuple
    input_tensors: tuple
    output_tensors: tuple
    family_float: tuple = ()


def is_head_output(layer):
    """True when Keras layer name `layer` is a head output of a known model family.

    Args:
        layer: str or None. A layer name as `_layer` returns it (tf2onnx's
            `_N` suffixes are ignored).
    """
    return bool(layer) and re.sub(r"(_\d+)+$", "", layer) in families.head_output_layers()


def head_output_convs(model, body, branch=None):
    """Node names of the body's head output convolutions, float or quantized, in graph order.

    Args:
        model: `onnx.ModelProto`.
        body: `Body` of `model`.
        branch: str or None. `"class"` or `"box"` for that branch's only
            (every family names them `..._{box,class}_3_conv`). Defaults to
            None (both).
    """
    nodes = set(body.nodes)
    wanted = f"_{branch}_" if branch else ""
    return tuple(n.name for n in model.graph.node if n.name in nodes
                 and _is_head_conv(n, body.scope) and wanted in _layer(n.name, body.scope))


def _is_head_conv(node, scope):
    """True when ONNX `node` is a head output convolution of a known model family."""
    return node.op_type == "Conv" and is_head_output(_layer(node.name, scope))


def family_float_blocks(present):
    """The conv blocks every INT8 artifact of a model keeps float by default.

    The `int8_float_layers` of the model's row in the family table
    (`edgedet.models.families`), the row being the one whose head output
    layers are among `present` (families share block names such as
    `stem_2`, so the row is chosen first). The ONNX body (`find_body`), the
    TFLite INT8 exporter and the OpenVINO INT8 exporter all ask this
    function, so a block listed there stays float in every INT8 artifact.

    Args:
        present: iterable of str. The conv blocks of the model at hand
            (`strip_block_suffix` of its layer names).

    Returns:
        A tuple of block names, in table order; `()` for a model of no row.
    """
    present = set(present)
    for family in families.families():
        if any(strip_block_suffix(head) in present for head in family.head_output_layers):
            return tuple(block for block in family.int8_float_layers if block in present)
    return ()


def strip_block_suffix(layer):
    """The conv block of a Keras layer name (`stack2_c2f_pre_bn` -> `stack2_c2f_pre`)."""
    return _BLOCK_SUFFIX.sub("", layer)


def block_of(node_name, scope):
    """The conv block of a body node (`<scope>/<block>_bn_1/...` -> `<block>`), or None."""
    layer = _layer(node_name, scope)
    return strip_block_suffix(layer) if layer else None


def node_block(node, scope, consumers):
    """The conv block of an ONNX `node`; an unnamed one (tf2onnx's `Conv__665`, a
    convolution fused with its batch norm) joins the block of the first named node it
    feeds (its SiLU, `<scope>/<block>_1/Sigmoid`). None when neither has one.

    Args:
        node: `onnx.NodeProto`.
        scope: str. The body's name scope.
        consumers: dict. Tensor name -> list of the nodes reading it.
    """
    found = block_of(node.name, scope)
    if found is None:
        users = [u for out in node.output for u in consumers.get(out, [])]
        found = next((b for u in users if (b := block_of(u.name, scope))), None)
    return found


def _layer(name, scope):
    """The Keras layer of a node name `<scope>/<layer>_N/...`, without the `_N`."""
    if not name.startswith(scope + "/"):
        return None
    part = name[len(scope) + 1:].split("/", 1)[0]
    return re.sub(r"_\d+$", "", part)


def _find_scope(nodes):
    scopes = collections.Counter(
        n.name.split("/", 1)[0] for n in nodes if n.op_type == "Conv" and "/" in n.name
    )
    if not scopes:
        raise BodyNotFoundError(
            "No Conv node with a name scope in the graph: cannot tell the network body from "
            "the pre/post-processing. Was this ONNX exported by edgedet (tf2onnx keeps "
            "Keras layer names)?"
        )
    return scopes.most_common(1)[0][0]


def find_body(model, quantize_head=False, exclude=()):
    """Finds the network body of an end-to-end ONNX model.

    Args:
        model: `onnx.ModelProto`.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        exclude: iterable of str. More body nodes to keep float (node names
            or Keras layer names). Defaults to `()`.

    Returns:
        A `Body`.

    Raises:
        BodyNotFoundError: no scoped Conv nodes, or no head output
            convolutions (not a YOLOv8 head).
    """
    graph = model.graph
    nodes = list(graph.node)
    scope = _find_scope(nodes)
    producer = {out: n for n in nodes for out in n.output}
    consumers = collections.defaultdict(list)
    for n in nodes:
        for name in n.input:
            consumers[name].append(n)
    initializers = {i.name for i in graph.initializer}
    constants = {out for n in nodes if n.op_type == "Constant" for out in n.output}

    named = {n.name for n in nodes if _layer(n.name, scope) is not None}
    # Unnamed nodes inside the body (tf2onnx layout transposes): all inputs
    # from the body, all consumers in the body.
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if n.name in named or n.op_type in _SHAPE_OPS:
                continue
            data_inputs = [i for i in n.input if i and i not in initializers and i not in constants]
            users = [c for out in n.output for c in consumers[out]]
            if (
                data_inputs
                and users
                and all(i in producer and producer[i].name in named for i in data_inputs)
                and all(u.name in named for u in users)
            ):
                named.add(n.name)
                changed = True

    head = [n.name for n in nodes if n.name in named and _is_head_conv(n, scope)]
    if not head:
        known = ", ".join(f"{f.title} {list(f.head_output_layers)}" for f in families.families())
        raise BodyNotFoundError(
            f"Found the network scope '{scope}' but no head output convolutions of a model "
            f"family edgedet knows ({known})."
        )
    after_head = _downstream(head, producer, consumers, named)
    exclude = set(exclude)
    float_nodes = set(after_head)
    if not quantize_head:
        float_nodes |= set(head)
    blocks = {n.name: node_block(n, scope, consumers) for n in nodes if n.name in named}
    family_float = family_float_blocks(blocks.values())
    float_nodes |= {name for name, block in blocks.items() if block in family_float}
    for n in nodes:
        layer = _layer(n.name, scope)
        if n.name in named and (layer in INPUT_LAYERS or n.name in exclude or layer in exclude):
            float_nodes.add(n.name)
    # Shape computations inside the body stay float.
    ordered = [n.name for n in nodes if n.name in named]
    op_type = {n.name: n.op_type for n in nodes}
    quantize = tuple(
        name for name in ordered if name not in float_nodes and op_type[name] not in _SHAPE_OPS
    )
    inputs, outputs = _boundary(nodes, named, producer, consumers, initializers | constants)
    return Body(
        scope=scope,
        nodes=tuple(ordered),
        quantize=quantize,
        float_head=tuple(h for h in head if not quantize_head),
        float_nodes=tuple(n for n in ordered if n in float_nodes),
        input_tensors=inputs,
        output_tensors=outputs,
        family_float=family_float,
    )


def _downstream(start, producer, consumers, within):
    """Nodes of `within` fed (directly or not) by the nodes named in `start`."""
    by_name = {n.name: n for n in producer.values()}
    seen, stack = set(), list(start)
    while stack:
        node = by_name[stack.pop()]
        for out in node.output:
            for user in consumers[out]:
                if user.name in within and user.name not in seen:
                    seen.add(user.name)
                    stack.append(user.name)
    return seen - set(start)


def _boundary(nodes, body, producer, consumers, constants):
    inputs, outputs = [], []
    for n in nodes:
        if n.name not in body:
            continue
        for i in n.input:
            if i and i not in constants and (i not in producer or producer[i].name not in body):
                if i not in inputs:
                    inputs.append(i)
        for out in n.output:
            if any(u.name not in body for u in consumers[out]) and out not in outputs:
                outputs.append(out)
    return tuple(inputs), tuple(outputs)
