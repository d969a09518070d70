"""The device install: a fresh venv with only `pip install --no-deps .` and
requirements/device.txt (no TensorFlow, Keras, tf2onnx) runs `info`, `predict`,
`benchmark` and `parity --reference` on artifacts exported here, and says what it lacks
for Keras models. It uses a CPython 3.10 when this machine has one (JetPack 6's
Python), else this interpreter's base Python."""

import glob
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Modules a device imports (CLI, runtimes without TensorFlow, parity, benchmark, lint).
DEVICE_MODULES = [
    "edgedet.cli.main", "edgedet.runtimes.registry", "edgedet.runtimes.onnxrt",
    "edgedet.runtimes.trt", "edgedet.runtimes.bundle", "edgedet.parity",
    "edgedet.parity.run", "edgedet.benchmark.run", "edgedet.predict",
    "edgedet.exporters.tensorrt_plan", "edgedet.exporters.trt_lint",
    "edgedet.exporters.trt_nms", "edgedet.data.synthetic",
]


def _requirements(text):
    return sorted(line.strip() for line in text.splitlines()
                  if line.strip() and not line.startswith("#"))


def test_device_requirements_are_the_unconditional_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unconditional = [d for d in project["dependencies"] if ";" not in d]
    marked = [d for d in project["dependencies"] if ";" in d]
    assert _requirements((ROOT / "requirements" / "device.txt").read_text()) == sorted(
        unconditional)
    assert sorted(re.split("[>=]", d)[0] for d in marked) == [
        "ai-edge-litert", "keras", "tensorflow", "tf2onnx"]
    assert all('python_version >= "3.11"' in d for d in marked)
    assert project["requires-python"] == ">=3.10"


def test_device_modules_do_not_import_tensorflow():
    code = (f"import sys\nfor m in {DEVICE_MODULES!r}: __import__(m)\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf2onnx', 'tensorrt'))\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _device_python():
    """A CPython 3.10 if there is one, else the base interpreter of this one."""
    candidates = [os.environ.get("EDGEDET_DEVICE_PYTHON"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10"))),
                  "python3.10"]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 10)":
            return candidate
    return getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    """`bin/` of a venv with the device install only."""
    folder = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([_device_python(), "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", str(ROOT)], check=True)
    subprocess.run([*pip, "install", "-r", str(ROOT / "requirements" / "device.txt")],
                   check=True)
    return folder / "bin"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """An ONNX artifact, and the TensorRT-ready ONNX + parity bundle of the no-TensorRT
    path, of a tiny detector; plus the detector as a .keras file."""
    import keras

    from edgedet import cuda
    from edgedet.export import export
    from edgedet.exporters.base import ExportError
    from edgedet.models import YOLOV8Detector

    out = tmp_path_factory.mktemp("artifacts")
    keras.utils.set_random_seed(11)
    model = YOLOV8Detector.from_preset("tiny", class_names=["a", "b"])
    model.save(out / "model.keras")
    has_gpu = cuda.has_nvidia_gpu
    cuda.has_nvidia_gpu = lambda: False  # The device path, on every machine.
    try:
        with pytest.raises(ExportError, match="cannot build a TensorRT engine here"):
            export(model, ["onnx", "trt"], out, stem="m",
                   target_options={"trt": {"trt_version": "10.3.0"}})
    finally:
        cuda.has_nvidia_gpu = has_gpu
    return out


def _edgedet(bin_dir, *args):
    # Not from the repository root, whose edgedet/ folder would shadow the installed package.
    return subprocess.run([str(bin_dir / "edgedet"), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=bin_dir)


def test_device_install_runs_the_device_commands(device_venv, artifacts, tmp_path):
    python = str(device_venv / "python")
    for package in ("tensorflow", "keras", "tf2onnx"):
        probe = subprocess.run([python, "-c", f"import {package}"], capture_output=True)
        assert probe.returncode != 0, f"{package} is importable in the device venv"

    info = _edgedet(device_venv, "info", "--json", artifacts / "m.onnx")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["class_names"] == ["a", "b"]

    bundle = artifacts / "m_parity"
    predicted = _edgedet(device_venv, "predict", "--model", artifacts / "m_trt.onnx",
                         bundle / "images", "--out", tmp_path / "preds")
    assert predicted.returncode == 0, predicted.stderr
    # One JSON per image (edgedet's ownership marker, .edgedet-output.json, is not one).
    assert len(list((tmp_path / "preds").glob("image_*.json"))) == 12

    bench = _edgedet(device_venv, "benchmark", artifacts / "m_trt.onnx", "--images",
                     bundle / "images", "--runs", "2", "--warmup", "1", "--batch", "1,2",
                     "--out", tmp_path / "bench")
    assert bench.returncode == 0, bench.stderr
    results = json.loads((tmp_path / "bench" / "benchmark.json").read_text())["results"]
    assert [r["error"] for r in results] == [None]

    # The TensorRT-ready ONNX against the workstation's saved reference (the bundle),
    # and the ONNX artifact against the TensorRT-ready ONNX as reference.
    parity = _edgedet(device_venv, "parity", "--reference", bundle, artifacts / "m_trt.onnx",
                      "--out", tmp_path / "parity")
    assert parity.returncode == 0, parity.stdout + parity.stderr
    assert "parity PASSED" in parity.stdout
    report = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert [a["status"] for a in report["artifacts"]] == ["passed"]
    versus = _edgedet(device_venv, "parity", "--reference", artifacts / "m_trt.onnx",
                      artifacts / "m.onnx", "--images", bundle / "images",
                      "--out", tmp_path / "parity-onnx")
    assert versus.returncode == 0, versus.stdout + versus.stderr

    keras_model = _edgedet(device_venv, "info", artifacts / "model.keras")
    assert keras_model.returncode == 1
    assert "needs TensorFlow and Keras" in keras_model.stderr
    assert "Traceback" not in keras_model.stderr
    export = _edgedet(device_venv, "export", "--model", artifacts / "model.keras", "--target",
                      "onnx", "--out", tmp_path / "x")
    assert export.returncode == 1 and "workstation install" in export.stderr
