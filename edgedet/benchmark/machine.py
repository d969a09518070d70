"""What a benchmark ran on: CPU, cores, memory, OS, Python and library versions.

Nothing here imports TensorFlow or a runtime: versions are read from the
installed distributions' metadata.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys

#: Distributions whose versions every benchmark records.
LIBRARIES = (
    "edgedet", "numpy", "tensorflow", "keras", "onnx", "onnxruntime", "ai-edge-litert", "tf2onnx",
)


def cpu_model():
    """The CPU's model name, e.g. `"AMD EPYC 7B13"`; the architecture if unknown."""
    system = platform.system()
    try:
        if system == "Linux":
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    # x86: "model name"; some ARM kernels: "Hardware" / "Model".
                    if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                        return value.strip()
        elif system == "Darwin":
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores():
    """CPUs this process may run on (its affinity mask), or None if unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count()
    return os.cpu_count()


def library_versions(names=LIBRARIES):
    """`{distribution: version or None}` of the installed distributions."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info():
    """The `machine` block of `benchmark.json` (see `edgedet.benchmark.schema`)."""
    import psutil

    from edgedet.cpu import isa_summary

    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):  # Windows
        load = None
    return {
        "cpu": cpu_model(),
        "architecture": platform.machine(),
        **isa_summary(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": usable_cores(),
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20, 1),
        "load_average": load,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
    }
