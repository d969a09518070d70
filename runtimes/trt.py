"""TensorRT runtime: runs an edgedet `.engine` through the same `predict` interface.

The engine is a plain serialized TensorRT engine; its metadata is the
sidecar `<engine>.json` written by `edgedet.exporters.tensorrt` (edgedet
metadata with a `tensorrt` entry: version, GPU, compute capability,
profile). Before deserializing, the runtime compares the engine's TensorRT
version and compute capability with this machine's and refuses a mismatch
with a message saying how to rebuild: TensorRT itself would only log
"Version tag does not match" and return nothing.

Execution uses Polygraphy's `TrtRunner` (buffers, shapes, data-dependent
outputs, `execute_async_v3`). TensorRT and Polygraphy are imported on
`__enter__` only.

Example:

```python
from edgedet.runtimes.trt import TensorRTRuntime

with TensorRTRuntime("out/model.engine") as runtime:
    detections = runtime.predict([image])
```
"""

import json
from pathlib import Path

import numpy as np

from edgedet import cuda
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

SIDECAR_SUFFIX = ".json"
INPUT_NAME = "images"


class TensorRTVersionError(ValueError):
    """The engine was built by another TensorRT version or for another GPU."""


def sidecar_path(engine_path):
    """`model.engine` -> `model.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def read_sidecar(path):
    """The sidecar JSON of an engine, as a dict.

    Raises:
        MetadataError: missing or unreadable sidecar.
    """
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise MetadataError(
            f"TensorRT engine '{path}' has no sidecar '{sidecar.name}' next to it: edgedet "
            "needs it for the class names, settings and the TensorRT version the engine was "
            "built with. Rebuild with `edgedet export --target trt`, or copy the JSON along."
        )
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        raise MetadataError(f"Cannot read '{sidecar}': {error}") from error


def read_metadata(path):
    """The `ArtifactMetadata` of an engine (from its sidecar JSON)."""
    return ArtifactMetadata.from_dict(read_sidecar(path), source=str(sidecar_path(path)))


def check_compatible(facts, installed_version, device, path="engine"):
    """Raises `TensorRTVersionError` when an engine cannot run here.

    Args:
        facts: dict. The sidecar's `extra["tensorrt"]`.
        installed_version: str. `tensorrt.__version__` here.
        device: dict or None. `edgedet.cuda.cuda_device()` here.
        path: str. The engine, for the message.
    """
    built = facts.get("version")
    rebuild = (
        "Engines only run with the TensorRT version and GPU they were built for: rebuild it on "
        "this machine (`edgedet export --target trt ...`, or the trtexec line printed at export)."
    )
    if built and _release(built) != _release(installed_version):
        raise TensorRTVersionError(
            f"'{path}' was built with TensorRT {built}; this machine has TensorRT "
            f"{installed_version}. {rebuild}"
        )
    wanted = facts.get("compute_capability")
    if wanted and device and device.get("compute_capability") != wanted:
        raise TensorRTVersionError(
            f"'{path}' was built for a GPU of compute capability {wanted} "
            f"({facts.get('gpu')}); this GPU ({device.get('name')}) is "
            f"{device.get('compute_capability')}. {rebuild}"
        )


def _release(version):
    """`"10.3.0.26"` -> `"10.3.0"`: builds of one release share the engine format."""
    return ".".join(str(version).split(".")[:3])


class TensorRTRuntime(Runtime):
    """Runs an edgedet TensorRT engine.

    Args:
        path: str or path. The `.engine` file (its `.engine.json` next to it).
    """

    kind = "trt"

    def __init__(self, path):
        super().__init__(Path(path))
        self._engine = None
        self._runner = None
        self._input_dtype = np.uint8
        self._profile = None

    def _read_metadata(self):
        return read_metadata(self.path)

    def _load(self):
        try:
            import tensorrt as trt
            from polygraphy.backend.trt import TrtRunner
        except ImportError as error:
            raise ImportError(
                f"Running '{self.path}' needs TensorRT and Polygraphy "
                f"(pip install 'edgedet[gpu]'): {error}"
            ) from error
        facts = self.metadata.extra.get("tensorrt", {})
        check_compatible(facts, trt.__version__, cuda.cuda_device(), self.path)
        logger = trt.Logger(trt.Logger.WARNING)
        engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise TensorRTVersionError(
                f"TensorRT {trt.__version__} could not deserialize '{self.path}' (see its log "
                "above): the engine was built by another TensorRT version or for another GPU, "
                "or the file is damaged. Rebuild it on this machine."
            )
        self._engine = engine
        self._input_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME)))
        self._profile = [tuple(s) for s in engine.get_tensor_profile_shape(INPUT_NAME, 0)]
        self._runner = TrtRunner(engine)
        self._runner.activate()

    def _release(self):
        if self._runner is not None:
            self._runner.deactivate()
        self._runner = None
        self._engine = None

    def _infer(self, batch):
        check_profile(batch.shape, self._profile, self.path)
        feed = {INPUT_NAME: np.ascontiguousarray(batch.astype(self._input_dtype, copy=False))}
        outputs = self._runner.infer(feed)
        return {name: np.asarray(value) for name, value in outputs.items()}


def check_profile(shape, profile, path="engine"):
    """Raises ValueError when an input shape is outside the engine's optimization profile.

    Args:
        shape: `(B, H, W, 3)`.
        profile: `[min, opt, max]` shapes, or None (not checked).
    """
    if not profile:
        return
    minimum, _, maximum = profile
    if any(not (lo <= v <= hi) for v, lo, hi in zip(shape, minimum, maximum)):
        raise ValueError(
            f"Input of shape {tuple(shape)} is outside the optimization profile of '{path}' "
            f"(min {tuple(minimum)}, max {tuple(maximum)}). Resize the image, or rebuild the "
            "engine with a wider profile (--trt-shapes)."
        )
