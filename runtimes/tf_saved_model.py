"""TensorFlow SavedModel runtime: the `serving_default` signature."""

from pathlib import Path

from edgedet import backend
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

SIGNATURE_KEY = "serving_default"
METADATA_FILE = "assets/edgedet.json"


def is_saved_model(path):
    """True for a folder holding a `saved_model.pb`."""
    return (Path(path) / "saved_model.pb").is_file()


def thread_options(threads):
    """Sets TensorFlow's intra- and inter-op threads to `threads` (`--threads`); returns `{}`.

    Must run before TensorFlow creates its thread pools (its first op).
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    return {}


def read_metadata(path):
    """Reads `assets/edgedet.json` of a SavedModel folder (no TensorFlow needed).

    Raises:
        MetadataError: the folder is not a SavedModel or has no edgedet metadata.
    """
    path = Path(path)
    if not is_saved_model(path):
        raise MetadataError(f"'{path}' is not a SavedModel folder (no saved_model.pb).")
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        raise MetadataError(
            f"SavedModel '{path}' has no edgedet metadata ({METADATA_FILE} is missing). "
            "Was it exported by edgedet? Re-export it with `edgedet export`."
        )
    return ArtifactMetadata.from_json(
        metadata_path.read_text(encoding="utf-8"), source=str(metadata_path)
    )


class SavedModelRuntime(Runtime):
    """Runs an edgedet SavedModel with TensorFlow.

    Args:
        path: str or path. The SavedModel folder.
    """

    kind = "savedmodel"

    def __init__(self, path):
        super().__init__(Path(path))
        self._function = None

    def _read_metadata(self):
        return read_metadata(self.path)

    def _load(self):
        tf = backend.tensorflow()

        self.metadata  # noqa: B018 - fail early on missing metadata.
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as error:  # noqa: BLE001 - re-raised with the path.
            raise MetadataError(
                f"Cannot load SavedModel '{self.path}': {type(error).__name__}: {error}"
            ) from error
        if SIGNATURE_KEY not in loaded.signatures:
            raise MetadataError(
                f"SavedModel '{self.path}' has no '{SIGNATURE_KEY}' signature "
                f"(found {sorted(loaded.signatures)})."
            )
        self._loaded_object = loaded
        self._function = loaded.signatures[SIGNATURE_KEY]

    def _release(self):
        self._function = None
        self._loaded_object = None

    def _infer(self, batch):
        tf = backend.tensorflow()

        outputs = self._function(images=tf.constant(batch))
        return {name: value.numpy() for name, value in outputs.items()}
