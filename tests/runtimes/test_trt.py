"""TensorRT runtime: sidecar metadata, version / GPU checks, profile checks; real runs need a
GPU."""

import importlib.util
import json
import pathlib
import re
import shutil
import subprocess

import pytest

from edgedet.config import InferenceConfig
from edgedet.cuda import cuda_device
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.trt import (
    TensorRTRuntime,
    TensorRTVersionError,
    check_compatible,
    check_profile,
    read_metadata,
    sidecar_path,
)

FACTS = {"version": "10.3.0.26", "gpu": "Orin", "compute_capability": "8.7",
         "precision": "int8", "input_dtype": "uint8"}


def _engine(tmp_path, facts=FACTS):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not really an engine")
    metadata = ArtifactMetadata(class_names=("cat", "dog"), inference=InferenceConfig(),
                                target="trt", precision="int8", extra={"tensorrt": facts})
    sidecar_path(engine).write_text(metadata.to_json())
    return engine, metadata


def test_metadata_comes_from_the_sidecar(tmp_path):
    from edgedet.runtimes.registry import open_runtime, runtime_kind

    engine, metadata = _engine(tmp_path)
    assert sidecar_path(engine).name == "model.engine.json"
    assert read_metadata(engine) == metadata
    assert runtime_kind(engine) == "trt"
    runtime = open_runtime(engine)
    assert isinstance(runtime, TensorRTRuntime) and runtime.metadata == metadata


def test_missing_or_broken_sidecar(tmp_path):
    engine = tmp_path / "lonely.engine"
    engine.write_bytes(b"\0")
    with pytest.raises(MetadataError, match="no sidecar 'lonely.engine.json'"):
        read_metadata(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(MetadataError, match="Cannot read"):
        read_metadata(engine)


def test_engine_from_another_tensorrt_version_is_refused():
    check_compatible(FACTS, "10.3.0.30", {"compute_capability": "8.7"})  # Same release.
    with pytest.raises(TensorRTVersionError,
                       match=r"built with TensorRT 10.3.0.26; this machine has TensorRT 8.5.2.2"
                             r".*rebuild it on this machine"):
        check_compatible(FACTS, "8.5.2.2", {"compute_capability": "8.7"}, "m.engine")
    with pytest.raises(TensorRTVersionError, match="compute capability 8.7 .*is 8.9"):
        check_compatible(FACTS, "10.3.0", {"name": "RTX 4090", "compute_capability": "8.9"})
    check_compatible({}, "10.3.0", None)  # Nothing recorded: nothing to check.


def test_profile_limits_are_checked_before_running():
    profile = [(1, 32, 32, 3), (1, 720, 1280, 3), (1, 2160, 3840, 3)]
    check_profile((1, 480, 640, 3), profile)
    with pytest.raises(ValueError, match=r"\(1, 16, 640, 3\) is outside the optimization profile"):
        check_profile((1, 16, 640, 3), profile, "m.engine")
    with pytest.raises(ValueError, match="--trt-shapes"):
        check_profile((2, 64, 64, 3), profile)


def _nvidia_smi_gpu():
    """`(name, compute capability)` of GPU 0 from nvidia-smi, or None (no nvidia-smi / GPU)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    name, capability = (part.strip() for part in out.stdout.splitlines()[0].rsplit(",", 1))
    return name, capability


def test_cuda_device_matches_this_machine():
    """The driver's answer on a GPU machine (what nvidia-smi says), None on a CPU one."""
    device = cuda_device()
    smi = _nvidia_smi_gpu()
    if smi is not None:
        assert device == {"name": smi[0], "compute_capability": smi[1]}
    elif any(pathlib.Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu")):
        # A GPU without nvidia-smi (Jetson): the driver still answers.
        assert device is not None and re.fullmatch(r"\d+\.\d+", device["compute_capability"])
    else:
        assert device is None


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here")
def test_without_tensorrt_loading_says_what_to_install(tmp_path):
    engine, _ = _engine(tmp_path)
    with pytest.raises(ImportError, match=r"needs TensorRT and Polygraphy.*edgedet\[gpu\]"):
        with TensorRTRuntime(engine):
            pass


@pytest.mark.tensorrt
def test_a_damaged_engine_is_refused_with_a_message(tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed")
    device = cuda_device()
    if device is None:
        pytest.skip("no NVIDIA GPU (CUDA driver) on this machine")
    facts = dict(FACTS, version=trt.__version__, compute_capability=device["compute_capability"])
    engine, _ = _engine(tmp_path, facts)
    with pytest.raises(TensorRTVersionError, match="could not deserialize"):
        with TensorRTRuntime(engine):
            pass
    assert json.loads(sidecar_path(engine).read_text())["target"] == "trt"
