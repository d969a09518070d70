"""SavedModel exporter: a folder with a `serving_default` signature.

The signature takes `images: uint8 [B, H, W, 3]` and returns the contract's
`boxes`, `confidence`, `classes` and `num_detections`. The edgedet metadata
is a plain JSON file, `assets/edgedet.json`, readable without TensorFlow
(`edgedet info`, `edgedet.runtimes.tf_saved_model.read_metadata`).
"""

from pathlib import Path

from edgedet import backend
from edgedet.exporters.base import require_precision, serving_function, stage
from edgedet.files import atomic_output_dir
from edgedet.metadata import METADATA_KEY

TARGET = "savedmodel"
SIGNATURE_KEY = "serving_default"
METADATA_FILE = f"assets/{METADATA_KEY}.json"


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None):
    """Writes `end_to_end` as a SavedModel folder at `path`.

    The folder is built beside `path` and renamed into place, so a failure
    leaves nothing behind.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata` to store in `assets/edgedet.json`.
        path: str or path. The SavedModel folder to create.
        force: bool. Replace an existing `path`. Defaults to False.
        precision: str. Must be `"fp32"` (INT8 has its own exporter).
        session: unused (the exporter signature's INT8 calibration).

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage that failed.
        OutputExistsError: `path` exists and `force` is False.
    """
    require_precision(TARGET, precision)
    tf = backend.tensorflow()

    path = Path(path)
    with stage(TARGET, "trace"):
        function = serving_function(end_to_end)
    with atomic_output_dir(path, force=force) as tmp:
        with stage(TARGET, "save"):
            tf.saved_model.save(
                end_to_end,
                str(tmp),
                signatures={SIGNATURE_KEY: function},
                options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
            )
        with stage(TARGET, "write metadata"):
            metadata_path = tmp / METADATA_FILE
            metadata_path.parent.mkdir(parents=True, exist_ok=True)
            metadata_path.write_text(metadata.to_json(), encoding="utf-8")
    return path
