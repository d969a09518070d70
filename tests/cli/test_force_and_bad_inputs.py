"""What `--force` may replace, and a bad image among good ones, from the command line.

Every case uses real folders holding a user's files; after a refusal the
test checks that every file is still there, unchanged.
"""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgedet.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _photo(path, seed=0, size=(40, 56)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def photos(tmp_path):
    """A user's folder: two photos and a notes file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png", 0)
    _photo(folder / "b.png", 1)
    (folder / "notes.txt").write_text("do not lose me")
    return folder


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_predict_force_never_replaces_its_input_folder(tiny_model_file, photos):
    before = _snapshot(photos)
    result = run("predict", "--model", tiny_model_file, photos, "--out", photos, "--force")
    assert result.exit_code == 1, result.output
    assert "Refusing to replace" in result.output and "an input of this command" in result.output
    assert _snapshot(photos) == before


def test_predict_force_never_replaces_the_home_folder(tiny_model_file, photos, tmp_path,
                                                      monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PATH")
    (home / "thesis.tex").write_text("years of work")
    monkeypatch.setenv("HOME", str(home))
    before = _snapshot(home)
    result = run("predict", "--model", tiny_model_file, photos / "a.png", "--out", home,
                 "--force")
    assert result.exit_code == 1, result.output
    assert "your home folder" in result.output
    assert _snapshot(home) == before


@pytest.mark.parametrize("out, words", [(".", "is the current folder"),
                                        ("/", "is the root folder")])
def test_predict_force_refuses_root_and_current_folder(tiny_model_file, photos, tmp_path,
                                                       monkeypatch, out, words):
    work = tmp_path / "work"
    work.mkdir()
    (work / "project.py").write_text("print('mine')")
    monkeypatch.chdir(work)
    result = run("predict", "--model", tiny_model_file, photos / "a.png", "--out", out, "--force")
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output
    assert _snapshot(work) == {"project.py": b"print('mine')"}


def test_predict_one_bad_image_is_reported_and_the_rest_written(tiny_model_file, photos,
                                                                tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    os.rename(os.fsencode(photos / "b.png"), os.fsencode(photos) + b"/caf\xe9\x1b.png")
    out = tmp_path / "preds"
    result = run("predict", "--model", tiny_model_file, photos, "--out", out)
    assert result.exit_code == 3, result.output  # Some inputs failed; the rest were written.
    assert "FAILED" in result.output and "broken.jpg" in result.output
    assert "2 image(s)" in result.output
    written = sorted(p.name for p in out.iterdir())
    # Output names come from escaped names (`\\` becomes `_`): always valid file names.
    assert written == [".edgedet-output.json", "a.json", "a.png", "caf_xe9_x1b.json",
                       "caf_xe9_x1b.png", "failures.json"]
    failures = json.loads((out / "failures.json").read_text())
    assert failures["failed"] == 1 and failures["processed"] == 2
    (failure,) = failures["images"]
    assert failure["image"].endswith("broken.jpg") and "Cannot read" in failure["reason"]
    odd = json.loads((out / "caf_xe9_x1b.json").read_text())
    assert odd["image"].endswith("caf\\xe9\\x1b.png")  # Escaped, never a crash.
    assert "3 some images could not be read" in " ".join(run("predict", "--help").output.split())


def test_predict_only_bad_images_writes_nothing(tiny_model_file, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    result = run("predict", "--model", tiny_model_file, folder, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "None of the 1 image(s) could be read" in result.output
    assert not (tmp_path / "out").exists()


def test_export_adds_a_target_and_rechecks_parity_and_keeps_user_files(tiny_model_file,
                                                                       tmp_path):
    proj = tmp_path / "proj"
    images = "synthetic:shapes?n=2&size=64"
    result = run("export", "--model", tiny_model_file, "--target", "onnx", "--out", proj,
                 "--no-parity")
    assert result.exit_code == 0, result.output
    # A user's note in the report folder: the export stops before any work, even with --force.
    (proj / "parity").mkdir()
    (proj / "parity" / "NOTES.md").write_text("my notes")
    before = _snapshot(proj)
    result = run("export", "--model", tiny_model_file, "--target", "tflite", "--out", proj,
                 "--parity-images", images, "--force")
    assert result.exit_code == 1, result.output
    assert "NOTES.md" in result.output and "Refusing to replace" in result.output
    assert _snapshot(proj) == before and not (proj / "tiny.tflite").exists()
    # Without the note, adding TFLite works without --force and parity covers both artifacts.
    (proj / "parity" / "NOTES.md").unlink()
    (proj / "parity").rmdir()
    onnx_bytes = (proj / "tiny.onnx").read_bytes()
    result = run("export", "--model", tiny_model_file, "--target", "tflite", "--out", proj,
                 "--parity-images", images)
    assert (proj / "tiny.onnx").read_bytes() == onnx_bytes
    report = json.loads((proj / "parity" / "parity.json").read_text())
    assert sorted(a["name"] for a in report["artifacts"]) == ["tiny.onnx", "tiny.tflite"]
    # A random-weight model scores everything near 0.5, so a near-tie may flip between
    # runtimes; what matters here is that the verdict and the exit code agree.
    assert result.exit_code == (0 if report["passed"] else 1), result.output
    assert "Error" not in result.output


def test_export_unwritable_out_is_named_before_any_work(tiny_model_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("export", "--model", tiny_model_file, "--target", "onnx",
                 "--out", blocker / "out")
    assert result.exit_code == 1
    assert f"'{blocker}' is a file, not a folder" in result.output
    assert "building" not in result.output
