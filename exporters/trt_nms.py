"""The TensorRT ONNX runs its NMS per image (no TensorRT import).

The end-to-end graph runs ONE single-image NMS over the candidates of the
whole batch, shifted apart per image and per class (`edgedet.nms`): that is
what TFLite's builtin NMS needs. TensorRT's NMS layer considers at most 5000
boxes **per batch item** (2000 on SM 5.3 / 6.2), so with a batch of 8 and
1000 candidates per image it would silently drop candidates; and the shifted
coordinates grow with batch x classes x image size, past FP16's 65504.

ONNX `NonMaxSuppression` is batched and multi-class natively (boxes
`[B, N, 4]`, scores `[B, C, N]`), and so is TensorRT's NMS layer. So
`per_image_nms` rewires the ONNX made for TensorRT: the NMS gets the named
candidates of `edgedet.nms` (`nms_candidate_boxes` `[B, k, 4]`, without
offsets; `nms_candidate_scores` `[B, k]`, ranks or -1; `nms_candidate_classes`
`[B, k]`) as boxes `[B, k, 4]` and scores `[B, C, k]` (each candidate scores
its rank in its own class and -1 in the others; `[B, 1, k]` when the NMS is
class-agnostic), and its selected `(image, class, candidate)` triples are
turned back into the flat `(0, 0, image * k + candidate)` the rest of the
graph reads. The offset arithmetic becomes dead and is removed. The result is
the same function (the tests compare both in ONNX Runtime); only the NMS
layout changes. Hand-written because no converter offers a batched NMS from a
TensorFlow graph that TFLite can also convert.
"""

import numpy as np

from edgedet.metadata import METADATA_KEY, ArtifactMetadata
from edgedet.nms import CANDIDATE_BOXES, CANDIDATE_CLASSES, CANDIDATE_SCORES

_PREFIX = "edgedet_per_image_nms/"


def _producers(graph):
    return {name: node for node in graph.node for name in node.output}


def is_per_image(model):
    """True when the model's NMS already gets `nms_candidate_boxes` directly."""
    return any(n.op_type == "NonMaxSuppression" and n.input[0].startswith(CANDIDATE_BOXES)
               for n in model.graph.node)


def per_image_nms(model):
    """A copy of an edgedet end-to-end ONNX whose NMS runs per image.

    Args:
        model: `onnx.ModelProto` exported by edgedet (FP32, FP16 body or Q/DQ).

    Returns:
        A new `onnx.ModelProto` (the input is not changed); unchanged if it
        is already per image, or carries the one-to-one head (no NMS).

    Raises:
        ValueError: the model has no (or several) NMS, or lacks the named
            candidates (not an edgedet end-to-end graph of this version).
    """
    import onnx
    from onnx import helper

    from edgedet.exporters.onnx_export import head_of

    out = onnx.ModelProto()
    out.CopyFrom(model)
    if is_per_image(out) or head_of(out) == "one2one":
        return out  # The one-to-one head has no NMS (`edgedet.topk`).
    inferred = onnx.shape_inference.infer_shapes(out)
    graph = out.graph
    nms_nodes = [n for n in graph.node if n.op_type == "NonMaxSuppression"]
    if len(nms_nodes) != 1:
        raise ValueError(
            f"Expected one NonMaxSuppression in the edgedet ONNX, found {len(nms_nodes)}.")
    producers = _producers(graph)
    names = {}
    for key in (CANDIDATE_BOXES, CANDIDATE_SCORES, CANDIDATE_CLASSES):
        found = [name for name in producers if name.split(":")[0] == key]
        if len(found) != 1:
            raise ValueError(
                f"The ONNX has no tensor '{key}' (the NMS candidates of edgedet.nms): it was "
                "not exported by this edgedet version; re-export it.")
        names[key] = found[0]
    props = {p.key: p.value for p in out.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError("The ONNX has no edgedet metadata: cannot tell its classes.")
    metadata = ArtifactMetadata.from_json(props[METADATA_KEY])
    num_classes = len(metadata.class_names)
    class_aware = metadata.inference.nms.class_aware

    old = nms_nodes[0]
    p = _PREFIX
    consts = {
        "zero_i64": np.array(0, np.int64), "one_i64": np.array([1], np.int64),
        "minus_one": np.array(-1.0, np.float32),
        "class_ids": np.arange(num_classes, dtype=np.int32).reshape(1, num_classes, 1),
        "axis1": np.array([1], np.int64), "col0": np.array([0], np.int64),
        "col1": np.array([1], np.int64), "col2": np.array([2], np.int64),
        "col3": np.array([3], np.int64),
    }
    for name, value in consts.items():
        graph.initializer.append(onnx.numpy_helper.from_array(value, p + name))
    nodes = [
        helper.make_node("Unsqueeze", [names[CANDIDATE_SCORES], p + "axis1"], [p + "scores_b1k"]),
    ]
    if class_aware and num_classes > 1:
        nodes += [
            helper.make_node("Unsqueeze", [names[CANDIDATE_CLASSES], p + "axis1"],
                             [p + "classes_b1k"]),
            helper.make_node("Equal", [p + "classes_b1k", p + "class_ids"], [p + "own_class"]),
            helper.make_node("Where", [p + "own_class", p + "scores_b1k", p + "minus_one"],
                             [p + "scores_bck"]),
        ]
        scores = p + "scores_bck"
    else:
        scores = p + "scores_b1k"
    # k, the candidates per image: a constant in the graph (`max_output_boxes_per_class`
    # must be an initializer for TensorRT's parser).
    k = _candidates_per_image(inferred, names[CANDIDATE_SCORES])
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([k], np.int64), p + "k"))
    nodes += [
        helper.make_node("NonMaxSuppression",
                         [names[CANDIDATE_BOXES], scores, p + "k", old.input[3], old.input[4]],
                         [p + "selected"], name=p + "NonMaxSuppression"),
        helper.make_node("Slice", [p + "selected", p + "col0", p + "col1", p + "axis1"],
                         [p + "image"]),
        helper.make_node("Slice", [p + "selected", p + "col2", p + "col3", p + "axis1"],
                         [p + "candidate"]),
        helper.make_node("Mul", [p + "image", p + "k"], [p + "image_start"]),
        helper.make_node("Add", [p + "image_start", p + "candidate"], [p + "flat"]),
        helper.make_node("Mul", [p + "flat", p + "zero_i64"], [p + "zeros"]),
        helper.make_node("Concat", [p + "zeros", p + "zeros", p + "flat"], list(old.output),
                         axis=1),
    ]
    position = list(graph.node).index(old)
    graph.node.remove(old)
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    _prune(graph)
    _toposort(graph)
    del graph.value_info[:]  # Shapes of removed tensors; ONNX Runtime re-infers.
    onnx.checker.check_model(out)
    return out


def _candidates_per_image(inferred, scores_name):
    """The static k of `nms_candidate_scores` `[B, k]` (from ONNX shape inference)."""
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        if info.name == scores_name:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].dim_value > 0:
                return int(dims[1].dim_value)
    raise ValueError(f"Cannot tell the candidates per image: '{scores_name}' has no static k.")


def _toposort(graph):
    """Orders the nodes so each comes after the producers of its inputs (the ONNX rule;
    onnxruntime's float16 converter appends its Casts at the end)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("The ONNX graph has a cycle or an input no node produces.")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)


def _prune(graph):
    """Removes nodes and initializers no graph output depends on."""
    producers = _producers(graph)
    needed = {o.name for o in graph.output}
    keep, stack = set(), list(needed)
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in keep:
            continue
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    live = [n for n in graph.node if id(n) in keep]
    used = {i for n in live for i in n.input}
    del graph.node[:]
    graph.node.extend(live)
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
