"""Import Ultralytics YOLOv8 detection weights into an edgedet `YOLOV8Detector`.

Ultralytics' YOLOv8 (`yolov8.yaml`) and edgedet's are the same network, so
every tensor has one place to go. The layout (widths, C2f depths, classes,
class-branch width) is read from the tensor shapes, so custom scales import
too; a checkpoint that is not a 3-level YOLOv8 detector (YOLOv5u, YOLO11,
YOLOv8-p2/p6, segmentation, pose, OBB, classification, NMS-free heads) is
refused with the reason. Ultralytics module indices and edgedet layer names:

    model.0, model.1        Conv      stem_1, stem_2
    model.2/4/6/8           C2f       stack1..4_c2f  (cv1 -> _pre, m.k.cv1 -> _pre_k_1,
                                                      m.k.cv2 -> _pre_k_2, cv2 -> _output)
    model.3/5/7             Conv      stack2..4_downsample
    model.9                 SPPF      stack4_spp_fast (cv1 -> _pre, cv2 -> _output)
    model.12, model.15      C2f       pa_fpn_p4p5, pa_fpn_p3p4p5
    model.16, model.19      Conv      pa_fpn_p3p4p5_downsample1, _downsample2
    model.18, model.21      C2f       pa_fpn_p3p4p5_downsample1_block, _downsample2_block
    model.22.cv2.i.{0,1,2}  box       yolo_v8_head_{i+1}_box_1, _box_2, _box_3_conv
    model.22.cv3.i.{0,1,2}  class     yolo_v8_head_{i+1}_class_1, _class_2, _class_3_conv
    model.22.dfl            fixed     (checked to be arange(16); edgedet's decode applies it)

(10, 13: Upsample and 11, 14, 17, 20: Concat have no weights.) A `Conv` is a
Conv2d without bias (OIHW, transposed to Keras' HWIO) and a BatchNorm2d whose
eps (1e-3 in Ultralytics; read from the module when a model is given) is
folded into the running variance when it differs from Keras' 1e-3.

Sources (checkpoint, state_dict file, `.npz`, dict, torch module) are read by
`edgedet.models.ultralytics_weights`; its public names are re-exported here.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgedet.config import LetterboxConfig
from edgedet.models.ultralytics_weights import (  # noqa: F401  (re-exported)
    UltralyticsImportError,
    UltralyticsWeights,
    read_ultralytics_weights,
)

SIZES = ("n", "s", "m", "l", "x")
ULTRALYTICS_BN_EPSILON = 1e-3
HEAD = "model.22"
REG_MAX = 16


def _modules(keys):
    """Groups state_dict keys by top-level module index: `{22: {"cv2.0.0.conv.weight", ...}}`."""
    groups = {}
    for key in keys:
        match = re.match(r"model\.(\d+)\.(.+)$", key)
        if match:
            groups.setdefault(int(match.group(1)), set()).add(match.group(2))
    return groups


def identify(state_dict):
    """Returns why `state_dict` is not a YOLOv8 detector, or None when it looks like one.

    Args:
        state_dict: dict `{key: array}` of an Ultralytics model.
    """
    modules = _modules(state_dict)
    if not modules:
        some = list(state_dict)[:3]
        return f"it is not an Ultralytics model state_dict (no 'model.N.' keys; keys like {some})"
    last = max(modules)
    head = modules[last]
    shape = state_dict.get(f"model.{last}.cv4.0.2.weight", np.zeros((0,))).shape
    if any(k.startswith("proto.") for k in head):
        return f"it is a segmentation model (model.{last} has a mask 'proto' branch)"
    if any(k.startswith("linear.") for k in head):
        return "it is a classification model (its last module is a linear classifier)"
    if any(k.startswith("cv4.") for k in head):
        what = "an oriented-box (OBB) model" if shape[:1] == (1,) else "a pose model"
        return f"it is {what} (model.{last} has an extra 'cv4' branch)"
    if any(k.startswith("one2one_") for k in head):
        return f"it has an NMS-free one-to-one head at model.{last} (YOLOv10 / YOLO26 style)"
    if any(".attn." in k for m in modules.values() for k in m) or any(
        k.startswith("cv3.0.0.0.") for k in head
    ) or any(k.startswith("m.0.m.") for m in modules.values() for k in m):
        return "it is a YOLO11 model (C3k2 / C2PSA blocks, depthwise class branch)"
    if any(k == "cv3.conv.weight" for m in modules.values() for k in m):
        return "it is a YOLOv5u model (C3 blocks)"
    levels = {k.split(".")[1] for k in head if k.startswith("cv2.")}
    if last != 22 or len(levels) != 3:
        return (
            f"its head is at model.{last} with {len(levels)} levels; edgedet imports the "
            "3-level (P3-P5) YOLOv8 with its head at model.22 (not YOLOv8-p2 / -p6 or other "
            "families)"
        )
    return None


def _out_channels(state_dict, key):
    if key not in state_dict:
        raise UltralyticsImportError(f"Missing tensor '{key}': the weights are incomplete.")
    return int(state_dict[key].shape[0])


def _bottlenecks(state_dict, index):
    found = {int(m.group(1)) for k in state_dict if (m := re.match(rf"model\.{index}\.m\.(\d+)\.", k))}
    return len(found)


def infer_layout(state_dict):
    """Reads the YOLOv8 layout (edgedet constructor arguments) from tensor shapes.

    Args:
        state_dict: dict `{key: array}` of an Ultralytics YOLOv8 detector.

    Returns:
        dict with `num_classes`, `stackwise_channels`, `stackwise_depth`,
        `neck_depths`, `head_class_channels`.

    Raises:
        UltralyticsImportError: for another family or task, or a missing tensor.
    """
    problem = identify(state_dict)
    if problem:
        raise UltralyticsImportError(
            f"Cannot import these weights: {problem}. edgedet imports Ultralytics YOLOv8 "
            "detection models (yolov8n/s/m/l/x.yaml and custom scales of it)."
        )
    box_channels = _out_channels(state_dict, f"{HEAD}.cv2.0.2.weight")
    if box_channels != 4 * REG_MAX:
        raise UltralyticsImportError(
            f"'{HEAD}.cv2.0.2.weight' has {box_channels} output channels, i.e. reg_max "
            f"{box_channels // 4}; edgedet's YOLOv8 uses reg_max {REG_MAX} (64 channels)."
        )
    return {
        "num_classes": _out_channels(state_dict, f"{HEAD}.cv3.0.2.weight"),
        "stackwise_channels": [_out_channels(state_dict, f"model.{i}.cv2.conv.weight")
                               for i in (2, 4, 6, 8)],
        "stackwise_depth": [_bottlenecks(state_dict, i) for i in (2, 4, 6, 8)],
        "neck_depths": [_bottlenecks(state_dict, i) for i in (12, 15, 18, 21)],
        "head_class_channels": _out_channels(state_dict, f"{HEAD}.cv3.0.0.conv.weight"),
    }


def matching_preset(layout):
    """Returns `"yolov8n"` ... `"yolov8x"` when `layout` is that Ultralytics scale, else None."""
    from edgedet.models.yolo_v8_detector import ultralytics_class_channels
    from edgedet.models.yolo_v8_presets import get_preset

    for size in SIZES:
        preset = get_preset(f"yolov8{size}")
        channels = preset["stackwise_channels"]
        if (
            layout["stackwise_channels"] == channels
            and layout["stackwise_depth"] == preset["stackwise_depth"]
            and layout["neck_depths"] == preset["neck_depths"]
            and layout["head_class_channels"]
            == ultralytics_class_channels(channels[1], layout["num_classes"])
        ):
            return f"yolov8{size}"
    return None


def weight_table(model):
    """Lists `(ultralytics_prefix, edgedet_layer_prefix, kind)` for every weighted block.

    `kind` is `"conv_bn"` (an Ultralytics `Conv`: `{prefix}.conv` +
    `{prefix}.bn` onto `{layer}_conv` + `{layer}_bn`) or `"conv"` (a plain
    `nn.Conv2d` with bias onto layer `{layer}`).

    Args:
        model: edgedet `YOLOV8Detector` (its depths select the bottlenecks).
    """
    table = [("model.0", "stem_1", "conv_bn"), ("model.1", "stem_2", "conv_bn")]

    def c2f(index, name, depth):
        table.append((f"model.{index}.cv1", f"{name}_pre", "conv_bn"))
        for k in range(depth):
            table.append((f"model.{index}.m.{k}.cv1", f"{name}_pre_{k}_1", "conv_bn"))
            table.append((f"model.{index}.m.{k}.cv2", f"{name}_pre_{k}_2", "conv_bn"))
        table.append((f"model.{index}.cv2", f"{name}_output", "conv_bn"))

    for stage, depth in enumerate(model.stackwise_depth):
        if stage:
            table.append((f"model.{2 * stage + 1}", f"stack{stage + 1}_downsample", "conv_bn"))
        c2f(2 * stage + 2, f"stack{stage + 1}_c2f", depth)
    table.append(("model.9.cv1", "stack4_spp_fast_pre", "conv_bn"))
    table.append(("model.9.cv2", "stack4_spp_fast_output", "conv_bn"))
    d_p4p5, d_p3p4p5, d_down1, d_down2 = model.neck_depths
    c2f(12, "pa_fpn_p4p5", d_p4p5)
    c2f(15, "pa_fpn_p3p4p5", d_p3p4p5)
    table.append(("model.16", "pa_fpn_p3p4p5_downsample1", "conv_bn"))
    c2f(18, "pa_fpn_p3p4p5_downsample1_block", d_down1)
    table.append(("model.19", "pa_fpn_p3p4p5_downsample2", "conv_bn"))
    c2f(21, "pa_fpn_p3p4p5_downsample2_block", d_down2)
    for i in range(3):
        for branch, part in (("cv2", "box"), ("cv3", "class")):
            level = f"yolo_v8_head_{i + 1}_{part}"
            table.append((f"{HEAD}.{branch}.{i}.0", f"{level}_1", "conv_bn"))
            table.append((f"{HEAD}.{branch}.{i}.1", f"{level}_2", "conv_bn"))
            table.append((f"{HEAD}.{branch}.{i}.2", f"{level}_3_conv", "conv"))
    return table


class _Copier:
    """Collects every tensor's Keras value, and every problem, before assigning anything."""

    def __init__(self, model, weights):
        self.model, self.weights = model, weights
        self.state = weights.state_dict
        self.used, self.problems, self.assignments = set(), [], []

    def take(self, key, layer, what, expected):
        """Returns `state[key]` if its shape is `expected` (PyTorch layout), else None."""
        if key not in self.state:
            self.problems.append(f"missing tensor '{key}' (for edgedet {what} of '{layer}')")
            return None
        self.used.add(key)
        value = self.state[key]
        if tuple(value.shape) != tuple(expected):
            self.problems.append(
                f"'{key}' has shape {tuple(value.shape)}, but edgedet's '{layer}' {what} needs "
                f"{tuple(expected)} (in PyTorch's layout)"
            )
            return None
        return value

    def kernel(self, prefix, layer):
        kernel = self.model.get_layer(layer).kernel
        h, w, i, o = kernel.shape
        value = self.take(f"{prefix}.weight", layer, "kernel", (o, i, h, w))
        return None if value is None else value.transpose(2, 3, 1, 0)  # OIHW -> HWIO

    def conv_bn(self, prefix, name):
        kernel = self.kernel(f"{prefix}.conv", f"{name}_conv")
        bn = self.model.get_layer(f"{name}_bn")
        n = bn.gamma.shape[0]
        if f"{prefix}.bn.weight" not in self.state and f"{prefix}.conv.bias" in self.state:
            # A fused Conv (BatchNorm folded into the conv's bias): identity BatchNorm.
            bias = self.take(f"{prefix}.conv.bias", f"{name}_conv", "bias", (n,))
            stats = None if bias is None else [
                np.ones(n, np.float32), bias, np.zeros(n, np.float32),
                np.full(n, 1.0 - bn.epsilon, np.float32)]
        else:
            parts = [self.take(f"{prefix}.bn.{p}", f"{name}_bn", p, (n,))
                     for p in ("weight", "bias", "running_mean", "running_var")]
            self.used.add(f"{prefix}.bn.num_batches_tracked")
            stats = None if any(p is None for p in parts) else self._fold_eps(
                parts, self.weights.bn_epsilon.get(f"{prefix}.bn", ULTRALYTICS_BN_EPSILON),
                bn.epsilon)
        if kernel is not None and stats is not None:
            self.assignments.append((f"{name}_conv", [kernel]))
            self.assignments.append((f"{name}_bn", stats))

    @staticmethod
    def _fold_eps(parts, torch_eps, keras_eps):
        """gamma, beta, mean, var so that Keras' eps computes what PyTorch's eps did."""
        gamma, beta, mean, var = (p.astype(np.float32) for p in parts)
        if torch_eps == keras_eps:
            return [gamma, beta, mean, var]
        var = var.astype(np.float64) + (torch_eps - keras_eps)
        low = var < 0  # only when PyTorch's eps is smaller: rescale gamma instead.
        scale = np.where(low, np.sqrt(keras_eps / np.maximum(var + keras_eps, 1e-30)), 1.0)
        return [(gamma * scale).astype(np.float32), beta, mean,
                np.where(low, 0.0, var).astype(np.float32)]

    def conv(self, prefix, name):
        kernel = self.kernel(prefix, name)
        n = self.model.get_layer(name).bias.shape[0]
        bias = self.take(f"{prefix}.bias", name, "bias", (n,))
        if kernel is not None and bias is not None:
            self.assignments.append((name, [kernel, bias]))

    def dfl(self):
        key = f"{HEAD}.dfl.conv.weight"
        expected = np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)
        value = self.take(key, "decode", "DFL projection", expected.shape)
        if value is not None and not np.array_equal(value, expected):
            self.problems.append(f"'{key}' is not arange({REG_MAX}); edgedet's decode assumes it")


def copy_weights(weights, model):
    """Copies Ultralytics weights into an edgedet model, checking every tensor first.

    Args:
        weights: `UltralyticsWeights` (or anything `read_ultralytics_weights` takes).
        model: edgedet `YOLOV8Detector` with the same layout.

    Raises:
        UltralyticsImportError: listing every missing tensor, shape mismatch
            (naming the tensor and both shapes) and unused tensor.
    """
    weights = read_ultralytics_weights(weights)
    copier = _Copier(model, weights)
    table = weight_table(model)
    for prefix, name, kind in table:
        getattr(copier, kind)(prefix, name)
    copier.dfl()
    unused = sorted(set(weights.state_dict) - copier.used)
    copier.problems.extend(f"'{k}' is not part of a YOLOv8 detector" for k in unused)
    if copier.problems:
        shown = "\n  ".join(copier.problems[:20])
        more = len(copier.problems) - 20
        raise UltralyticsImportError(
            f"Cannot import {weights.source}: {len(copier.problems)} tensor(s) do not fit "
            f"edgedet's YOLOv8:\n  {shown}" + (f"\n  ... and {more} more" if more > 0 else "")
        )
    covered = {n + ("_conv" if k == "conv_bn" else "") for _, n, k in table}
    covered |= {n + "_bn" for _, n, k in table if k == "conv_bn"}
    missed = sorted(layer.name for layer in model.layers if layer.weights and layer.name not in covered)
    if missed:  # a bug in weight_table, not in the user's file
        raise RuntimeError(f"edgedet layers without Ultralytics weights: {missed}")
    for name, values in copier.assignments:
        model.get_layer(name).set_weights(values)


def from_ultralytics(source, size=None, num_classes=None, class_names=None, image_size=None,
                     trust_pickle=False):
    """Converts Ultralytics YOLOv8 detection weights into an edgedet `YOLOV8Detector`.

    The model carries Ultralytics' preprocessing (centred letterbox, pad
    114, RGB, /255) and the default class-aware NMS, so exporting it needs
    no extra settings.

    Args:
        source: see `read_ultralytics_weights`. A full Ultralytics checkpoint
            is a pickle, read only with `trust_pickle`.
        size: str or None. `"n"`, `"s"`, `"m"`, `"l"` or `"x"`: check that
            the weights are that scale of `yolov8.yaml`. Defaults to None (any
            layout, read from the tensor shapes).
        num_classes: int or None. Check the class count. Defaults to None.
        class_names: list of str or None. Defaults to the checkpoint's names,
            else `class_0`, ...
        image_size: int or None. Letterbox size. Defaults to the checkpoint's
            training `imgsz`, else 640.

    Returns:
        An edgedet `YOLOV8Detector` whose raw head equals the Ultralytics
        model's (box DFL logits and class logits).

    Example:
    ```python
    model = edgedet.models.ultralytics_import.from_ultralytics("best.pt")
    model.save("best.keras")
    ```
    """
    from edgedet.models.yolo_v8_detector import YOLOV8Detector

    if size is not None and size not in SIZES:
        raise UltralyticsImportError(f"Invalid size: {size!r}. Expected one of {list(SIZES)}.")
    weights = read_ultralytics_weights(source, trust_pickle=trust_pickle)
    layout = infer_layout(weights.state_dict)
    preset = matching_preset(layout)
    if size is not None and preset != f"yolov8{size}":
        from edgedet.models.yolo_v8_presets import get_preset

        expected = get_preset(f"yolov8{size}")
        raise UltralyticsImportError(
            f"--size {size}: yolov8{size} has channels {expected['stackwise_channels']} and "
            f"C2f depths {expected['stackwise_depth']}, but {weights.source} has channels "
            f"{layout['stackwise_channels']} and depths {layout['stackwise_depth']}"
            + (f" (it is {preset})." if preset else " (a custom scale).")
        )
    if num_classes is not None and num_classes != layout["num_classes"]:
        raise UltralyticsImportError(
            f"Expected {num_classes} classes, but the class head '{HEAD}.cv3.0.2.weight' of "
            f"{weights.source} has {layout['num_classes']}."
        )
    names = class_names if class_names is not None else weights.class_names
    if names is not None and len(names) != layout["num_classes"]:
        raise UltralyticsImportError(
            f"Got {len(names)} class names for {weights.source}, whose class head has "
            f"{layout['num_classes']} classes."
        )
    size_px = image_size or weights.image_size or 640
    model = YOLOV8Detector(
        **layout,
        include_rescaling=True,
        class_names=None if names is None else list(names),
        letterbox=LetterboxConfig.ultralytics(size_px),
        preset=preset,
        name=preset or "yolov8",
    )
    copy_weights(weights, model)
    return model


def import_ultralytics(weights, out, size=None, num_classes=None, class_names=None,
                       image_size=None, force=False, trust_pickle=False):
    """Imports Ultralytics YOLOv8 weights and writes an edgedet `.keras` file atomically.

    Args:
        weights: see `read_ultralytics_weights`.
        out: str or path-like. The `.keras` file to write.
        size, num_classes, class_names, image_size: see `from_ultralytics`.
        force: bool. Replace an existing `out`. Defaults to False.
        trust_pickle: bool. See `read_ultralytics_weights`. Defaults to False.

    Returns:
        `(path, model)`: the written `pathlib.Path` and the `YOLOV8Detector`.
    """
    from edgedet.files import check_writable_output

    out = Path(out)
    if out.suffix != ".keras":
        raise UltralyticsImportError(f"Invalid output '{out}': expected a '.keras' file.")
    check_writable_output(out, force, protected=[weights] if isinstance(weights, (str, os.PathLike))
                          else ())
    model = from_ultralytics(weights, size, num_classes, class_names, image_size,
                             trust_pickle=trust_pickle)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        model.save(tmp / out.name)
        check_writable_output(out, force)  # something may have appeared meanwhile
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, model
