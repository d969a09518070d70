"""Tests for edgedet.files: atomic writes and output folders."""

import os
from pathlib import Path

import pytest

from edgedet import files
from edgedet.files import (
    MARKER_NAME,
    OutputExistsError,
    UnsafeOutputError,
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_text,
    check_writable_output,
)


def _listing(folder):
    """The folder's entries, edgedet's marker aside."""
    return sorted(p.name for p in folder.iterdir() if p.name != MARKER_NAME)


def test_atomic_write_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    assert atomic_write_text(target, "héllo\n") == target
    assert target.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _listing(target.parent) == ["out.txt"]


def test_atomic_write_mode_follows_umask_and_existing_file(tmp_path):
    target = tmp_path / "new.bin"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"y")
    assert target.stat().st_mode & 0o777 == 0o640


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["report.json"]


def test_atomic_write_failure_while_writing(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError("no space left")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="no space left"):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert _listing(tmp_path) == []


def test_atomic_write_rejects_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="Expected bytes"):
        atomic_write_bytes(tmp_path / "x", "text")
    with pytest.raises(TypeError, match="Expected str"):
        atomic_write_text(tmp_path / "x", b"bytes")
    assert _listing(tmp_path) == []


def test_check_writable_output(tmp_path):
    fresh = tmp_path / "sub" / "model.onnx"
    assert check_writable_output(fresh) == fresh
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"x")
    with pytest.raises(OutputExistsError) as info:
        check_writable_output(existing)
    assert str(existing) in str(info.value) and "--force" in str(info.value)
    assert isinstance(info.value, FileExistsError)
    assert check_writable_output(existing, force=True) == existing
    folder = tmp_path / "saved"
    folder.mkdir()
    with pytest.raises(OutputExistsError, match="Output folder"):
        check_writable_output(folder)


def test_parent_that_is_a_file(tmp_path):
    blocker = tmp_path / "notadir"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match="'.*notadir' is a file, not a folder"):
        check_writable_output(blocker / "deeper" / "out.onnx")
    with pytest.raises(NotADirectoryError):
        with atomic_output_dir(blocker / "out"):
            pass


def test_output_dir_success(tmp_path):
    target = tmp_path / "nested" / "saved_model"
    with atomic_output_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.is_dir() and not target.exists()
        (tmp / "saved_model.pb").write_bytes(b"pb")
        (tmp / "variables").mkdir()
    assert _listing(target) == ["saved_model.pb", "variables"]
    assert files.read_marker(target)["files"] == ["saved_model.pb"]
    assert _listing(target.parent) == ["saved_model"]


def test_output_dir_failure_cleans_up_and_keeps_old(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "old.txt").write_text("keep me")
    with pytest.raises(RuntimeError, match="export failed"):
        with atomic_output_dir(target, force=True) as tmp:
            (tmp / "partial.bin").write_bytes(b"half")
            raise RuntimeError("export failed")
    assert _listing(target) == ["old.txt"]
    assert _listing(tmp_path) == ["out"]


def test_output_dir_interrupt_cleans_up(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(target) as tmp:
            (tmp / "partial.bin").write_bytes(b"half")
            raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_output_dir_force_semantics(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"):
        with atomic_output_dir(target):
            pytest.fail("the block must not run when the output exists")
    assert _listing(target) == ["old.txt"]
    with atomic_output_dir(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _listing(target) == ["new.txt"]
    assert files.read_marker(target)["files"] == ["new.txt"]
    assert _listing(tmp_path) == ["out"]
    # A file in the way is replaced too, with force.
    as_file = tmp_path / "engine"
    as_file.write_text("file")
    with atomic_output_dir(as_file, force=True) as tmp:
        (tmp / "a").write_text("a")
    assert as_file.is_dir() and _listing(as_file) == ["a"]


def test_output_dir_appearing_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(OutputExistsError):
        with atomic_output_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert _listing(target) == ["theirs.txt"]
    assert _listing(tmp_path) == ["out"]


def test_output_dir_failed_final_move_restores_old(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "old.txt").write_text("old")
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # 1: old output aside, 2: new output into place
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_output_dir(target, force=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert _listing(target) == ["old.txt"]
    assert _listing(tmp_path) == ["out"]


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_force_never_replaces_a_folder_edgedet_did_not_create(tmp_path):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"jpeg")
    before = _tree(tmp_path)
    with pytest.raises(UnsafeOutputError, match=f"edgedet did not create it .*{MARKER_NAME}"):
        with atomic_output_dir(target, force=True):
            pytest.fail("the block must not run")
    assert _tree(tmp_path) == before
    assert isinstance(UnsafeOutputError("x"), FileExistsError)


def test_force_refuses_an_edgedet_folder_holding_a_user_file(tmp_path):
    target = tmp_path / "proj" / "parity"
    with atomic_output_dir(target) as tmp:
        (tmp / "report.html").write_text("old report")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.png").write_bytes(b"png")
    assert files.read_marker(target)["files"] == ["report.html", "sub/a.png"]
    (target / "NOTES.md").write_text("mine")
    (target / "sub" / "b.txt").write_text("mine too")
    with pytest.raises(UnsafeOutputError) as info:
        check_writable_output(target, force=True)
    assert "NOTES.md" in str(info.value) and "sub/b.txt" in str(info.value)
    with pytest.raises(UnsafeOutputError):
        with atomic_output_dir(target, force=True):
            pytest.fail("the block must not run")
    assert (target / "NOTES.md").read_text() == "mine"
    assert (target / "report.html").read_text() == "old report"


def test_force_refuses_inputs_and_folders_around_them(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "shapes.onnx").write_bytes(b"onnx")
    artifact = out / "shapes.onnx"
    # The folder holds an artifact under test; the artifact itself; a folder inside an input.
    for path, protected, words in [
        (out, [artifact], "holds"),
        (artifact, [artifact], "is '"),
        (out, [tmp_path], "lies inside"),
    ]:
        with pytest.raises(UnsafeOutputError, match=words):
            check_writable_output(path, force=True, protected=protected)
    assert artifact.read_bytes() == b"onnx"
    # Unrelated inputs and synthetic specs do not block it.
    other = tmp_path / "images"
    other.mkdir()
    check_writable_output(out, force=True, protected=[other, "synthetic:shapes?n=2", None])


@pytest.mark.parametrize("place", ["cwd", "home", "root"])
def test_force_refuses_home_root_and_current_folder(tmp_path, monkeypatch, place):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "projects" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    target = {"cwd": Path("."), "home": home, "root": Path("/")}[place]
    label = {"cwd": "the current folder", "home": "your home folder", "root": "the root folder"}
    with pytest.raises(UnsafeOutputError, match=label[place]):
        check_writable_output(target, force=True)
    # A parent of the current folder is refused as well.
    with pytest.raises(UnsafeOutputError, match="holds the current folder"):
        check_writable_output(tmp_path / "projects", force=True)
    assert (home / "thesis.tex").read_text() == "years of work"


def test_unwritable_folder_is_named_before_any_work(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write into any folder, so permissions cannot be tested as root")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        with pytest.raises(PermissionError, match="the folder '.*locked' is not writable"):
            check_writable_output(locked / "out" / "model.onnx")
    finally:
        os.chmod(locked, 0o700)


def test_unwritable_folder_check_with_mocked_access(tmp_path, monkeypatch):
    # Root can write anywhere, so the permission answer itself is mocked here
    # (only `os.access`); the check and its message are the real ones.
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != locked)
    with pytest.raises(PermissionError) as info:
        check_writable_output(locked / "out" / "model.onnx")
    message = str(info.value)
    assert f"the folder '{locked}' is not writable" in message and ".tmp" not in message
    assert not (locked / "out").exists()


def test_printable_names():
    assert files.printable(os.fsdecode(b"latin1_\xff\xfe.png")) == "latin1_\\xff\\xfe.png"
    assert files.printable("a\x1bb\tc.png") == "a\\x1bb\\tc.png"
    assert files.printable("caf\u00e9 &lt;1&gt;.png") == "caf\u00e9 &lt;1&gt;.png"
