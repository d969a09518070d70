"""Is an ONNX model safe to build with a given TensorRT version? Checked on CPU.

TensorRT's ONNX parser accepts some graphs it then runs differently from
ONNX Runtime, or refuses them late, on the device. `lint_onnx` checks the
TensorRT-ready ONNX against the rules of the target TensorRT version (no
TensorRT import; ONNX shape inference, and ONNX Runtime for the NMS box
count), so `edgedet export --target trt` can refuse an unsafe model on the
workstation. The rule table (`RULES`) cites its sources:

- onnx-tensorrt `docs/operators.md`, per release branch: 8.5 / 8.6 ("TensorRT
  8.5 supports operators up to Opset 17"; data types DOUBLE, FLOAT32, FLOAT16,
  INT8, BOOL, "limited support for INT32, INT64 ... TensorRT will attempt to
  cast down INT64 to INT32 ... clamping"; TopK "`K` input must be an
  initializer"; QuantizeLinear "`y_zero_point` must be 0", DequantizeLinear
  "`x_zero_point` must be zero"), and 10.x (10.15: opset 9 to 24, INT64 and
  UINT8 types, "UINT8 is only supported as network input or output tensor
  types", TopK "`K` input must be less than 3840", same Q/DQ rule). TensorRT 11
  keeps the 10.x parser rules (strongly typed only). TopK's input types: 8.x
  "FP32, FP16" (8.4 / 8.5 docs), 10.x adds INT32, INT64 and BF16.
- `Mod`: onnx-tensorrt release/8.4 `docs/operators.md` lists Mod as not
  supported; TensorRT 8.5 parses it (ultralytics#24607 / PR #24647:
  "TensorRT versions earlier than 8.5.0 do not support the Mod operator").
  edgedet's one-to-one selection (`edgedet.topk`) computes its class index
  with Div and Sub, so its graphs have no Mod; the rule guards foreign ONNX
  (`edgedet engine`) and future edits, and documents why the floor.
- TensorRT's NMS layer (operators `NMS.html`, `INMSLayer`): NMS runs "per batch
  item and per class"; "the TopK box limit is the maximum number of filtered
  boxes considered for selection per batch item ... 2000 for SM 5.3 and 6.2
  devices, and 5000 otherwise". Boxes and scores are FP32 or FP16 tensors;
  in an FP16/INT8 plan the builder may pick FP16 unless the NMS is kept FP32.

| rule | 8.5 | 8.6 | 10.x | 11 |
| ---- | --- | --- | ---- | -- |
| `opset` (max default-domain opset) | 17 | 17 | 24 | 24 |
| `uint8` | no UINT8 tensor | no UINT8 tensor | UINT8 graph input feeding Cast/Shape only | same |
| `int64` | INT64 constants must fit INT32 (cast down, clamped) | same | native | native |
| `topk` | K constant, K <= 3840; FP32/FP16 input | same | K constant, K < 3840; float or INT32/INT64 input | same |
| `mod` | Mod parsed (8.4: no Mod) | same | same | same |
| `qdq` | INT8 Q/DQ, zero points 0, float biases, per-tensor activations, weights per output channel (`trt_lint_qdq`) | same | same | same |
| `nms-box-cap` | boxes per batch item <= 5000 (2000 on SM 5.3/6.2) | same | same | same |
| `nms-fp32` | NMS boxes/scores FLOAT, no FP32->FP16->FP32 round trip before them; constant thresholds | same | same | same |

Example:

```python
report = lint_onnx(onnx.load("model_trt.onnx"), "10.3.0", max_batch=8)
if not report:
    raise SystemExit(report.text())
```
"""  # noqa: E501 (the rule table)

import dataclasses

import numpy as np

# TensorRT's NMS layer: filtered boxes considered per batch item.
NMS_BOX_CAP = 5000
NMS_BOX_CAP_SM53_62 = 2000


@dataclasses.dataclass(frozen=True)
class VersionRules:
    """What one TensorRT release accepts (see the module table)."""

    name: str
    max_opset: int
    uint8_input: bool  # a UINT8 graph input (feeding Cast/Shape) is allowed
    int64_native: bool
    topk_max_k: int  # inclusive
    source: str
    topk_int_input: bool = False  # TopK on INT32/INT64 tensors
    mod: bool = True  # ONNX Mod (TensorRT 8.5+)


RULES = {
    "8.5": VersionRules("8.5", 17, False, False, 3840,
                        "onnx-tensorrt release/8.5-GA docs/operators.md"),
    "8.6": VersionRules("8.6", 17, False, False, 3840,
                        "onnx-tensorrt release/8.6-GA docs/operators.md"),
    "10": VersionRules("10.x", 24, True, True, 3839,
                       "onnx-tensorrt release/10.x docs/operators.md (10.15)",
                       topk_int_input=True),
    "11": VersionRules("11", 24, True, True, 3839,
                       "onnx-tensorrt 10.x rules; TensorRT 11 builds strongly typed only",
                       topk_int_input=True),
}


def rules_for(trt_version):
    """The `VersionRules` for a TensorRT version string such as `"10.3.0.26"`.

    Raises:
        ValueError: a version before 8.5.
    """
    from edgedet.calibration.trt_cache import parse_version

    major, minor, _ = parse_version(trt_version)
    if (major, minor) < (8, 5):
        raise ValueError(f"TensorRT {trt_version} is not supported: edgedet needs 8.5 or later.")
    if major == 8:
        return RULES["8.5" if minor == 5 else "8.6"]
    return RULES["10" if major < 11 else "11"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken rule: `rule`, `severity` (`"error"` or `"warning"`), `message`."""

    rule: str
    severity: str
    message: str


@dataclasses.dataclass
class LintReport:
    """What `lint_onnx` found; true when there is no error."""

    trt_version: str
    findings: list

    @property
    def errors(self):
        return [f for f in self.findings if f.severity == "error"]

    def __bool__(self):
        return not self.errors

    def text(self):
        if not self.findings:
            return f"TensorRT {self.trt_version} lint: no findings."
        lines = [f"TensorRT {self.trt_version} lint: {len(self.errors)} error(s)"]
        lines += [f"  {f.severity} [{f.rule}] {f.message}" for f in self.findings]
        return "\n".join(lines)


def lint_onnx(model, trt_version, max_batch=1, run_nms_probe=True):
    """Checks an ONNX model against the rules of a TensorRT version.

    Args:
        model: `onnx.ModelProto`, as it will be handed to TensorRT's parser.
        trt_version: str. TensorRT version of the device, e.g. `"10.3.0"`.
        max_batch: int. Largest batch of the engine's optimization profile.
            Defaults to 1.
        run_nms_probe: bool. When the NMS box count per batch item is not
            static, run the model once in ONNX Runtime (CPU, a 32x32 image at
            `max_batch`) to measure it. Defaults to True.

    Returns:
        A `LintReport` (true when no rule is broken).
    """
    import onnx

    rules = rules_for(trt_version)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = _tensor_types(inferred)
    constants = _constants(inferred.graph)
    findings = []
    findings += _check_opset(model, rules)
    findings += _check_uint8(inferred.graph, types, rules)
    findings += _check_int64(inferred.graph, rules)
    findings += _check_topk(inferred.graph, constants, rules, types)
    findings += _check_mod(inferred.graph, rules)
    findings += _check_qdq(inferred.graph, constants)
    findings += _check_nms(model, inferred, types, constants, max_batch, run_nms_probe)
    return LintReport(trt_version=str(trt_version), findings=findings)


def _tensor_types(model):
    from onnx import TensorProto  # noqa: F401 - elem_type ints are TensorProto's.

    graph = model.graph
    types = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        types[info.name] = info.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def _constants(graph):
    """name -> numpy value for initializers and Constant node outputs."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def _check_opset(model, rules):
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    if opset > rules.max_opset:
        return [Finding("opset", "error",
                        f"opset {opset} is newer than TensorRT {rules.name} parses "
                        f"(up to {rules.max_opset}; {rules.source}). "
                        "Re-export with a lower opset.")]
    return []


def _check_uint8(graph, types, rules):
    from onnx import TensorProto

    uint8 = TensorProto.UINT8
    inputs = {i.name for i in graph.input}
    findings = []
    for node in graph.node:
        for name in node.input:
            if not name or types.get(name) != uint8:
                continue
            if not rules.uint8_input:
                findings.append(Finding(
                    "uint8", "error",
                    f"node '{node.name or node.op_type}' ({node.op_type}) reads UINT8 tensor "
                    f"'{name}': TensorRT {rules.name}'s ONNX parser has no UINT8 ({rules.source}); "
                    "make the input float32 (edgedet does for 8.x)."))
            elif name not in inputs:
                findings.append(Finding(
                    "uint8", "error",
                    f"UINT8 tensor '{name}' inside the graph (read by {node.op_type} "
                    f"'{node.name}'): TensorRT {rules.name} supports UINT8 only as a network "
                    f"input or output ({rules.source})."))
            elif node.op_type not in ("Cast", "Shape"):
                findings.append(Finding(
                    "uint8", "error",
                    f"the UINT8 input '{name}' feeds {node.op_type} '{node.name}': TensorRT "
                    f"{rules.name} has UINT8 only at the network boundary, so it must go through "
                    f"Cast (or Shape) first ({rules.source})."))
    return findings


def _check_int64(graph, rules):
    if rules.int64_native:
        return []
    from onnx import TensorProto, numpy_helper

    info = np.iinfo(np.int32)
    findings = []
    for init in graph.initializer:
        if init.data_type != TensorProto.INT64:
            continue
        value = numpy_helper.to_array(init).ravel()
        outside = value[(value < info.min) | (value > info.max)]
        # INT64 max / min are "to the end" slice bounds: clamped, they keep their meaning.
        sentinel = np.iinfo(np.int64)
        outside = outside[(outside != sentinel.max) & (outside != sentinel.min)]
        if outside.size:
            findings.append(Finding(
                "int64", "error",
                f"INT64 constant '{init.name}' holds {outside[0]}, outside INT32: TensorRT "
                f"{rules.name} casts INT64 down to INT32 and clamps it ({rules.source})."))
    return findings


def _check_mod(graph, rules):
    if rules.mod:
        return []
    return [Finding(
        "mod", "error",
        f"Mod '{node.name or node.output[0]}': TensorRT {rules.name}'s ONNX parser has no Mod "
        "(TensorRT 8.5 added it; ultralytics#24607). Compute it as a - (a // b) * b "
        "(edgedet.topk does), or build on TensorRT 8.5 or later.")
        for node in graph.node if node.op_type == "Mod"]


def _check_topk(graph, constants, rules, types):
    from onnx import TensorProto

    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}
    findings = []
    for node in graph.node:
        if node.op_type != "TopK":
            continue
        dtype = types.get(node.input[0])
        if dtype is not None and dtype not in floats and not rules.topk_int_input:
            findings.append(Finding(
                "topk", "error",
                f"TopK '{node.name}' sorts a {TensorProto.DataType.Name(dtype)} tensor; "
                f"TensorRT {rules.name}'s TopK takes FP32/FP16 only ({rules.source}). Sort "
                "a float tensor."))
        k = constants.get(node.input[1])
        if k is None:
            findings.append(Finding(
                "topk", "error",
                f"TopK '{node.name}' has a computed K; TensorRT {rules.name} needs a constant "
                f"K ({rules.source})."))
        elif int(np.max(k)) > rules.topk_max_k:
            findings.append(Finding(
                "topk", "error",
                f"TopK '{node.name}' has K = {int(np.max(k))}; TensorRT {rules.name} allows "
                f"K <= {rules.topk_max_k} ({rules.source})."))
    return findings


def _check_qdq(graph, constants):
    from edgedet.exporters.trt_lint_qdq import check_qdq

    return [Finding("qdq", "error", problem) for problem in check_qdq(graph, constants)]


def _check_nms(model, inferred, types, constants, max_batch, run_probe):
    from onnx import TensorProto

    findings = []
    nms_nodes = [n for n in inferred.graph.node if n.op_type == "NonMaxSuppression"]
    shapes = {i.name: [d.dim_value or None for d in i.type.tensor_type.shape.dim]
              for i in list(inferred.graph.value_info) + list(inferred.graph.input)}
    for node in nms_nodes:
        for index in (0, 1):
            if types.get(node.input[index], TensorProto.FLOAT) != TensorProto.FLOAT:
                findings.append(Finding(
                    "nms-fp32", "error",
                    f"NMS '{node.name}' reads {('boxes', 'scores')[index]} as "
                    f"{TensorProto.DataType.Name(types[node.input[index]])}: keep its inputs "
                    "FP32 (box coordinates lose precision and can overflow FP16's 65504)."))
        for cast in _fp16_round_trips(inferred.graph, node.input[:2], types):
            findings.append(Finding(
                "nms-fp32", "error",
                f"'{cast}' goes float32 -> float16 -> float32 on the way to NMS '{node.name}': "
                "FP16 rounding moves the boxes and overflows past 65504; keep the "
                "post-processing FP32."))
        for index, label in ((2, "max_output_boxes_per_class"), (3, "iou_threshold"),
                             (4, "score_threshold")):
            if len(node.input) > index and node.input[index] and node.input[index] not in constants:
                findings.append(Finding(
                    "nms-fp32", "warning",
                    f"NMS '{node.name}' has a computed {label}: onnx-tensorrt before 8.5 required "
                    "an initializer (docs/operators.md, 8.4); a constant is the safe choice."))
        shape = shapes.get(node.input[0])
        per_image = bool(shape) and len(shape) == 3 and shape[0] != 1
        boxes = shape[1] if shape and len(shape) == 3 else None
        if not per_image or boxes is None:
            if not run_probe:
                findings.append(Finding(
                    "nms-box-cap", "warning",
                    f"NMS '{node.name}': box count per batch item unknown without a probe."))
                continue
            try:
                batch_items, boxes = _probe_nms_boxes(model, node, max_batch)
            except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own types.
                findings.append(Finding(
                    "nms-box-cap", "error",
                    f"NMS '{node.name}': cannot measure its boxes per batch item (ONNX Runtime: "
                    f"{str(error).splitlines()[0][:200]}); a gate never passes what it could not "
                    "check."))
                continue
            per_image = batch_items == max_batch and (max_batch > 1 or shape and shape[0] != 1)
        if boxes > NMS_BOX_CAP:
            layout = ("per image" if per_image else
                      f"batch-flattened: all {max_batch} images share one NMS batch item")
            findings.append(Finding(
                "nms-box-cap", "error",
                f"NMS '{node.name}' gets {boxes} boxes per batch item at batch {max_batch} "
                f"({layout}); TensorRT's NMS layer considers at most {NMS_BOX_CAP} per batch item "
                f"({NMS_BOX_CAP_SM53_62} on SM 5.3/6.2) and silently drops the rest. Run the NMS "
                "per image (ONNX NonMaxSuppression is batched) or lower the candidates."))
        elif boxes > NMS_BOX_CAP_SM53_62:
            findings.append(Finding(
                "nms-box-cap", "warning",
                f"NMS '{node.name}' gets {boxes} boxes per batch item: over the "
                f"{NMS_BOX_CAP_SM53_62} cap of SM 5.3/6.2 devices (Jetson Nano / TX2)."))
        if not per_image and max_batch > 1:
            findings.append(Finding(
                "nms-box-cap", "warning",
                f"NMS '{node.name}' flattens the batch into one NMS batch item: its box count "
                "and coordinate offsets grow with the batch."))
    return findings


def _fp16_round_trips(graph, names, types):
    """Tensors cast float32 -> float16 and back to float32 among the ancestors of `names`."""
    from onnx import TensorProto

    producers = {out: n for n in graph.node for out in n.output}
    seen, stack, found = set(), list(names), []
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        first = producers.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        to = {a.name: a.i for a in node.attribute}.get("to")
        if (first is not None and first.op_type == "Cast" and to == TensorProto.FLOAT
                and {a.name: a.i for a in first.attribute}.get("to") == TensorProto.FLOAT16
                and types.get(first.input[0]) == TensorProto.FLOAT):
            found.append(first.input[0])
        stack.extend(i for i in node.input if i)
    return sorted(set(found))


def _probe_nms_boxes(model, node, max_batch):
    """`(batch items, boxes per item)` of an NMS's boxes input, measured in ONNX Runtime."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.input[0]))
    graph_input = probe.graph.input[0]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {graph_input.name: np.zeros((max_batch, 32, 32, 3), dtype)}
    boxes = session.run([node.input[0]], feed)[0]
    return int(boxes.shape[0]), int(boxes.shape[1])
