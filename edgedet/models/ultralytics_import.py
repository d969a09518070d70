"""Import Ultralytics detection weights into an edgedet model of the right family.

The checkpoint's family (YOLOv8, YOLO11, YOLO26, ...) is recognised from its
keys: each row of `edgedet.models.families` with an Ultralytics key map
(`ModelFamily.ultralytics_path`: `why_not`, `infer_layout`, `matching_preset`,
`weight_table`, `HEAD`, `PRESET_PREFIX`, and optionally `UNACTIVATED`, the
modules it builds without activation) is asked in turn, after the checks every
family shares (a segmentation, pose, OBB or classification model is refused
with the reason, and an NMS-free one-to-one head by every family whose `heads`
lack `"one2one"`). The layout is read from the tensor shapes, so custom scales
import too. A `Conv` is a Conv2d without bias (OIHW, transposed to Keras' HWIO)
and a BatchNorm2d whose eps (1e-3 in Ultralytics; read from the module when a
model is given) is folded into the running variance when it differs from Keras'
1e-3; a depthwise Conv2d (OIHW with I = 1) becomes Keras' HWC1.

Sources (checkpoint, state_dict file, `.npz`, dict, torch module) are read by
`edgedet.models.ultralytics_weights`; its public names are re-exported here.
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgedet.config import LetterboxConfig
from edgedet.models.ultralytics_weights import (  # noqa: F401  (re-exported)
    UltralyticsImportError,
    UltralyticsWeights,
    check_activations,
    module_keys,
    read_ultralytics_weights,
)

SIZES = ("n", "s", "m", "l", "x")
ULTRALYTICS_BN_EPSILON = 1e-3


def _task_problem(state_dict):
    """Why `state_dict` is no Ultralytics detection model of any family, or None."""
    modules = module_keys(state_dict)
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
    return None


def _head_problem(state_dict, family):
    """Why `family` cannot take the heads of `state_dict`, or None."""
    modules = module_keys(state_dict)
    last = max(modules)
    if "one2one" not in family.heads and any(k.startswith("one2one_") for k in modules[last]):
        return f"it has an NMS-free one-to-one head at model.{last} (YOLOv10 / YOLO26 style)"
    return None


def _keymaps():
    from edgedet.models import families

    return [(f, f.ultralytics()) for f in families.families() if f.ultralytics_path]


def identify(state_dict):
    """Returns why `state_dict` is no detector of a known family, or None when it is one.

    Args:
        state_dict: dict `{key: array}` of an Ultralytics model.
    """
    try:
        recognise(state_dict)
    except UltralyticsImportError as e:
        return str(e)
    return None


def recognise(state_dict):
    """Returns `(family, keymap)` of the family whose Ultralytics key map takes `state_dict`.

    Raises:
        UltralyticsImportError: naming, per family, why it is not that family.
    """
    problem = _task_problem(state_dict)
    reasons = []
    if problem is None:
        for family, keymap in _keymaps():
            reason = _head_problem(state_dict, family) or keymap.why_not(state_dict)
            if reason is None:
                return family, keymap
            reasons.append(f"not {family.title}: {reason}")
    titles = "; ".join(keymap.TITLE for _, keymap in _keymaps())
    raise UltralyticsImportError(
        f"Cannot import these weights: {problem or '; '.join(reasons)}. edgedet imports "
        f"{titles}."
    )


def infer_layout(state_dict):
    """Reads the layout (the family class's constructor arguments) from tensor shapes.

    Args:
        state_dict: dict `{key: array}` of an Ultralytics detector.

    Raises:
        UltralyticsImportError: for an unknown family or task, or a missing tensor.
    """
    return recognise(state_dict)[1].infer_layout(state_dict)


def matching_preset(layout, family=None):
    """Returns the preset (`"yolov8n"`, `"yolo11s"`, ...) `layout` equals, else None.

    Args:
        layout: dict, as `infer_layout` returns it.
        family: str or None. The family whose presets to compare with. None
            asks every family in table order; name it where two families'
            layouts share their arguments (yolo26m's equal yolo11m's).
            Defaults to None.
    """
    for row, keymap in _keymaps():
        preset = keymap.matching_preset(layout) if family in (None, row.name) else None
        if preset is not None:
            return preset
    return None


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
        keras_layer = self.model.get_layer(layer)
        if hasattr(keras_layer, "depth_multiplier"):  # DWConv: (C * m, 1, h, w) -> (h, w, C, m)
            h, w, i, m = keras_layer.kernel.shape
            value = self.take(f"{prefix}.weight", layer, "kernel", (i * m, 1, h, w))
            return None if value is None else value.transpose(2, 3, 0, 1).reshape(h, w, i, m)
        h, w, i, o = keras_layer.kernel.shape
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

    def dfl(self, head, reg_max):
        key = f"{head}.dfl.conv.weight"
        expected = np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1)
        value = self.take(key, "decode", "DFL projection", expected.shape)
        if value is not None and not np.array_equal(value, expected):
            self.problems.append(f"'{key}' is not arange({reg_max}); edgedet's decode assumes it")


WeightCopier = _Copier


def copy_weights(weights, model, keymap=None):
    """Copies Ultralytics weights into an edgedet model, checking every tensor first.

    Args:
        weights: `UltralyticsWeights` (or anything `read_ultralytics_weights` takes).
        model: an edgedet detector with the same layout.
        keymap: the family's Ultralytics key map module, or None to
            recognise it from the weights. Defaults to None.

    Raises:
        UltralyticsImportError: listing every missing tensor, shape mismatch
            (naming the tensor and both shapes) and unused tensor.
    """
    weights = read_ultralytics_weights(weights)
    if keymap is None:
        keymap = recognise(weights.state_dict)[1]
    check_activations(weights, getattr(keymap, "UNACTIVATED", ()))
    copier = _Copier(model, weights)
    table = keymap.weight_table(model)
    for prefix, name, kind in table:
        getattr(copier, kind)(prefix, name)
    if model.reg_max > 1:  # reg_max 1 (YOLO26): no DFL, Ultralytics' `dfl` is an Identity
        copier.dfl(keymap.HEAD, model.reg_max)
    unused = sorted(set(weights.state_dict) - copier.used)
    from edgedet.models import families

    family = families.family_of_model(model)
    title = f"{family.title} detector" if family else type(model).__name__
    copier.problems.extend(f"'{k}' is not part of a {title}" for k in unused)
    if copier.problems:
        shown = "\n  ".join(copier.problems[:20])
        more = len(copier.problems) - 20
        raise UltralyticsImportError(
            f"Cannot import {weights.source}: {len(copier.problems)} tensor(s) do not fit "
            f"edgedet's {title}:\n  {shown}" + (f"\n  ... and {more} more" if more > 0 else "")
        )
    covered = {n + ("_conv" if k == "conv_bn" else "") for _, n, k in table}
    covered |= {n + "_bn" for _, n, k in table if k == "conv_bn"}
    missed = sorted(layer.name for layer in model.layers
                    if layer.weights and layer.name not in covered)
    if missed:  # a bug in weight_table, not in the user's file
        raise RuntimeError(f"edgedet layers without Ultralytics weights: {missed}")
    for name, values in copier.assignments:
        model.get_layer(name).set_weights(values)


def from_ultralytics(source, size=None, num_classes=None, class_names=None, image_size=None,
                     trust_pickle=False):
    """Converts Ultralytics detection weights into an edgedet model of their family.

    The family (YOLOv8, YOLO11, YOLO26) is recognised from the keys. The model
    carries Ultralytics' preprocessing (centred letterbox, pad 114, RGB,
    /255) and the default class-aware NMS, so exporting it needs no extra
    settings.

    Args:
        source: see `read_ultralytics_weights`. A full Ultralytics checkpoint
            is a pickle, read only with `trust_pickle`.
        size: str or None. `"n"`, `"s"`, `"m"`, `"l"` or `"x"`: check that
            the weights are that scale of the family's yaml (`yolov8.yaml`,
            `yolo11.yaml`, `yolo26.yaml`). Defaults to None (any layout, read from the
            tensor shapes).
        num_classes: int or None. Check the class count. Defaults to None.
        class_names: list of str or None. Defaults to the checkpoint's names,
            else `class_0`, ...
        image_size: int or None. Letterbox size. Defaults to the checkpoint's
            training `imgsz`, else 640.

    Returns:
        An edgedet detector (`YOLOV8Detector`, `YOLO11Detector`,
        `YOLO26Detector`) whose raw head (both heads for YOLO26) equals the
        Ultralytics model's (box DFL logits, or distances, and class logits).

    Example:
    ```python
    model = edgedet.models.ultralytics_import.from_ultralytics("best.pt")
    model.save("best.keras")
    ```
    """
    if size is not None and size not in SIZES:
        raise UltralyticsImportError(f"Invalid size: {size!r}. Expected one of {list(SIZES)}.")
    weights = read_ultralytics_weights(source, trust_pickle=trust_pickle)
    family, keymap = recognise(weights.state_dict)
    layout = keymap.infer_layout(weights.state_dict)
    preset = keymap.matching_preset(layout)
    prefix = keymap.PRESET_PREFIX
    if size is not None and preset != f"{prefix}{size}":
        expected = family.get_preset(f"{prefix}{size}")
        keys = [k for k in layout if k in expected and layout[k] != expected[k]]
        raise UltralyticsImportError(
            f"--size {size}: {prefix}{size} has "
            + ", ".join(f"{k} {expected[k]}" for k in keys)
            + f", but {weights.source} has " + ", ".join(f"{k} {layout[k]}" for k in keys)
            + (f" (it is {preset})." if preset else " (a custom scale).")
        )
    if num_classes is not None and num_classes != layout["num_classes"]:
        raise UltralyticsImportError(
            f"Expected {num_classes} classes, but the class head '{keymap.HEAD}.cv3.0.2.weight' "
            f"of {weights.source} has {layout['num_classes']}."
        )
    names = class_names if class_names is not None else weights.class_names
    if names is not None and len(names) != layout["num_classes"]:
        raise UltralyticsImportError(
            f"Got {len(names)} class names for {weights.source}, whose class head has "
            f"{layout['num_classes']} classes."
        )
    size_px = image_size or weights.image_size or 640
    model = family.model_class()(
        **layout,
        include_rescaling=True,
        class_names=None if names is None else list(names),
        letterbox=LetterboxConfig.ultralytics(size_px),
        preset=preset,
        name=preset or prefix,
    )
    copy_weights(weights, model, keymap)
    return model


def import_ultralytics(weights, out, size=None, num_classes=None, class_names=None,
                       image_size=None, force=False, trust_pickle=False):
    """Imports Ultralytics detection weights and writes an edgedet `.keras` file atomically.

    Args:
        weights: see `read_ultralytics_weights`.
        out: str or path-like. The `.keras` file to write.
        size, num_classes, class_names, image_size: see `from_ultralytics`.
        force: bool. Replace an existing `out`. Defaults to False.
        trust_pickle: bool. See `read_ultralytics_weights`. Defaults to False.

    Returns:
        `(path, model)`: the written `pathlib.Path` and the model.
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
