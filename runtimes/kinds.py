"""The one table of artifact kinds: how each is recognised, opened and run.

Each row (an `ArtifactKind`) says how a path is recognised (file suffixes, or
a function for folders), which path its runtime opens, the runtime class and
metadata reader (imported only when used), whether it is an exported
artifact or a model, what the benchmark imports and how `--threads` reaches
it, and which Python packages its runtime needs. `runtimes/registry.py`,
`edgedet info`/`predict` and `edgedet benchmark` read this table and keep no
table of their own.

- `savedmodel`: a folder with `saved_model.pb`; `tf_saved_model.SavedModelRuntime`;
  metadata from `assets/edgedet.json`.
- `bundle`: a folder with `reference.json` (parity bundle); `bundle.BundleRuntime`;
  metadata from `reference.json`.
- `onnx`: `.onnx`, or a Triton repository (`<m>/1/model.onnx` + `config.pbtxt`) opened as
  its inner ONNX; `onnxrt.OnnxRuntime`; metadata from `metadata_props`.
- `tflite`: `.tflite`; `litert.LiteRTRuntime`; metadata from the flatbuffer metadata.
- `openvino`: `.xml` (+ `.bin`); `openvino_rt.OpenVINORuntime`; metadata from the `.xml`'s
  `<rt_info>`.
- `keras`: `.keras` (a model, not an artifact); `keras_model.KerasRuntime`; no metadata (the
  model itself).
- `trt`: `.engine` (+ `.engine.json` sidecar); `trt.TensorRTRuntime`; metadata from the
  sidecar.

`--threads`: ONNX Runtime `SessionOptions.intra_op_num_threads`; LiteRT
`Interpreter(num_threads=...)`; OpenVINO `INFERENCE_NUM_THREADS`; TensorFlow/Keras
`tf.config.threading`; not supported for `trt` and `bundle`. Only `keras` has per-stage timing.

One name per artifact kind: a row that runs a target's artifact is called
like the target (`edgedet.exporters.registry`: `savedmodel`, `onnx`,
`tflite`, `openvino`, `trt`; the `triton` target's repository runs as its
inner `onnx`), and takes its file suffix from the target's row, so a suffix
is written once. The runtime names of edgedet 0.1 (`tf_saved_model`,
`onnxrt`, `litert`, in `benchmark.json` schema 1) are still accepted by
`get_kind`, with a `DeprecationWarning` (`RENAMED`).

A plugin (or a test) adds a row with `register_kind` and removes it with
`unregister_kind`; rows added at run time reach the benchmark's measuring
process too (`added_kinds`, `ArtifactKind.to_dict`/`from_dict`).

Example:

```python
from edgedet.runtimes.kinds import ArtifactKind, register_kind

register_kind(ArtifactKind(
    name="toy", description=".toy (ONNX in a toy box)", suffixes=(".toy",),
    runtime="toy_runtime:ToyRuntime", metadata="toy_runtime:read_metadata",
    imports=("onnxruntime",), requires=("onnxruntime",)))
```
"""

import dataclasses
import importlib
import importlib.util
import warnings
from pathlib import Path

from edgedet.exporters.registry import get_target


@dataclasses.dataclass(frozen=True)
class ArtifactKind:
    """One kind of artifact and the runtime that runs it.

    Every callable is a `"module:attribute"` string, imported only when used
    (so the row can travel to another process as JSON).

    Args:
        name: str. The artifact kind recorded in `benchmark.json`
            (`"onnx"`, `"tflite"`, ...): the name of the export target
            whose artifact it runs, where there is one.
        description: str. How the kind is listed in "Supported artifacts"
            error messages.
        suffixes: tuple of str. File-name endings of file artifacts
            (lowercase, with the dot). Defaults to `()`.
        folder: str or None. `"module:function"` telling whether a folder is
            this kind (`function(path) -> bool`). Defaults to None (files only).
        opens: str or None. `"module:function"` returning the path the
            runtime and the metadata reader open for an artifact path (the
            Triton repository opens its inner ONNX). Defaults to None (the
            path itself).
        runtime: str. `"module:Class"` of the runtime (a `runtimes.base.Runtime`).
        metadata: str or None. `"module:function"` reading the
            `ArtifactMetadata` without loading the graph; None for a model
            that carries no artifact metadata (`.keras`). Defaults to None.
        artifact: bool. Whether it is an exported artifact (`edgedet info`
            and `predict` read its metadata) rather than a model. Defaults
            to True.
        imports: tuple of str. Modules its runtime imports (the benchmark
            times them as `runtime_import_seconds`). Defaults to `()`.
        threads: str or None. `"module:function"` turning `--threads N`
            into keyword options for the runtime (`function(n) -> dict`);
            None when the runtime has no thread setting. Defaults to None.
        threads_via: str or None. How `--threads` reaches the runtime, in
            words (`benchmark.json`'s `threads.applied_via`). Defaults to None.
        providers: bool. Whether the runtime takes `providers=` (ONNX
            Runtime execution providers) and exposes its session's
            providers (recorded by the benchmark). Defaults to False.
        stages: bool. Whether per-stage timing is available (it needs the
            Keras model). Defaults to False.
        requires: tuple of str. Python packages (import names) the runtime
            needs; missing ones make it "runtime not installed". Defaults to `()`.
        install: str. How to install them, for error messages. Defaults to `""`.
    """

    name: str
    description: str
    runtime: str
    suffixes: tuple = ()
    folder: str = None
    opens: str = None
    metadata: str = None
    artifact: bool = True
    imports: tuple = ()
    threads: str = None
    threads_via: str = None
    providers: bool = False
    stages: bool = False
    requires: tuple = ()
    install: str = ""

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(
                f"ArtifactKind name must be a non-empty str, received {self.name!r}.")
        if not self.suffixes and not self.folder:
            raise ValueError(f"ArtifactKind '{self.name}' needs `suffixes` or a `folder` rule.")
        for suffix in self.suffixes:
            lowered = isinstance(suffix, str) and suffix == suffix.lower()
            if not (lowered and suffix.startswith(".")):
                raise ValueError(f"ArtifactKind '{self.name}': suffix {suffix!r} must be a "
                                 "lowercase str starting with '.'.")
        for field in ("runtime", "folder", "opens", "metadata", "threads"):
            spec = getattr(self, field)
            if spec is not None and ":" not in spec:
                raise ValueError(f"ArtifactKind '{self.name}': {field} must be "
                                 f"'module:attribute', received {spec!r}.")

    def matches(self, path):
        """Whether `path` is this kind (a folder by `folder`, a file by its suffix)."""
        path = Path(path)
        if path.is_dir():
            return self.folder is not None and bool(load(self.folder)(path))
        return path.name.lower().endswith(self.suffixes) if self.suffixes else False

    def opened_path(self, path):
        """The path its runtime and metadata reader open for the artifact `path`."""
        return load(self.opens)(path) if self.opens else path

    def missing_packages(self):
        """The packages of `requires` not installed here (empty when it can run)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    def to_dict(self):
        """The row as JSON-ready data (`from_dict` reads it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """The row written by `to_dict` (lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def load(spec):
    """Imports `"module:attribute"` and returns the attribute."""
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


# -- folder rules (cheap: no heavy import) -----------------------------------


def is_bundle(path):
    """Whether `path` is a parity bundle folder (has `reference.json`)."""
    return (Path(path) / "reference.json").is_file()


def triton_onnx(path):
    """The one `<model>/1/model.onnx` of a Triton repository folder, else None."""
    found = sorted(Path(path).glob("*/1/model.onnx"))
    found = [f for f in found if (f.parent.parent / "config.pbtxt").is_file()]
    return found[0] if len(found) == 1 else None


def is_triton_repository(path):
    """Whether `path` is a Triton repository edgedet wrote (one `<m>/1/model.onnx`)."""
    return triton_onnx(path) is not None


def onnx_file(path):
    """`path` for an `.onnx` file, the inner ONNX for a Triton repository."""
    return triton_onnx(path) if Path(path).is_dir() else path


_TF_THREADS = "tf.config.threading intra-op and inter-op parallelism threads"
_RUNTIMES = "edgedet.runtimes"

#: Kind names of edgedet 0.1 -> today's (the target names); `get_kind` takes both.
RENAMED = {"tf_saved_model": "savedmodel", "onnxrt": "onnx", "litert": "tflite"}


def _suffixes(target):
    """The artifact suffix of export target `target` (stored once, in the target table)."""
    return (get_target(target).suffix,)


#: The built-in rows, in lookup order.
KINDS = (
    ArtifactKind(
        name="savedmodel",
        description="a SavedModel folder (with saved_model.pb)",
        folder=f"{_RUNTIMES}.tf_saved_model:is_saved_model",
        runtime=f"{_RUNTIMES}.tf_saved_model:SavedModelRuntime",
        metadata=f"{_RUNTIMES}.tf_saved_model:read_metadata",
        imports=("tensorflow",),
        threads=f"{_RUNTIMES}.tf_saved_model:thread_options",
        threads_via=_TF_THREADS,
        requires=("tensorflow",),
        install="pip install edgedet",
    ),
    ArtifactKind(
        name="bundle",
        description="a parity bundle folder (with reference.json)",
        folder=f"{_RUNTIMES}.kinds:is_bundle",
        runtime=f"{_RUNTIMES}.bundle:BundleRuntime",
        metadata=f"{_RUNTIMES}.bundle:read_metadata",
    ),
    ArtifactKind(
        name="onnx",
        description="a Triton repository written by edgedet (<model>/1/model.onnx), .onnx",
        suffixes=_suffixes("onnx"),
        folder=f"{_RUNTIMES}.kinds:is_triton_repository",
        opens=f"{_RUNTIMES}.kinds:onnx_file",
        runtime=f"{_RUNTIMES}.onnxrt:OnnxRuntime",
        metadata=f"{_RUNTIMES}.onnxrt:read_metadata",
        imports=("onnxruntime",),
        threads=f"{_RUNTIMES}.onnxrt:thread_options",
        threads_via="SessionOptions.intra_op_num_threads",
        providers=True,
        requires=("onnxruntime",),
        install="pip install edgedet (or onnxruntime-gpu on the device)",
    ),
    ArtifactKind(
        name="tflite",
        description=".tflite",
        suffixes=_suffixes("tflite"),
        runtime=f"{_RUNTIMES}.litert:LiteRTRuntime",
        metadata=f"{_RUNTIMES}.litert:read_metadata",
        imports=("ai_edge_litert.interpreter",),
        threads=f"{_RUNTIMES}.litert:thread_options",
        threads_via="Interpreter(num_threads=...)",
        requires=("ai_edge_litert",),
        install="pip install ai-edge-litert",
    ),
    ArtifactKind(
        name="openvino",
        description=".xml (OpenVINO IR, .bin beside it)",
        suffixes=_suffixes("openvino"),
        runtime=f"{_RUNTIMES}.openvino_rt:OpenVINORuntime",
        metadata=f"{_RUNTIMES}.openvino_rt:read_metadata",
        imports=("openvino",),
        threads=f"{_RUNTIMES}.openvino_rt:thread_options",
        threads_via="compile_model INFERENCE_NUM_THREADS",
        requires=("openvino",),
        install="pip install 'edgedet[openvino]'",
    ),
    ArtifactKind(
        name="keras",
        description=".keras",
        suffixes=(".keras",),
        runtime=f"{_RUNTIMES}.keras_model:KerasRuntime",
        artifact=False,
        imports=("tensorflow", "edgedet.models"),
        threads=f"{_RUNTIMES}.tf_saved_model:thread_options",
        threads_via=_TF_THREADS,
        stages=True,
        requires=("tensorflow", "keras"),
        install="pip install edgedet",
    ),
    ArtifactKind(
        name="trt",
        description=".engine (TensorRT)",
        suffixes=_suffixes("trt"),
        runtime=f"{_RUNTIMES}.trt:TensorRTRuntime",
        metadata=f"{_RUNTIMES}.trt:read_metadata",
        imports=("tensorrt", "polygraphy.backend.trt"),
        requires=("tensorrt", "polygraphy"),
        install="pip install 'edgedet[gpu]'",
    ),
)

_added = []


def kinds():
    """Every row: the built-in ones, then those added by `register_kind`."""
    return (*KINDS, *_added)


def added_kinds():
    """The rows added by `register_kind`, in the order added."""
    return tuple(_added)


def get_kind(name):
    """The row called `name` (or its edgedet 0.1 name, with a `DeprecationWarning`).

    Raises:
        ValueError: no such kind (listing the known ones).
    """
    if name in RENAMED:
        warnings.warn(f"Artifact kind '{name}' is now called '{RENAMED[name]}' (the export "
                      f"target's name); '{name}' will stop working.", DeprecationWarning,
                      stacklevel=2)
        name = RENAMED[name]
    for kind in kinds():
        if kind.name == name:
            return kind
    raise ValueError(f"Unknown artifact kind '{name}'. Expected one of "
                     f"{[k.name for k in kinds()]}.")


def register_kind(kind):
    """Adds a row to the table (a plugin's or a test's artifact kind).

    Args:
        kind: `ArtifactKind`. Its name and suffixes must be new.

    Returns:
        `kind`.

    Raises:
        ValueError: not an `ArtifactKind`, or its name or a suffix is taken
            (naming the row that has it).
    """
    if not isinstance(kind, ArtifactKind):
        raise ValueError(f"register_kind expects an ArtifactKind, received {type(kind).__name__}.")
    if kind.name in RENAMED:
        raise ValueError(f"Artifact kind '{kind.name}' is the old name of "
                         f"'{RENAMED[kind.name]}'; choose another name.")
    for other in kinds():
        if other.name == kind.name:
            raise ValueError(f"Artifact kind '{kind.name}' is already registered.")
        taken = set(other.suffixes) & set(kind.suffixes)
        if taken:
            raise ValueError(f"Artifact kind '{kind.name}': suffix(es) {sorted(taken)} already "
                             f"belong to '{other.name}'.")
    _added.append(kind)
    return kind


def unregister_kind(name):
    """Removes a row added by `register_kind` (built-in rows stay).

    Raises:
        ValueError: no added row is called `name`.
    """
    for kind in _added:
        if kind.name == name:
            _added.remove(kind)
            return
    raise ValueError(f"No artifact kind '{name}' was added with register_kind "
                     f"(added: {[k.name for k in _added]}).")
