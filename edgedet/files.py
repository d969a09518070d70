"""Atomic file and folder output.

Every artifact, report and image edgedet writes goes through these helpers,
so an interrupted or failed command never leaves a half-written file or
folder where a good one is expected, and never destroys an existing output
unless asked to (`force`, the CLI's `--force`).

- `atomic_write_bytes` / `atomic_write_text`: write a temporary file in the
  destination folder, fsync it, then `os.replace` it over the destination.
- `atomic_output_dir`: build a whole folder (e.g. a SavedModel) in a
  temporary folder beside the destination and move it into place on success.
- `check_writable_output`: the early check a command runs before doing any
  expensive work.
"""

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


class OutputExistsError(FileExistsError):
    """The output path exists and `force` was not given."""


def _umask():
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _fsync_dir(folder):
    """Makes a rename in `folder` durable (best effort; not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable_output(path, force=False):
    """Checks that `path` can be written as an output, before any work starts.

    Args:
        path: str or `os.PathLike`. The file or folder to be written.
        force: bool. Whether an existing `path` may be replaced.
            Defaults to False.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        OutputExistsError: `path` exists and `force` is False.
        NotADirectoryError: a parent of `path` exists but is a file.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not force:
            kind = "folder" if path.is_dir() else "file"
            raise OutputExistsError(
                f"Output {kind} '{path}' already exists. Pass --force to replace it, "
                "or choose another output path."
            )
    parent = path.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise NotADirectoryError(
                    f"Cannot write '{path}': '{ancestor}' is a file, not a folder."
                )
            break
    return path


def _write_temp(path, data):
    """Writes `data` to a temp file beside `path`; returns the temp path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would.
        mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path, data):
    """Writes `data` to `path` atomically: readers see the old or the new file.

    The data goes to a temporary file in the same folder (created, with its
    parents, if missing), is fsynced, then replaces `path` with `os.replace`.
    On any error the temporary file is removed and `path` is untouched.

    Args:
        path: str or `os.PathLike`. Destination file.
        data: bytes-like. The content.

    Returns:
        `path` as a `pathlib.Path`.
    """
    path = Path(path)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"Expected bytes for '{path}', received {type(data).__name__}.")
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path, text, encoding="utf-8"):
    """Writes `text` to `path` atomically (see `atomic_write_bytes`).

    Args:
        path: str or `os.PathLike`. Destination file.
        text: str. The content; newlines are written as given.
        encoding: str. Defaults to `"utf-8"`.

    Returns:
        `path` as a `pathlib.Path`.
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected str for '{path}', received {type(text).__name__}.")
    return atomic_write_bytes(path, text.encode(encoding))


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_output_dir(path, force=False):
    """Builds an output folder in a temporary folder, moved into place on success.

    The temporary folder is created beside `path` (same file system, so the
    final move is a rename). When the `with` block succeeds it becomes
    `path`; an existing `path` (file or folder) is replaced only when
    `force`. When the block raises (or is interrupted), the temporary folder
    is deleted and any existing `path` is left untouched.

    Example:

    ```python
    with atomic_output_dir("out/model_saved_model", force=True) as tmp:
        tf.saved_model.save(module, str(tmp))
    ```

    Args:
        path: str or `os.PathLike`. The final folder.
        force: bool. Replace an existing `path`. Defaults to False.

    Yields:
        The temporary folder, a `pathlib.Path`.

    Raises:
        OutputExistsError: `path` exists and `force` is False (checked both
            before the block runs and again before the move).
    """
    path = check_writable_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        check_writable_output(path, force)  # Something may have appeared meanwhile.
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.rmdir(old)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
        if old is not None:
            _remove(old)
        _fsync_dir(path.parent)
    finally:
        _remove(tmp)
