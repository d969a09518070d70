"""Is there an NVIDIA GPU here? The CUDA probe, without any Python CUDA package.

`has_nvidia_gpu` decides whether the `trt` target can be built here
(`edgedet.exporters.registry`); `cuda_device` names the GPU and its compute
capability, which a TensorRT engine is bound to (`edgedet.runtimes.trt`,
`edgedet.exporters.tensorrt`). Both read the NVIDIA driver only, so they work
on a device install (no TensorFlow, no TensorRT) and on a Jetson.
"""

import ctypes
import ctypes.util
import shutil

# cuDeviceGetAttribute ids (CUDA driver API, stable since CUDA 6).
_CC_MAJOR, _CC_MINOR = 75, 76


def cuda_device(index=0):
    """`{"name", "compute_capability"}` of CUDA device `index`, or None without a driver/GPU.

    Uses the CUDA driver library (`libcuda`), present wherever the NVIDIA
    driver is (Jetson included), without importing any Python CUDA package.

    Args:
        index: int. CUDA device ordinal. Defaults to 0.
    """
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        cuda = ctypes.CDLL(name)
    except OSError:
        return None
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    label = ctypes.create_string_buffer(256)
    count = ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return None
    if index >= count.value or cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
        return None
    cuda.cuDeviceGetName(label, len(label), device)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, device)
    return {"name": label.value.decode(errors="replace"),
            "compute_capability": f"{major.value}.{minor.value}"}


def has_nvidia_gpu():
    """Whether this machine has an NVIDIA GPU: `nvidia-smi` on `PATH`, or a CUDA device
    the driver reports (Jetson has no `nvidia-smi`)."""
    if shutil.which("nvidia-smi") is not None:
        return True
    return cuda_device() is not None
