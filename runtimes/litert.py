"""LiteRT (TFLite) runtime: the plain `ai_edge_litert` interpreter.

The input is resizable (`[-1, -1, -1, 3]`): the signature runner resizes it
to each batch's shape before invoking. Metadata is read from the
flatbuffer's `metadata` table (entry `"edgedet"`) with the schema shipped in
`ai_edge_litert`, without TensorFlow.
"""

from pathlib import Path

from edgedet.metadata import METADATA_KEY, ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

SIGNATURE_KEY = "serving_default"


def read_flatbuffer_metadata(content):
    """Returns `{name: bytes}` of a `.tflite` flatbuffer's metadata table.

    Raises:
        ValueError: `content` is not a TFLite flatbuffer.
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(content) < 8 or not schema.Model.ModelBufferHasIdentifier(content, 0):
        raise ValueError("not a TFLite flatbuffer (no 'TFL3' file identifier)")
    try:
        model = schema.Model.GetRootAs(content, 0)
        entries = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # Data stored after the flatbuffer (> 2 GB models).
                data = bytes(content[buffer.Offset(): buffer.Offset() + buffer.Size()])
            else:
                data = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
            entries[entry.Name().decode()] = data
    except Exception as error:  # noqa: BLE001 - a corrupt table raises anything.
        raise ValueError(f"corrupt TFLite flatbuffer ({type(error).__name__}: {error})") from error
    return entries


def thread_options(threads):
    """`LiteRTRuntime` options for `threads` interpreter threads (`--threads`)."""
    return {"num_threads": int(threads)}


def read_metadata(path):
    """Reads the edgedet metadata of a `.tflite` file.

    Raises:
        MetadataError: not a TFLite model, or no edgedet metadata in it.
    """
    path = Path(path)
    content = path.read_bytes()
    try:
        entries = read_flatbuffer_metadata(content)
    except ValueError as error:
        raise MetadataError(f"'{path}' is {error}.") from error
    if METADATA_KEY not in entries:
        raise MetadataError(
            f"TFLite model '{path}' has no edgedet metadata (no '{METADATA_KEY}' entry in "
            f"its metadata table; found {sorted(entries)}). Was it exported by edgedet?"
        )
    return ArtifactMetadata.from_json(entries[METADATA_KEY].decode("utf-8"), source=str(path))


class LiteRTRuntime(Runtime):
    """Runs an edgedet `.tflite` artifact with the LiteRT interpreter.

    Args:
        path: str or path. The `.tflite` file.
        num_threads: int or None. Interpreter threads. Defaults to None
            (LiteRT's default).
        use_xnnpack: bool. Keep LiteRT's default XNNPACK delegate.
            Defaults to True.
    """

    kind = "tflite"

    def __init__(self, path, num_threads=None, use_xnnpack=True):
        super().__init__(Path(path))
        self.num_threads = num_threads
        self.use_xnnpack = use_xnnpack
        self.interpreter = None
        self._runner = None

    def _read_metadata(self):
        return read_metadata(self.path)

    def _load(self):
        from ai_edge_litert import interpreter as litert

        self.metadata  # noqa: B018 - fail early on missing metadata.
        options = {}
        if not self.use_xnnpack:
            options["experimental_op_resolver_type"] = (
                litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        self.interpreter = litert.Interpreter(
            model_path=str(self.path), num_threads=self.num_threads, **options
        )
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE_KEY not in signatures:
            raise MetadataError(
                f"TFLite model '{self.path}' has no '{SIGNATURE_KEY}' signature "
                f"(found {sorted(signatures)})."
            )
        self._runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        (details,) = self._runner.get_input_details().values()
        self._input_signature = [int(d) for d in details["shape_signature"]]

    def _release(self):
        self._runner = None
        self.interpreter = None

    def _infer(self, batch):
        expected = self._input_signature
        if any(e not in (-1, got) for e, got in zip(expected, batch.shape)):
            raise ValueError(
                f"This TFLite model has a fixed input shape {expected} (-1 = any); "
                f"received a batch of shape {list(batch.shape)}."
            )
        return dict(self._runner(images=batch))
