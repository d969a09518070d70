"""The one table of export targets.

Each row says what a target is called (and its aliases), what it writes (a
folder or a file with a suffix), whether it needs a GPU, which precisions it
supports, and where its exporter lives (imported only when used). `--target`
values are checked here, with a "did you mean" for typos.

Example:

```python
from edgedet.exporters.registry import get_target, buildable_targets

get_target("tf").name                  # "savedmodel"
[t.name for t in buildable_targets()]  # ["savedmodel", "onnx", "tflite"] on a CPU box
```

A plugin (or a test) adds a row with `register_target` and removes it with
`unregister_target`.
"""

import dataclasses
import importlib
import importlib.util

from edgedet import cuda
from edgedet.config import LETTERBOX_SHAPES
from edgedet.suggest import closest


@dataclasses.dataclass(frozen=True)
class Target:
    """One export target.

    Args:
        name: str. Canonical name (what metadata records).
        aliases: tuple of str. Other accepted spellings.
        suffix: str. Artifact suffix: `"_saved_model"` for the SavedModel
            folder, `".onnx"`, ...
        is_folder: bool. Whether the artifact is a folder.
        exporter: str. `"module:function"` of the exporter, imported lazily.
        precisions: tuple of str. Precisions this target can be exported at.
        needs_gpu: bool. Whether building needs an NVIDIA GPU.
        requires: tuple of str. Python packages the exporter imports.
        description: str. One line for help texts.
        int8_exporter: str or None. `"module:function"` of the INT8 exporter
            when INT8 is written by another function than FP32. Defaults to
            None.
        fallback: str or None. `"module:function"` called instead of the
            exporter when this machine cannot build the target: it writes
            what it can (e.g. the TensorRT-ready ONNX) and raises an
            `ExportError` saying how to finish on the device. Defaults to None.
        in_all: bool. Whether `--target all` includes it (packagings of
            another artifact, like the Triton repository, are named
            explicitly). Defaults to True.
        options: tuple of str. Keyword options its exporters accept through
            `export(..., target_options={name: {...}})`, at every precision.
            Defaults to `()`.
        static_body: str. Why the artifact's network needs an input shape
            fixed at build time, so that a rect letterbox (whose body shape
            depends on the image, `LetterboxConfig(shape="rect")`) is refused
            before any work; `""` when its runtime takes a data-dependent
            body shape. Defaults to `""`.
        letterbox: str. The letterbox shape (`LetterboxConfig.shape`) an
            export gets when none is given and every target of the export
            defaults to it (`default_letterbox`): `"rect"` where the body on
            a non-square frame is the runtime's largest cost saved (OpenVINO
            on x86), `"square"` otherwise. A `static_body` target defaults
            to `"square"`. Defaults to `"square"`.
    """

    name: str
    aliases: tuple
    suffix: str
    is_folder: bool
    exporter: str
    precisions: tuple = ("fp32",)
    needs_gpu: bool = False
    requires: tuple = ()
    description: str = ""
    int8_exporter: str = None
    fallback: str = None
    in_all: bool = True
    options: tuple = ()
    static_body: str = ""
    letterbox: str = "square"

    def __post_init__(self):
        if self.letterbox not in LETTERBOX_SHAPES:
            raise ValueError(f"Target '{self.name}': invalid letterbox '{self.letterbox}'. "
                             f"Expected one of {list(LETTERBOX_SHAPES)}.")
        if self.letterbox == "rect" and self.static_body:
            raise ValueError(f"Target '{self.name}' cannot default to a rect letterbox: it has "
                             f"a static body ({self.static_body}).")

    def artifact_name(self, stem):
        """File or folder name of this target's artifact for a model called `stem`."""
        return f"{stem}{self.suffix}"

    def unavailable_reason(self):
        """Why this machine cannot build the target, or None if it can."""
        reasons = []
        if self.needs_gpu and not cuda.has_nvidia_gpu():
            reasons.append("needs an NVIDIA GPU, and none was found")
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if missing:
            reasons.append(f"needs the Python package(s) {missing}, not installed")
        if importlib.util.find_spec(self.exporter.split(":")[0]) is None:
            reasons.append("has no exporter in this edgedet version")
        return "; ".join(reasons) or None

    def load_exporter(self, precision="fp32", fallback=False):
        """Imports and returns the exporter function for `precision` (or the fallback)."""
        spec = self.exporter
        if fallback and self.fallback:
            spec = self.fallback
        elif precision == "int8" and self.int8_exporter:
            spec = self.int8_exporter
        module_name, function_name = spec.split(":")
        return getattr(importlib.import_module(module_name), function_name)

    def check_options(self, options):
        """Checks `target_options` for this target; returns them as a dict.

        Raises:
            ValueError: not a dict, or an option this target does not accept
                (naming it, the accepted ones and the closest match).
        """
        if not isinstance(options, dict):
            raise ValueError(f"Options for target '{self.name}' must be a dict, received "
                             f"{type(options).__name__}.")
        for key in options:
            if key not in self.options:
                raise ValueError(
                    f"Unknown option '{key}' for target '{self.name}'. Accepted options: "
                    f"{list(self.options) or 'none'}." + closest(str(key), list(self.options)))
        return dict(options)

    def check_precision(self, precision):
        """Raises ValueError when this target cannot be exported at `precision`."""
        if precision not in self.precisions:
            raise ValueError(
                f"Target '{self.name}' cannot be exported at precision '{precision}'. "
                f"Expected one of {list(self.precisions)}."
            )


TARGETS = (
    Target(
        name="savedmodel",
        aliases=("saved_model", "tf", "tensorflow"),
        suffix="_saved_model",
        is_folder=True,
        exporter="edgedet.exporters.saved_model:export",
        requires=("tensorflow",),
        description="TensorFlow SavedModel folder (serving_default signature).",
    ),
    Target(
        name="onnx",
        aliases=(),
        suffix=".onnx",
        is_folder=False,
        exporter="edgedet.exporters.onnx_export:export",
        precisions=("fp32", "int8"),
        requires=("tensorflow", "tf2onnx", "onnx"),
        description="ONNX model (opset 17), dynamic batch and image size.",
        int8_exporter="edgedet.exporters.onnx_int8:export",
        options=("opset",),
    ),
    Target(
        name="tflite",
        aliases=("litert", "lite"),
        suffix=".tflite",
        is_folder=False,
        exporter="edgedet.exporters.tflite:export",
        precisions=("fp32", "int8"),
        requires=("tensorflow",),
        description="TFLite / LiteRT flatbuffer, builtin ops only, resizable input.",
        int8_exporter="edgedet.exporters.tflite_int8:export",
        static_body="TFLite's XNNPACK delegate plans static tensor shapes; a body shape that "
                    "changes with each image leaves it (slow reference kernels, a re-plan "
                    "per size)",
    ),
    Target(
        name="openvino",
        aliases=("ov", "openvino_ir"),
        suffix=".xml",
        is_folder=False,
        exporter="edgedet.exporters.openvino_export:export",
        precisions=("fp32", "int8"),
        requires=("tensorflow", "tf2onnx", "onnx", "openvino"),
        description="OpenVINO IR (.xml + .bin) from the end-to-end ONNX, dynamic batch and "
                    "image size; bf16 on CPUs that have it (x86 CPUs: Intel, AMD).",
        int8_exporter="edgedet.exporters.openvino_int8:export",
        letterbox="rect",
    ),
    Target(
        name="trt",
        aliases=("tensorrt", "engine"),
        suffix=".engine",
        is_folder=False,
        exporter="edgedet.exporters.tensorrt:export",
        precisions=("fp32", "fp16", "int8"),
        needs_gpu=True,
        requires=("tensorrt",),
        description="TensorRT engine, built on the target device (needs a GPU and TensorRT).",
        fallback="edgedet.exporters.tensorrt:export_without_tensorrt",
        static_body="an engine's optimisation profiles fix the ranges of its input shapes at "
                    "build time, and the body's shape is computed inside the graph",
        options=("int8_mode", "shapes", "workspace_mib", "timing_cache", "dla_core",
                 "calib_cache", "trt_version", "model_spec", "calib_data"),
    ),
    Target(
        name="triton",
        aliases=("tritonserver", "triton_repo"),
        suffix="_triton",
        is_folder=True,
        exporter="edgedet.exporters.triton_repo:export",
        requires=("tensorflow", "tf2onnx", "onnx"),
        description="Triton Inference Server model repository around the ONNX "
                    "(plus a tensorrt_plan model when <stem>.engine is beside it).",
        in_all=False,
        static_body="its model may run on a TensorRT plan or ONNX Runtime's TensorRT "
                    "accelerator (fixed optimisation profiles); export --target onnx instead",
        options=("engine", "max_batch_size", "instances", "backend", "accelerator", "fp16",
                 "queue_delay_us", "preferred_batch_sizes", "warmup_sizes", "intra_op_threads"),
    ),
)

_BY_NAME = {name: t for t in TARGETS for name in (t.name, *t.aliases)}
_BUILT_IN = TARGETS


def target_names():
    """Canonical target names, in table order."""
    return [t.name for t in TARGETS]


def precision_names():
    """Every precision some target exports, in table order (`--precision` choices)."""
    return list(dict.fromkeys(p for t in TARGETS for p in t.precisions))


def targets_help():
    """`--target` help: each target's name and description, then `all`."""
    listed = " ".join(f"{t.name}: {t.description}" for t in TARGETS)
    return (f"{listed} Or all (every target this machine can build, "
            f"{', '.join(t.name for t in TARGETS if not t.in_all) or 'none'} aside). "
            "Repeat or comma-separate for several.")


def precisions_help():
    """`--precision` help: which targets export each precision."""
    return " ".join(f"{p}: {', '.join(t.name for t in TARGETS if p in t.precisions)}."
                    for p in precision_names())


def get_target(name):
    """Returns the `Target` called `name` (or one of its aliases).

    Args:
        name: str. Case-insensitive.

    Raises:
        ValueError: unknown name; the message lists the targets and suggests
            the closest one.
    """
    key = str(name).strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise ValueError(
        f"Unknown export target '{name}'. Expected one of {target_names()} (or 'all')."
        + closest(key, list(_BY_NAME))
    )


def buildable_targets():
    """Every target this machine can build, in table order (what `--target all` means).

    Targets with `in_all=False` (the Triton repository) are left out.
    """
    return [t for t in TARGETS if t.in_all and t.unavailable_reason() is None]


def skipped_targets():
    """`(target, reason)` for every `--target all` target this machine cannot build."""
    return [(t, reason) for t in TARGETS
            if t.in_all and (reason := t.unavailable_reason()) is not None]


def resolve_targets(names, allow_fallback=False):
    """Turns `--target` values into `Target`s: aliases resolved, `all` expanded, no duplicates.

    Args:
        names: str or list of str. Target names; `"all"` means
            `buildable_targets()`.
        allow_fallback: bool. Accept a named target this machine cannot
            build when it has a `fallback` (`export` then calls it).
            Defaults to False.

    Returns:
        A list of `Target`, in the order first named.

    Raises:
        ValueError: an unknown name, no names, or a named target this machine
            cannot build (with the reason), unless it has a `fallback` and
            `allow_fallback` is set.
    """
    if isinstance(names, str):
        names = [names]
    names = [n for n in names if str(n).strip()]
    if not names:
        raise ValueError(f"No export target given. Expected some of {target_names()} or 'all'.")
    resolved = []
    for name in names:
        if str(name).strip().lower() == "all":
            targets = buildable_targets()
        else:
            target = get_target(name)
            reason = target.unavailable_reason()
            if reason is not None and not (allow_fallback and target.fallback):
                raise ValueError(
                    f"Target '{target.name}' cannot be built on this machine: it {reason}. "
                    "Build it on the target device."
                )
            targets = [target]
        resolved.extend(t for t in targets if t not in resolved)
    return resolved


def check_letterbox_shape(target, shape):
    """Raises ValueError when `target`'s artifact cannot run a `shape` letterbox body.

    Args:
        target: `Target`.
        shape: str. `LetterboxConfig.shape`: `"square"` fits every target;
            `"rect"` needs a runtime that takes a data-dependent body shape.
    """
    if shape == "rect" and target.static_body:
        rect_ok = [t.name for t in TARGETS if not t.static_body]
        raise ValueError(
            f"Target '{target.name}' cannot take a rect letterbox: {target.static_body}. "
            f"Export it with the square letterbox (--letterbox square), or export a rect "
            f"artifact for one of {rect_ok}."
        )


def default_letterbox(targets):
    """The letterbox shape of an export of `targets` when none is given.

    One end-to-end graph serves every target of an export, so the shape is
    `"rect"` only when every target defaults to it (`Target.letterbox`), and
    `"square"` (which every target takes) otherwise.

    Args:
        targets: list of `Target` (`resolve_targets`).

    Returns:
        `"rect"` or `"square"`.

    Example:

    >>> default_letterbox([get_target("openvino")])
    'rect'
    >>> default_letterbox([get_target("onnx"), get_target("openvino")])
    'square'
    """
    return "rect" if targets and all(t.letterbox == "rect" for t in targets) else "square"


def letterbox_help():
    """`--letterbox` help: which targets take a rect body and which default to it."""
    takes = ", ".join(t.name for t in TARGETS if not t.static_body)
    rect = [t.name for t in TARGETS if t.letterbox == "rect"]
    default = (f"square; export: rect when every target defaults to it ({', '.join(rect)}), "
               "else square (one graph for every target)" if rect else "square")
    return f"rect artifacts: {takes}. Default: {default}."


def register_target(target):
    """Adds an export target to the table (a plugin's or a test's).

    Its artifact also needs a row in `edgedet.runtimes.kinds` (`register_kind`)
    for `info`, `predict`, `parity` and `benchmark` to run it.

    Args:
        target: `Target`. Its name and aliases must be new.

    Returns:
        `target`.

    Raises:
        ValueError: not a `Target`, or a name or alias already taken.
    """
    global TARGETS, _BY_NAME
    if not isinstance(target, Target):
        raise ValueError(f"register_target expects a Target, received {type(target).__name__}.")
    names = [n.lower() for n in (target.name, *target.aliases)]
    taken = [n for n in names if n in _BY_NAME or n == "all"]
    if taken:
        raise ValueError(f"Cannot register target '{target.name}': {taken} already name a "
                         "target (or 'all').")
    TARGETS = (*TARGETS, target)
    _BY_NAME = {name: t for t in TARGETS for name in (t.name, *t.aliases)}
    return target


def unregister_target(name):
    """Removes the target called `name` that `register_target` added.

    Raises:
        ValueError: no registered target is called `name`.
    """
    global TARGETS, _BY_NAME
    target = get_target(name)
    if target in _BUILT_IN:
        raise ValueError(f"Target '{target.name}' is built in; only registered targets can "
                         "be removed.")
    TARGETS = tuple(t for t in TARGETS if t is not target)
    _BY_NAME = {name: t for t in TARGETS for name in (t.name, *t.aliases)}
