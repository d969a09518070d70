"""ONNX Runtime runtime.

Execution providers are picked from those installed, in the order
TensorRT, CUDA, CPU, unless given explicitly.
"""

import warnings
from pathlib import Path

from edgedet.metadata import METADATA_KEY, ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)


def default_providers():
    """Installed providers among `PREFERRED_PROVIDERS`, in that order."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in available]


def thread_options(threads):
    """`OnnxRuntime` options for `threads` intra-op threads (`--threads`)."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = int(threads)
    return {"session_options": session_options}


def read_metadata(path):
    """Reads `metadata_props["edgedet"]` of an `.onnx` file (weights are not loaded).

    Raises:
        MetadataError: the file is not a valid ONNX model or has no edgedet metadata.
    """
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - protobuf raises several types.
        raise MetadataError(
            f"'{path}' is not a valid ONNX model ({type(error).__name__}: {error})."
        ) from error
    check_external_data(model, path)
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise MetadataError(
            f"ONNX model '{path}' has no edgedet metadata (metadata_props['{METADATA_KEY}'] "
            f"is missing; keys found: {sorted(props)}). Was it exported by edgedet?"
        )
    return ArtifactMetadata.from_json(props[METADATA_KEY], source=str(path))


def check_external_data(model, path):
    """Refuses external weights (beside the `.onnx`) that ONNX Runtime will not load.

    ONNX Runtime reads external data only from the model's own folder: a
    location that leaves it ("External data path validation failed") or a
    file that is not there fails every command, so it is said here, when the
    file is first read (`info` included), naming the tensor and the file.
    Only the graph's initializers are looked at (where exporters put external
    data); the runtime checks the rest when it loads.

    Args:
        model: `onnx.ModelProto`, loaded without its external data.
        path: path. The `.onnx` file.

    Raises:
        MetadataError: a location outside the model's folder, or a missing file.
    """
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = Path(path).parent.resolve()
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        resolved = (folder / location).resolve()
        if not resolved.is_relative_to(folder):
            raise MetadataError(
                f"ONNX model '{path}' keeps tensor '{tensor.name}' in '{location}', outside "
                f"the model's folder: ONNX Runtime refuses that (\"External data path "
                f"validation failed\"). Put the data file next to the .onnx and save the "
                f"model with a plain file name as its location.")
        if not resolved.is_file():
            raise MetadataError(
                f"ONNX model '{path}' keeps tensor '{tensor.name}' in '{location}', which is "
                f"not there: copy that file next to the .onnx as well.")


class OnnxRuntime(Runtime):
    """Runs an edgedet `.onnx` artifact with ONNX Runtime.

    Args:
        path: str or path. The `.onnx` file.
        providers: list of str or None. Execution providers, in priority
            order. Defaults to the installed ones among TensorRT, CUDA, CPU.
        session_options: `onnxruntime.SessionOptions` or None. Defaults to None.
    """

    kind = "onnx"

    def __init__(self, path, providers=None, session_options=None):
        super().__init__(Path(path))
        self.providers = list(providers) if providers is not None else None
        self.session_options = session_options
        self.session = None

    def _read_metadata(self):
        return read_metadata(self.path)

    def _load(self):
        import onnxruntime as ort

        self.metadata  # noqa: B018 - fail early on missing metadata.
        providers = self.providers if self.providers is not None else default_providers()
        available = ort.get_available_providers()
        unknown = [p for p in providers if p not in available]
        if unknown:
            raise ValueError(
                f"ONNX Runtime providers {unknown} are not available. Installed: {available}."
            )
        self.session = ort.InferenceSession(
            str(self.path), sess_options=self.session_options, providers=providers
        )
        self._output_names = [o.name for o in self.session.get_outputs()]
        if self.session.get_providers()[0] == "CPUExecutionProvider":
            from edgedet.cpu import saturation_warning

            warning = saturation_warning(self.metadata.extra.get("quantization"))
            if warning:
                warnings.warn(f"'{self.path.name}': {warning}", stacklevel=2)

    def _release(self):
        self.session = None

    def _infer(self, batch):
        values = self.session.run(self._output_names, {"images": batch})
        return dict(zip(self._output_names, values))
