"""Which runtime runs an artifact, looked up in the table of artifact kinds.

The rows (suffixes, folder rules, runtime class, metadata reader) live in
`edgedet.runtimes.kinds`; this module answers questions about a path with
them.

Example:

```python
from edgedet.runtimes.registry import open_runtime, read_metadata

print(read_metadata("out/model.tflite").class_names)
with open_runtime("out/model.tflite") as runtime:
    detections = runtime.predict(images)
```
"""

from pathlib import Path

from edgedet.metadata import MetadataError
from edgedet.runtimes.kinds import kinds, load


class RuntimeNotInstalledError(ImportError):
    """The Python packages an artifact kind's runtime needs are not installed here."""


def supported():
    """Every kind's description, in table order (for "Supported artifacts" messages)."""
    return [kind.description for kind in kinds()]


def find_kind(path):
    """The `ArtifactKind` of `path`, or None when no row recognises it.

    A folder is recognised by the rows' folder rules (it must exist); a file
    by its suffix (it need not exist yet).
    """
    for kind in kinds():
        if kind.matches(path):
            return kind
    return None


def artifact_kind(path):
    """The `ArtifactKind` of an existing `path`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not an artifact edgedet can run (listing supported kinds).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Artifact '{path}' does not exist.")
    kind = find_kind(path)
    if kind is not None:
        return kind
    if path.is_dir():
        raise ValueError(
            f"Folder '{path}' is not a SavedModel (no saved_model.pb inside) nor another folder "
            f"artifact. Supported artifacts: {', '.join(supported())}."
        )
    raise ValueError(
        f"Cannot tell which runtime runs '{path}' (suffix '{path.suffix}'). "
        f"Supported artifacts: {', '.join(supported())}."
    )


def runtime_kind(path):
    """The runtime kind for `path` (`"onnx"`, `"tflite"`, ...).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not an artifact edgedet can run (listing supported kinds).
    """
    return artifact_kind(path).name


def check_installed(path):
    """Raises `RuntimeNotInstalledError` when the runtime for `path` cannot run here.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind.
        RuntimeNotInstalledError: packages its kind `requires` are missing
            (naming them and how to install them).
    """
    kind = artifact_kind(path)
    missing = kind.missing_packages()
    if missing:
        hint = f" ({kind.install})" if kind.install else ""
        raise RuntimeNotInstalledError(
            f"Running '{path}' ({kind.name}) needs the Python package(s) {missing}, not "
            f"installed here{hint}."
        )


def open_runtime(path, **options):
    """Returns the (not yet entered) runtime for an artifact.

    Use it as a context manager: `with open_runtime(path) as runtime: ...`.

    Args:
        path: str or path. An artifact of a kind in `edgedet.runtimes.kinds`
            (SavedModel folder, `.onnx`, `.tflite`, `.keras`, ...).
        **options: passed to the runtime class (e.g. `providers=` for ONNX
            Runtime, `num_threads=` for LiteRT).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind (listing the supported kinds).
        MetadataError: the artifact is corrupt or has no edgedet metadata.
    """
    kind = artifact_kind(path)
    runtime = load(kind.runtime)(kind.opened_path(path), **options)
    runtime.metadata  # noqa: B018 - a corrupt artifact fails here, not mid-predict.
    return runtime


def read_metadata(path):
    """The `ArtifactMetadata` inside an artifact, without loading its graph.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind.
        MetadataError: the artifact is corrupt or has no edgedet metadata.
    """
    kind = artifact_kind(path)
    if kind.metadata is None:
        raise MetadataError(
            f"'{path}' is a {kind.name} model, not an exported artifact: it carries no "
            "edgedet artifact metadata. Use `edgedet info` on the model instead."
        )
    return load(kind.metadata)(kind.opened_path(path))


def thread_options(kind, threads):
    """Runtime keyword options that make `kind`'s runtime use `threads` threads.

    Raises:
        ValueError: the kind has no thread setting.
    """
    if kind.threads is None:
        raise ValueError(f"--threads is not supported for runtime kind '{kind.name}'.")
    return load(kind.threads)(int(threads))
