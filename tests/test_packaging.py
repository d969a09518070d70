"""`exporters/`, `runtimes/`, `calibration/` install as `edgedet.*`, never top-level."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10 (JetPack 6)
    tomllib = pytest.importorskip("tomli")

REPO = pathlib.Path(__file__).resolve().parents[1]
MAPPED = {"exporters": "edgedet.exporters", "runtimes": "edgedet.runtimes",
          "calibration": "edgedet.calibration"}


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _source_packages():
    """Every folder with an `__init__.py`, as its installed dotted name."""
    names = set()
    for init in REPO.glob("**/__init__.py"):
        rel = init.parent.relative_to(REPO)
        if (rel.parts[0] in ("tests", "build", ".venv", "benchmarks")
                or "site-packages" in rel.parts):
            continue
        top = MAPPED.get(rel.parts[0], rel.parts[0])
        names.add(".".join([top, *rel.parts[1:]]))
    return names


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert _source_packages() == listed


def test_installed_package_maps_top_level_folders_under_edgedet(tmp_path):
    # A fresh interpreter outside the repository, so the checkout's own folders
    # are not on sys.path: only what the (editable) install provides is seen.
    code = (
        "import importlib.util, pathlib, edgedet.exporters, edgedet.runtimes, edgedet.calibration\n"
        "for name in ('exporters', 'runtimes', 'calibration'):\n"
        "    module = __import__('edgedet.' + name, fromlist=['x'])\n"
        "    assert pathlib.Path(module.__file__).parent.name == name, module.__file__\n"
        "    assert importlib.util.find_spec(name) is None, name + ' is importable top-level'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_wheel_holds_only_the_edgedet_package(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "out", "tests"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(src), "-w", str(tmp_path / "wheel")],
        capture_output=True, text=True)
    if result.returncode and "No module named pip" in result.stderr:
        pytest.skip("pip is not available in this interpreter")
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheel").glob("edgedet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"edgedet", wheel.name.split("-py")[0] + ".dist-info"}
    for sub in MAPPED.values():
        assert sub.replace(".", "/") + "/__init__.py" in names
    assert "edgedet/cli/main.py" in names
    # Package data: the built-in model and the parity schemas (report and run record).
    assert any(n.startswith("edgedet/models/weights/") and n.endswith(".keras") for n in names)
    assert "edgedet/parity/parity.schema.json" in names
    assert "edgedet/parity/run.schema.json" in names
