"""Tests for edgedet.files: atomic writes and output folders."""

import os

import pytest

from edgedet import files
from edgedet.files import (
    OutputExistsError,
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_text,
    check_writable_output,
)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


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
    assert _listing(target.parent) == ["saved_model"]


def test_output_dir_failure_cleans_up_and_keeps_old(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("keep me")
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
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"):
        with atomic_output_dir(target):
            pytest.fail("the block must not run when the output exists")
    assert _listing(target) == ["old.txt"]
    with atomic_output_dir(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _listing(target) == ["new.txt"]
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
    target.mkdir()
    (target / "old.txt").write_text("old")
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
