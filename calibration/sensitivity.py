"""Sensitivity search: keep the layers that hurt parity most in float.

1. Quantize the whole body and compare with the FP32 reference on held-out
   images (the parity rule of `edgedet.matching`: same class, IoU >= 0.5,
   greedy by score; mAP50-95 with the reference as ground truth). If it
   passes the INT8 thresholds, nothing is kept float.
2. Otherwise measure each convolution block alone: quantize only that block
   and record how far the parity metric falls below the FP32 artifact's.
3. Keep the worst blocks in float, one at a time (worst first), re-checking
   the fully quantized model after each; a block that does not improve the
   parity metric goes back to int8. Stop when it passes, after `max_float`
   blocks, or after trying `2 * max_float` of them.

A block is one Keras `conv_bn` unit (convolution, folded batch norm and its
SiLU), e.g. `stack2_c2f_pre`, `yolo_v8_head_1_box_2`.

Example:

```python
from edgedet.calibration.sensitivity import search

result = search("model.onnx", ranges, eval_images, flavour="u8s8")
result.kept       # ["yolo_v8_head_3_class_2", ...]
result.passed     # whether the final INT8 model passes
quantize("model.onnx", ranges, "model_int8.onnx", exclude=result.float_nodes)
```
"""

import dataclasses
import tempfile
from pathlib import Path

from edgedet.calibration.body import find_body, node_block
from edgedet.calibration.qdq import quantize

METRIC = "map50_95_vs_reference"


@dataclasses.dataclass
class Sensitivity:
    """Outcome of a sensitivity search.

    Attributes:
        flavour: str. The Q/DQ flavour searched.
        metric: str. The parity metric ranked by.
        initial: dict. Parity summary of the fully quantized body.
        final: dict. Parity summary with `kept` in float.
        passed: bool. Whether `final` passes the thresholds.
        kept: list of str. Blocks kept in float, worst first.
        float_nodes: list of str. Their ONNX node names (pass as `exclude`).
        drops: dict. Block -> metric drop when only that block is quantized
            (empty when the full model passed at once).
        evaluations: int. Quantized models built and run.
    """

    flavour: str
    metric: str
    initial: dict
    final: dict
    passed: bool
    kept: list
    float_nodes: list
    drops: dict
    evaluations: int

    def to_dict(self):
        return dataclasses.asdict(self)


def conv_blocks(model, body):
    """`{block: [node names]}` of every body block holding a quantized Conv or MatMul, in order.

    tf2onnx renames a convolution it fuses with its batch norm (`Conv__665`);
    such an unnamed node joins the block of the first named node it feeds
    (its SiLU, `<scope>/<block>_1/Sigmoid`).
    """
    quantized = set(body.quantize)
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    blocks, has_conv = {}, set()
    for node in model.graph.node:
        if node.name in quantized and (name := node_block(node, body.scope, consumers)):
            blocks.setdefault(name, []).append(node.name)
            if node.op_type in ("Conv", "MatMul"):  # MatMul: an attention core (YOLO11)
                has_conv.add(name)
    return {name: nodes for name, nodes in blocks.items() if name in has_conv}


class _Evaluator:
    """Runs candidate ONNX models on the images and compares with the reference."""

    def __init__(self, images, reference, thresholds):
        from edgedet import thresholds as limits

        self.images = list(images)
        self.shapes = [tuple(image.shape[:2]) for image in self.images]
        self.reference = reference
        self.thresholds = thresholds or limits.DEFAULTS["int8"]
        self.count = 0

    def predict(self, model):
        from edgedet.runtimes.onnxrt import OnnxRuntime

        with tempfile.TemporaryDirectory(prefix="edgedet-sens-") as folder:
            path = Path(folder) / "candidate.onnx"
            path.write_bytes(model.SerializeToString())
            with OnnxRuntime(path, providers=["CPUExecutionProvider"]) as runtime:
                return [runtime.predict([image])[0] for image in self.images]

    def __call__(self, model):
        from edgedet import thresholds as limits
        from edgedet.matching import match_detections
        from edgedet.metrics import coco_map, summarize_matches

        self.count += 1
        detections = self.predict(model)
        matches = [match_detections(d, r, image_shape=s)
                   for d, r, s in zip(detections, self.reference, self.shapes)]
        summary = summarize_matches(matches)
        summary["disagreeing_fraction"] = summary["disagreeing_images"] / max(len(matches), 1)
        vs_ref = coco_map(self.reference, detections, self.shapes)
        summary[METRIC] = vs_ref["map50_95"]
        summary["map50_vs_reference"] = vs_ref["map50"]
        checks = limits.evaluate(summary, self.thresholds)
        summary["passed"] = not any(c["passed"] is False for c in checks)
        return summary


def search(model, ranges, images, flavour="u8s8", thresholds=None, max_float=8,
           quantize_head=False, candidates=None, progress=None, cpu="auto"):
    """Finds the fewest body blocks to keep float for the INT8 model to pass parity.

    Args:
        model: path or `onnx.ModelProto`. The FP32 end-to-end ONNX (the
            reference is this model run in ONNX Runtime).
        ranges: `edgedet.calibration.qdq.Ranges` for it.
        images: list of uint8 `[H, W, 3]` arrays (held-out, not the
            calibration images).
        flavour: str. `"u8s8"` or `"s8s8"`. Defaults to `"u8s8"`.
        thresholds: `edgedet.thresholds.Thresholds` or None for the INT8
            defaults. Defaults to None.
        max_float: int. Most blocks to keep float (at most twice as many are
            tried). Defaults to 8.
        quantize_head: bool. Start with the head's output convolutions
            quantized too. Defaults to False.
        candidates: list of str or None. Blocks to measure (e.g. from an
            earlier search); None measures every conv block. Defaults to None.
        progress: callable or None. Called with one message per step.
        cpu: str. CPU class of a `"u8s8"` model (`edgedet.cpu`), or
            `"auto"`. Defaults to `"auto"`.

    Returns:
        A `Sensitivity`.
    """
    import onnx

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    notify = progress or (lambda message: None)
    if not images:
        raise ValueError("The sensitivity search needs at least one evaluation image.")
    evaluate = _Evaluator(images, None, thresholds)
    evaluate.reference = evaluate.predict(proto)
    body = find_body(proto, quantize_head=quantize_head)
    full = evaluate(quantize(proto, ranges, flavour=flavour, body=body, cpu=cpu))
    notify(f"all blocks int8: {METRIC} {full[METRIC]:.3f}, "
           f"{'passes' if full['passed'] else 'fails'}")
    if full["passed"]:
        return Sensitivity(flavour, METRIC, full, full, True, [], [], {}, evaluate.count)

    blocks = conv_blocks(proto, body)
    if candidates is not None:
        unknown = sorted(set(candidates) - set(blocks))
        if unknown:
            raise ValueError(f"Unknown blocks {unknown}. Expected some of {list(blocks)}.")
        blocks = {b: nodes for b, nodes in blocks.items() if b in set(candidates)}
    drops = {}
    for index, (block, nodes) in enumerate(blocks.items()):
        only = dataclasses.replace(body, quantize=tuple(nodes))
        summary = evaluate(quantize(proto, ranges, flavour=flavour, body=only, cpu=cpu))
        drops[block] = 1.0 - summary[METRIC]
        notify(f"[{index + 1}/{len(blocks)}] {block}: drop {drops[block]:.4f}")
    ranked = sorted(drops, key=lambda b: (-drops[b], list(blocks).index(b)))

    kept, final = [], full
    for block in ranked[: 2 * max_float]:  # Greedy forward selection, worst block first.
        if len(kept) == max_float:
            break
        float_nodes = [n for b in [*kept, block] for n in blocks[b]]
        candidate = find_body(proto, quantize_head=quantize_head, exclude=float_nodes)
        summary = evaluate(quantize(proto, ranges, flavour=flavour, body=candidate, cpu=cpu))
        better = summary[METRIC] > final[METRIC] or summary["passed"]
        notify(f"float {[*kept, block]}: {METRIC} {summary[METRIC]:.3f}, "
               f"{'passes' if summary['passed'] else 'fails'}"
               f"{'' if better else f'; {block} stays int8 (no gain)'}")
        if better:
            kept.append(block)
            final = summary
        if final["passed"]:
            break
    return Sensitivity(
        flavour=flavour,
        metric=METRIC,
        initial=full,
        final=final,
        passed=bool(final["passed"]),
        kept=kept,
        float_nodes=[n for b in kept for n in blocks[b]],
        drops=drops,
        evaluations=evaluate.count,
    )
