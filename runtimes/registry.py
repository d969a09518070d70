"""Which runtime runs an artifact, picked from the artifact itself.

| artifact                          | runtime                             |
| --------------------------------- | ----------------------------------- |
| folder with `saved_model.pb`      | `tf_saved_model.SavedModelRuntime`  |
| Triton repository (`<m>/1/model.onnx`) | `onnxrt.OnnxRuntime` on that ONNX |
| `.onnx`                           | `onnxrt.OnnxRuntime`                |
| `.tflite`                         | `litert.LiteRTRuntime`              |
| `.keras`                          | `keras_model.KerasRuntime`          |
| `.engine` (+ `.engine.json`)      | `trt.TensorRTRuntime`               |
| folder with `reference.json`      | `bundle.BundleRuntime` (parity bundle: saved reference detections) |

Example:

```python
from edgedet.runtimes.registry import open_runtime, read_metadata

print(read_metadata("out/model.tflite").class_names)
with open_runtime("out/model.tflite") as runtime:
    detections = runtime.predict(images)
```
"""

import importlib
from pathlib import Path

from edgedet.metadata import MetadataError

# suffix -> (kind, "module:class", "module:read_metadata" or None)
_BY_SUFFIX = {
    ".onnx": ("onnxrt", "edgedet.runtimes.onnxrt:OnnxRuntime", "edgedet.runtimes.onnxrt"),
    ".tflite": ("litert", "edgedet.runtimes.litert:LiteRTRuntime", "edgedet.runtimes.litert"),
    ".keras": ("keras", "edgedet.runtimes.keras_model:KerasRuntime", None),
    ".engine": ("trt", "edgedet.runtimes.trt:TensorRTRuntime", "edgedet.runtimes.trt"),
}
_SAVED_MODEL = (
    "tf_saved_model",
    "edgedet.runtimes.tf_saved_model:SavedModelRuntime",
    "edgedet.runtimes.tf_saved_model",
)
_BUNDLE = ("bundle", "edgedet.runtimes.bundle:BundleRuntime", "edgedet.runtimes.bundle")
SUPPORTED = (
    "a SavedModel folder (with saved_model.pb)",
    "a Triton repository written by edgedet (<model>/1/model.onnx)",
    "a parity bundle folder (with reference.json)",
    ".onnx",
    ".tflite",
    ".keras",
    ".engine (TensorRT)",
)


def runtime_kind(path):
    """The runtime kind for `path` (`"onnxrt"`, `"litert"`, ...).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not an artifact edgedet can run (listing supported kinds).
    """
    return _entry(path)[0]


def _entry(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Artifact '{path}' does not exist.")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _SAVED_MODEL
        if triton_onnx(path) is not None:
            return _BY_SUFFIX[".onnx"]
        if (path / "reference.json").is_file():
            return _BUNDLE
        raise ValueError(
            f"Folder '{path}' is not a SavedModel (no saved_model.pb inside). "
            f"Supported artifacts: {', '.join(SUPPORTED)}."
        )
    entry = _BY_SUFFIX.get(path.suffix.lower())
    if entry is None:
        raise ValueError(
            f"Cannot tell which runtime runs '{path}' (suffix '{path.suffix}'). "
            f"Supported artifacts: {', '.join(SUPPORTED)}."
        )
    if entry[1] is None:
        raise ValueError(
            f"TensorRT runtime not available: edgedet cannot run '{path}' in this version. "
            "Run the .onnx artifact with ONNX Runtime's TensorRT provider instead."
        )
    return entry


def is_artifact_folder(path):
    """Whether `path` is a folder artifact: a SavedModel, a Triton repository or a parity bundle."""
    try:
        return Path(path).is_dir() and _entry(Path(path)) is not None
    except ValueError:
        return False


def triton_onnx(path):
    """The one `<model>/1/model.onnx` of a Triton repository folder, else None."""
    found = sorted(Path(path).glob("*/1/model.onnx"))
    found = [f for f in found if (f.parent.parent / "config.pbtxt").is_file()]
    return found[0] if len(found) == 1 else None


def _artifact_file(path):
    """`path`, or the ONNX inside it when it is a Triton repository."""
    if Path(path).is_dir() and not (Path(path) / "saved_model.pb").is_file():
        return triton_onnx(path) or path
    return path


def _import(spec):
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def open_runtime(path, **options):
    """Returns the (not yet entered) runtime for an artifact.

    Use it as a context manager: `with open_runtime(path) as runtime: ...`.

    Args:
        path: str or path. SavedModel folder, `.onnx`, `.tflite` or `.keras`.
        **options: passed to the runtime class (e.g. `providers=` for ONNX
            Runtime, `num_threads=` for LiteRT).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind (listing the supported kinds).
        MetadataError: the artifact is corrupt or has no edgedet metadata.
    """
    _, class_spec, _ = _entry(path)
    runtime = _import(class_spec)(_artifact_file(path), **options)
    runtime.metadata  # noqa: B018 - a corrupt artifact fails here, not mid-predict.
    return runtime


def read_metadata(path):
    """The `ArtifactMetadata` inside an artifact, without loading its graph.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind.
        MetadataError: the artifact is corrupt or has no edgedet metadata.
    """
    kind, _, reader = _entry(path)
    if reader is None:
        raise MetadataError(
            f"'{path}' is a {kind} model, not an exported artifact: it carries no "
            "edgedet artifact metadata. Use `edgedet info` on the model instead."
        )
    return _import(reader).read_metadata(_artifact_file(path))
