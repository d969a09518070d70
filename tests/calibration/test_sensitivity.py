"""Sensitivity search: a block with ruined ranges is found and kept in float.

The searches run on U8S8 built for `"avx2"` (7-bit weights): ONNX Runtime
computes those exactly on every x86 CPU, so the numbers do not depend on
whether the machine has VNNI. The assertions are what the search promises
(the ruined block is kept float and the result passes its target), not the
exact list of blocks, which may differ where float kernels differ.
"""

import onnx
import pytest

from edgedet.calibration.body import find_body
from edgedet.calibration.sensitivity import conv_blocks, search
from edgedet.thresholds import Thresholds

BROKEN = "stack2_c2f_output"


def test_every_quantized_conv_belongs_to_a_block(fp32_onnx):
    model = onnx.load(str(fp32_onnx))
    body = find_body(model)
    blocks = conv_blocks(model, body)
    types = {n.name: n.op_type for n in model.graph.node}
    quantized_convs = [n for n in body.quantize if types[n] == "Conv"]
    in_blocks = [n for nodes in blocks.values() for n in nodes if types[n] == "Conv"]
    assert sorted(in_blocks) == sorted(quantized_convs)
    assert {"stem_1", "stem_2", BROKEN, "yolo_v8_head_1_class_2"} <= set(blocks)
    assert not [b for b in blocks if b.endswith("_3_conv")]


def test_search_keeps_the_ruined_block_float(fp32_onnx, ranges, eval_images):
    model = onnx.load(str(fp32_onnx))
    nodes = conv_blocks(model, find_body(model))[BROKEN]
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.name)
    # Ranges 100x too narrow on the block's inner tensors (read only inside the
    # block: its conv and sigmoid outputs) clip them flat. Its output, read by the
    # next block's int8 conv, is quantized either way and is left alone.
    outputs = {o for n in model.graph.node if n.name in nodes for o in n.output
               if users.get(o, set()) <= set(nodes)}
    assert len(outputs) == 2
    ruined = ranges.with_ranges({
        k: (lo / 100, hi / 100) if k in outputs else (lo, hi)
        for k, (lo, hi) in ranges.ranges.items()})
    candidates = ["stem_2", BROKEN, "stack3_c2f_output", "yolo_v8_head_1_box_2"]
    messages = []
    # A random network shrugs off a lot; a strict mAP-vs-reference limit makes the
    # ruined block matter (intact INT8 scores about 0.95 here, ruined about 0.86).
    strict = Thresholds(min_map_vs_reference=0.92)
    result = search(model, ruined, eval_images, thresholds=strict, candidates=candidates,
                    progress=messages.append, cpu="avx2")
    assert not result.initial["passed"]
    assert set(result.drops) == set(candidates)
    assert BROKEN in result.kept and len(result.kept) <= len(candidates)
    assert result.passed and result.final["passed"]
    assert set(nodes) <= set(result.float_nodes)
    # One evaluation of the full INT8 model, one per candidate, one per block tried float.
    assert 1 + len(candidates) + len(result.kept) <= result.evaluations <= 1 + 2 * len(candidates)
    assert any(BROKEN in m for m in messages)


def test_nothing_is_kept_when_int8_already_passes(fp32_onnx, ranges, eval_images):
    result = search(str(fp32_onnx), ranges, eval_images[:4], cpu="avx2")
    assert result.initial["passed"], result.initial
    assert result.passed and result.kept == [] and result.drops == {}
    assert result.evaluations == 1


def test_bad_arguments(fp32_onnx, ranges, eval_images):
    with pytest.raises(ValueError, match="at least one evaluation image"):
        search(str(fp32_onnx), ranges, [])
    with pytest.raises(ValueError, match=r"Unknown blocks \['nope'\]"):
        search(str(fp32_onnx), ranges.with_ranges(
            {k: (lo / 100, hi / 100) for k, (lo, hi) in ranges.ranges.items()}),
            eval_images[:2], candidates=["nope"])
