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
  expensive work: the output is new, or `force` was given and replacing it
  is safe; its folder is writable.

What `force` may replace. edgedet only ever replaces what it wrote itself:

- a file at the exact path a command writes (e.g. `out/model.onnx`);
- a folder that edgedet created, which carries the marker file
  `.edgedet-output.json` listing the files it wrote, and holds nothing
  else (a file someone added refuses the replacement, naming it).

Whatever `force` says, it never replaces the root folder, the home folder,
the current folder or a folder holding them, nor a path that is, holds or
lies inside one of the command's inputs (`protected`: the images, the
artifacts under test, the model). Every refusal is an `UnsafeOutputError`
naming the conflict, raised before anything is written.
"""

import contextlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


#: The file that marks a folder as edgedet's own output (see the module doc).
MARKER_NAME = ".edgedet-output.json"
_LISTED_CONFLICTS = 5


class OutputExistsError(FileExistsError):
    """The output path exists and `force` was not given."""


class UnsafeOutputError(OutputExistsError):
    """`force` was given, but replacing the output could destroy what edgedet did not write."""


def printable(text):
    """`text` (a name or path) with control characters and undecodable bytes made visible.

    File names may hold bytes that are not UTF-8 (Python keeps them as lone
    surrogates, which no UTF-8 file can hold) and control characters (which
    XML forbids and terminals obey). Both become backslash escapes, e.g.
    `\\xff` and `\\x1b`, so every report stays valid and readable.

    Args:
        text: str, `os.PathLike` or any object (its `str()`).

    Returns:
        str.
    """
    text = os.fspath(text) if isinstance(text, (str, bytes, os.PathLike)) else str(text)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    # Lone surrogates left (not from a file name) cannot be encoded either.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


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


def check_writable_output(path, force=False, protected=()):
    """Checks that `path` can be written as an output, before any work starts.

    Args:
        path: str or `os.PathLike`. The file or folder to be written.
        force: bool. Whether an existing `path` may be replaced (only when
            that is safe, see the module doc). Defaults to False.
        protected: iterable of str or `os.PathLike`. The command's inputs
            (images, artifacts under test, model): `path` may not replace
            them, a folder holding them, or a folder inside them.
            Defaults to `()`.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        OutputExistsError: `path` exists and `force` is False.
        UnsafeOutputError: `path` exists, `force` is True, but replacing it
            could destroy files edgedet did not write (the message names them).
        NotADirectoryError: a parent of `path` exists but is a file.
        PermissionError: the folder `path` goes into cannot be written.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not force:
            kind = "folder" if path.is_dir() else "file"
            raise OutputExistsError(
                f"Output {kind} '{printable(path)}' already exists. Pass --force to replace it, "
                "or choose another output path."
            )
        check_replaceable(path, protected)
    check_writable_folder(path.parent, output=path)
    return path


def check_writable_folder(folder, output=None):
    """Checks that files can be created in `folder` (or, if missing, that it can be made).

    Args:
        folder: str or `os.PathLike`. The folder outputs go into.
        output: str, path or None. The output, named in the message.
            Defaults to None.

    Raises:
        NotADirectoryError: `folder` or one of its parents is a file.
        PermissionError: the nearest existing folder is not writable.
    """
    folder = Path(folder)
    what = f"Cannot write '{printable(output)}': " if output is not None else ""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise NotADirectoryError(
                    f"{what or f'Cannot write into {printable(folder)!r}: '}"
                    f"'{printable(ancestor)}' is a file, not a folder."
                )
            if not os.access(ancestor, os.W_OK | os.X_OK):
                holds = "" if ancestor == folder else f" (it would hold '{printable(folder)}')"
                raise PermissionError(
                    f"{what}the folder '{printable(ancestor)}' is not writable{holds}. "
                    "Choose another output path or fix its permissions."
                )
            return


def _resolved(path):
    """`path` made absolute with its parents' links resolved (not its own: a link is replaced)."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name if path.name else path.resolve()


def _holds(folder, path):
    return folder == path or folder in path.parents


def check_replaceable(path, protected=()):
    """Raises `UnsafeOutputError` unless `force` may replace the existing `path`.

    See the module doc for the rules.

    Args:
        path: str or `os.PathLike`. An existing output.
        protected: iterable of paths. The command's inputs. Defaults to `()`.
    """
    path = Path(path)
    real = _resolved(path)
    shown = printable(path)
    places = [(label, place.resolve()) for label, place in (
        ("the root folder", Path(real.anchor or "/")), ("your home folder", Path.home()),
        ("the current folder", Path.cwd()))]
    # The folder itself first, so `--out /` says "is the root folder".
    for label, place in sorted(places, key=lambda item: item[1] != real):
        if _holds(real, place):
            what = "is" if real == place else "holds"
            raise UnsafeOutputError(
                f"Refusing to replace '{shown}': it {what} {label} "
                f"('{printable(place)}'). Choose a new output folder.")
    for item in protected:
        if item is None or not isinstance(item, (str, os.PathLike)):
            continue
        if str(item).startswith("synthetic:") or not os.path.lexists(item):
            continue
        other = _resolved(item).resolve() if not os.path.islink(item) else _resolved(item)
        if _holds(real, other) or _holds(other, real):
            relation = ("is" if real == other else "holds" if _holds(real, other)
                        else "lies inside")
            raise UnsafeOutputError(
                f"Refusing to replace '{shown}': it {relation} '{printable(item)}', "
                "an input of this command. Choose another output path.")
    if path.is_dir() and not path.is_symlink():
        marker = read_marker(path)
        held = sorted(printable(f) for f in files_below(path))
        if marker is None:
            raise UnsafeOutputError(
                f"Refusing to replace the folder '{shown}': edgedet did not create it "
                f"(it has no {MARKER_NAME}), so it may hold your files"
                + (f" (it holds {_some(held)})" if held else "") + ". Choose a new output "
                "folder, or empty it yourself.")
        foreign = sorted(set(held) - set(marker["files"]) - {MARKER_NAME})
        if foreign:
            raise UnsafeOutputError(
                f"Refusing to replace the folder '{shown}': it holds files edgedet "
                f"did not write there: {_some(foreign)}. Move them away or choose another output "
                "folder.")


def _some(names):
    """The first few of `names`, printable, and how many more."""
    shown = ", ".join(printable(n) for n in names[:_LISTED_CONFLICTS])
    extra = len(names) - _LISTED_CONFLICTS
    return shown + (f" and {extra} more" if extra > 0 else "")


def files_below(folder):
    """Relative POSIX paths of every file (and link to a folder) under `folder`, at any depth."""
    folder = Path(folder)
    found = []
    for root, dirs, names in os.walk(folder):
        root = Path(root)
        for name in names + [d for d in dirs if (root / d).is_symlink()]:
            found.append((root / name).relative_to(folder).as_posix())
    return found


def read_marker(folder):
    """The marker of an edgedet output folder as a dict, or None if it has none (or a bad one)."""
    marker = Path(folder) / MARKER_NAME
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    data["files"] = [str(f) for f in data["files"]]
    return data


def write_marker(folder):
    """Marks `folder` as edgedet's output, listing every file now in it.

    Args:
        folder: str or `os.PathLike`.

    Returns:
        The marker's path.
    """
    import edgedet

    folder = Path(folder)
    document = {
        "written_by": f"edgedet {edgedet.__version__}",
        "note": "edgedet wrote the files listed here; `--force` may replace this folder "
                "only while it holds nothing else.",
        "files": sorted(printable(f) for f in files_below(folder) if f != MARKER_NAME),
    }
    return atomic_write_text(folder / MARKER_NAME, json.dumps(document, indent=2) + "\n")


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
def atomic_output_dir(path, force=False, protected=()):
    """Builds an output folder in a temporary folder, moved into place on success.

    The temporary folder is created beside `path` (same file system, so the
    final move is a rename). When the `with` block succeeds, the marker
    `.edgedet-output.json` listing its files is added and it becomes `path`;
    an existing `path` is replaced only when `force` and it is safe (see
    `check_replaceable`). When the block raises (or is interrupted), the temporary folder
    is deleted and any existing `path` is left untouched.

    Example:

    ```python
    with atomic_output_dir("out/model_saved_model", force=True) as tmp:
        tf.saved_model.save(module, str(tmp))
    ```

    Args:
        path: str or `os.PathLike`. The final folder.
        force: bool. Replace an existing `path`. Defaults to False.
        protected: iterable of paths. The command's inputs, never replaced
            (see `check_writable_output`). Defaults to `()`.

    Yields:
        The temporary folder, a `pathlib.Path`.

    Raises:
        OutputExistsError: `path` exists and `force` is False (checked both
            before the block runs and again before the move).
        UnsafeOutputError: replacing `path` is not safe (see the module doc).
    """
    path = check_writable_output(path, force, protected)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        write_marker(tmp)
        check_writable_output(path, force, protected)  # Something may have appeared meanwhile.
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
