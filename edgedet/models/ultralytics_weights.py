"""Read Ultralytics detection weights (YOLOv8, YOLO11, YOLO26) into numpy arrays.

The arrays and what the file says about them are an `UltralyticsWeights`.

Sources: an Ultralytics checkpoint (`best.pt`, a pickle of ultralytics
classes: needs the `ultralytics` package, and runs code stored in the file,
so it is read only with `trust_pickle=True`, the CLI's `--trust-pickle`), a
plain PyTorch state_dict file (read with `torch.load(weights_only=True)`), a
`.npz` of the state_dict (no torch needed), a `{key: array}` dict, or a live
`torch.nn.Module`.

Neither torch nor ultralytics is imported until a `.pt` / `.pth` file is
read. Converting the arrays into an edgedet model is
`edgedet.models.ultralytics_import`'s job.
"""

import dataclasses
import os
import re

import numpy as np

_NOT_DETECTION_MODELS = {
    "SegmentationModel": "a segmentation model (YOLOv8-seg)",
    "PoseModel": "a pose model (YOLOv8-pose)",
    "OBBModel": "an oriented-box model (YOLOv8-obb)",
    "ClassificationModel": "a classification model (YOLOv8-cls)",
    "RTDETRDetectionModel": "an RT-DETR model",
    "WorldModel": "a YOLO-World model",
    "YOLOEModel": "a YOLOE model",
}


def module_keys(state_dict):
    """Groups state_dict keys by top-level module index: `{22: {"cv2.0.0.conv.weight", ...}}`."""
    groups = {}
    for key in state_dict:
        match = re.match(r"model\.(\d+)\.(.+)$", key)
        if match:
            groups.setdefault(int(match.group(1)), set()).add(match.group(2))
    return groups


# Convs that Ultralytics builds with act=False in every family: the attention's
# qkv, proj and pe, and a PSABlock FFN's second conv (YOLO11's C2PSA). A family
# adds its own (YOLO26: the SPPF's cv1) by its key map's `UNACTIVATED`.
_UNACTIVATED = re.compile(r"\.(attn\.(qkv|proj|pe)|ffn\.1)$")


class UltralyticsImportError(ValueError):
    """Ultralytics weights that cannot be converted to an edgedet model."""


@dataclasses.dataclass
class UltralyticsWeights:
    """An Ultralytics state_dict as numpy arrays, with what the file says about it.

    Args:
        state_dict: dict `{key: np.ndarray}` (`model.0.conv.weight`, ...).
        class_names: tuple of str or None. From the checkpoint, if any.
        bn_epsilon: dict `{"model.0.bn": eps}` read from a model; a missing
            entry means Ultralytics' 1e-3.
        image_size: int or None. The training `imgsz` of a checkpoint.
        source: str. Where the weights came from (for messages).
        activations: dict or None. `{"model.9.cv1": "Identity", ...}`, the
            activation of every `Conv` / `DWConv` of a model (checked by
            `check_activations`); None when the source is a bare state_dict.
    """

    state_dict: dict
    class_names: tuple = None
    bn_epsilon: dict = dataclasses.field(default_factory=dict)
    image_size: int = None
    source: str = "the state_dict"
    activations: dict = None


def check_activations(weights, unactivated=()):
    """Checks that a model's convolutions are activated as edgedet's family's are.

    Every `Conv` / `DWConv` must use SiLU, but an attention block's (none),
    and the modules named in `unactivated` must have none (YOLO26's
    `model.9.cv1`). Nothing is checked for a bare state_dict.

    Args:
        weights: `UltralyticsWeights`.
        unactivated: iterable of str. Module names the family builds with
            `act=False`. Defaults to `()`.

    Raises:
        UltralyticsImportError: naming the first module that differs.
    """
    unactivated = set(unactivated)
    for name, act in (weights.activations or {}).items():
        if name in unactivated:
            if act != "Identity":
                raise UltralyticsImportError(
                    f"{weights.source}: module '{name}' uses activation {act}; edgedet's model "
                    "of this family has none there."
                )
        elif act != "SiLU" and not (act == "Identity" and _UNACTIVATED.search(name)):
            raise UltralyticsImportError(
                f"{weights.source}: module '{name}' uses activation {act}; edgedet's models use "
                "SiLU in every convolution but an attention block's (and a YOLO26 SPPF's "
                "model.9.cv1)."
            )


def _to_numpy(value, key):
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        value = value.numpy()
    try:
        array = np.asarray(value)
    except Exception as e:
        raise UltralyticsImportError(
            f"Tensor '{key}' is not an array: {type(value).__name__}.") from e
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def _state_dict(mapping, source):
    bad = [k for k in mapping if not isinstance(k, str)]
    if bad or not mapping:
        raise UltralyticsImportError(
            f"{source} holds no state_dict: expected a non-empty dict of named tensors"
            + (f", found keys like {bad[:3]}." if bad else ".")
        )
    return {k: _to_numpy(v, k) for k, v in mapping.items()}


def _class_names(names):
    if names is None:
        return None
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    return tuple(str(n) for n in names)


def _image_size(args):
    if args is not None and not isinstance(args, dict):
        args = vars(args) if hasattr(args, "__dict__") else None
    size = (args or {}).get("imgsz")
    if isinstance(size, (list, tuple)) and size:
        size = max(size)
    return size if isinstance(size, int) and size >= 32 and size % 32 == 0 else None


def _from_module(model, checkpoint=None, source="model"):
    """Reads an Ultralytics `DetectionModel` (or any `torch.nn.Module`)."""
    kind = _NOT_DETECTION_MODELS.get(type(model).__name__)
    if kind:
        raise UltralyticsImportError(
            f"{source} is {kind}; edgedet imports detection models only."
        )
    yaml = getattr(model, "yaml", None)
    if isinstance(yaml, dict) and yaml.get("activation"):
        raise UltralyticsImportError(
            f"{source} sets activation {yaml['activation']!r}; edgedet's models use SiLU."
        )
    bn_epsilon, activations = {}, {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind == "BatchNorm2d":
            bn_epsilon[name] = float(module.eps)
        elif kind in ("Conv", "DWConv") and hasattr(module, "act"):
            activations[name] = type(module.act).__name__
    args = (checkpoint or {}).get("train_args") or getattr(model, "args", None)
    return UltralyticsWeights(
        state_dict=_state_dict(model.state_dict(), source),
        class_names=_class_names(getattr(model, "names", None)),
        bn_epsilon=bn_epsilon,
        image_size=_image_size(args),
        source=source,
        activations=activations,
    )


def _pickle_refused(path):
    return UltralyticsImportError(
        f"'{path}' is not a plain state_dict: it is a full checkpoint, a Python pickle, and "
        "reading it runs code stored in the file, which can do anything your user account "
        "can. edgedet reads PyTorch files safely (torch.load(weights_only=True)), and that "
        "was not enough for this one. If you trust where it came from, pass --trust-pickle "
        "(library: trust_pickle=True). Safer: where ultralytics is installed, save its "
        "state_dict with ckpt = torch.load(path, weights_only=False); "
        "torch.save((ckpt.get('ema') or ckpt['model']).float().state_dict(), 'state_dict.pt') "
        "and import that file with --classes."
    )


def _load_torch_file(path, trust_pickle=False):
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Reading '{path}' needs torch (pip install 'edgedet[ultralytics]'); a .npz of the "
            f"state_dict can be imported without it. Import error: {e}"
        ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if "weights_only" not in str(e).lower() and "weights only" not in str(e).lower():
            raise UltralyticsImportError(f"Could not read '{path}' as a PyTorch file: {e}") from e
        if not trust_pickle:  # Never run pickled code without the user's consent.
            raise _pickle_refused(path) from None
        try:
            import ultralytics  # noqa: F401  (makes the pickled classes importable)
        except ImportError:
            raise UltralyticsImportError(
                f"'{path}' is a full Ultralytics checkpoint (a pickle of ultralytics classes). "
                "Reading it needs the ultralytics package (pip install 'edgedet[ultralytics]'); "
                "or, where ultralytics is installed, save its state_dict with ckpt = torch.load("
                "path, weights_only=False); torch.save((ckpt.get('ema') or ckpt['model']).float()"
                ".state_dict(), 'state_dict.pt') and import that file with --classes."
            ) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:
            raise UltralyticsImportError(
                f"Could not read the Ultralytics checkpoint '{path}': {type(e2).__name__}: {e2}"
            ) from e2
    if isinstance(obj, dict):
        model = obj.get("ema") or obj.get("model")
        if hasattr(model, "state_dict") and hasattr(model, "named_modules"):
            return _from_module(model, obj, f"'{path}'")
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        return UltralyticsWeights(_state_dict(obj, f"'{path}'"), source=f"'{path}'")
    if hasattr(obj, "state_dict") and hasattr(obj, "named_modules"):
        return _from_module(obj, None, f"'{path}'")
    raise UltralyticsImportError(
        f"'{path}' holds a {type(obj).__name__}; "
        "expected an Ultralytics checkpoint or a state_dict."
    )


def read_ultralytics_weights(source, trust_pickle=False):
    """Reads Ultralytics YOLOv8 weights into numpy arrays.

    Args:
        source: a path (`.pt` / `.pth` checkpoint or state_dict, `.npz` of
            the state_dict), a `{key: tensor or array}` dict, a live
            `torch.nn.Module`, or an `UltralyticsWeights`.
        trust_pickle: bool. Read a file that the safe loader
            (`torch.load(weights_only=True)`) refuses, such as a full
            Ultralytics checkpoint, with the full pickle loader, which runs
            code stored in the file. Only for files you trust. Defaults to False.

    Returns:
        `UltralyticsWeights`.
    """
    if isinstance(source, UltralyticsWeights):
        return source
    if isinstance(source, dict):
        return UltralyticsWeights(_state_dict(source, "the state_dict"))
    if hasattr(source, "state_dict") and hasattr(source, "named_modules"):
        return _from_module(source, None, f"the {type(source).__name__}")
    if not isinstance(source, (str, os.PathLike)):
        raise UltralyticsImportError(
            f"Expected a weights path, a state_dict or a torch module, received "
            f"{type(source).__name__}."
        )
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise UltralyticsImportError(f"No such weights file: '{path}'.")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return UltralyticsWeights(
                _state_dict({k: data[k] for k in data.files}, f"'{path}'"), source=f"'{path}'"
            )
    if path.endswith((".pt", ".pth", ".bin")):
        return _load_torch_file(path, trust_pickle)
    raise UltralyticsImportError(
        f"Unsupported weights file '{path}': expected a .pt / .pth (Ultralytics checkpoint or "
        "PyTorch state_dict) or a .npz of the state_dict."
    )
