"""The CPU's INT8 instruction sets, and the CPU class an INT8 artifact is built for.

ONNX Runtime's U8S8 kernels (uint8 activations x int8 weights) differ by CPU:

- `"vnni"`: x86 with AVX-512 VNNI, AVX-VNNI or AMX. `VPDPBUSD` accumulates
  the u8 x s8 products straight into int32: exact with 8-bit weights.
- `"avx2"` / `"avx512"`: x86 without VNNI. `VPMADDUBSW` adds each pair of
  u8 x s8 products into an int16 that saturates (255 * 127 * 2 > 32767), so
  8-bit weights can change the result. ONNX Runtime's answer, and
  OpenVINO's, is `reduce_range`: 7-bit weights (-64..63), whose pair sums
  fit in int16 (255 * 64 * 2 < 32767).
- `"arm"`: aarch64 (dot-product or widening multiplies into int32): exact.

The class of the machine running the artifact is what matters, not the one
building it: `edgedet export --calib-cpu avx2` builds an artifact that is
exact on any x86 CPU. `reduce_range` costs a little accuracy on VNNI CPUs
(one bit of weight precision) and no speed.

The flags come from `archspec` (Spack's CPU detection: /proc/cpuinfo on
Linux, sysctl on macOS, CPUID on Windows), not from hand-parsed files.

Example:

```python
from edgedet.cpu import host_cpu_class, int8_flags, reduce_range

host_cpu_class()        # "avx2" on an AMD EPYC Zen 3
int8_flags()            # ["avx2"]
reduce_range("avx2")    # True
```
"""

import functools
import platform

#: CPU classes an INT8 artifact can target, and what each means.
CPU_CLASSES = {
    "vnni": "x86 with AVX-512 VNNI, AVX-VNNI or AMX (8-bit weights are exact)",
    "avx512": "x86 with AVX-512 but no VNNI (7-bit weights: no int16 saturation)",
    "avx2": "x86 with AVX2, no VNNI (7-bit weights: no int16 saturation)",
    "arm": "aarch64 / ARM64 (8-bit weights are exact)",
}
#: What `--calib-cpu` accepts: a class, or `"auto"` for the machine running it.
CPU_CHOICES = ("auto", *CPU_CLASSES)

#: The flags that decide how INT8 kernels behave (x86 and ARM names as Linux prints them).
INT8_FLAGS = (
    "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
    "asimd", "asimddp", "i8mm", "sve",
)
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_flags():
    """Every feature flag of this machine's CPU, as a frozenset of str (empty if unknown)."""
    try:
        import archspec.cpu.detect

        return frozenset(archspec.cpu.detect.detected_info().features)
    except Exception:  # Unknown platform or unreadable /proc: say nothing rather than guess.
        return frozenset()


def int8_flags(flags=None):
    """The flags of `flags` (default: this CPU's) that matter for INT8, sorted."""
    flags = cpu_flags() if flags is None else set(flags)
    return [flag for flag in INT8_FLAGS if flag in flags]


def cpu_class(flags, machine):
    """The CPU class (`CPU_CLASSES` key) of a CPU with `flags` and `platform.machine()`
    `machine`."""
    machine = (machine or "").lower()
    if machine in ("aarch64", "arm64") or machine.startswith("arm"):
        return "arm"
    flags = set(flags)
    if flags & set(_VNNI_FLAGS):
        return "vnni"
    if "avx512bw" in flags or "avx512f" in flags:
        return "avx512"
    return "avx2"


def host_cpu_class():
    """The CPU class of the machine running this process."""
    return cpu_class(cpu_flags(), platform.machine())


def resolve_cpu_class(name):
    """A `--calib-cpu` value as a CPU class: `"auto"` (or None) is this machine's.

    Raises:
        ValueError: `name` is not `"auto"` or a `CPU_CLASSES` key.
    """
    key = "auto" if name is None else str(name).strip().lower()
    if key == "auto":
        return host_cpu_class()
    if key not in CPU_CLASSES:
        from edgedet.suggest import closest

        raise ValueError(
            f"Unknown INT8 CPU class '{name}'. Expected one of {list(CPU_CHOICES)}."
            + closest(key, CPU_CHOICES)
        )
    return key


def reduce_range(cpu_class_name):
    """Whether U8S8 weights must use 7 bits on `cpu_class_name` (x86 without VNNI)."""
    return cpu_class_name in ("avx2", "avx512")


def isa_summary():
    """`{"cpu_class", "int8_flags"}` of this machine, for reports and benchmarks."""
    return {"cpu_class": host_cpu_class(), "int8_flags": int8_flags()}


def saturation_warning(quantization, host_class=None):
    """Why an INT8 ONNX model may be inexact on this CPU, or None when it is fine.

    Args:
        quantization: dict. `extra["quantization"]` of an artifact's metadata.
        host_class: str or None. The CPU class running it. Defaults to this
            machine's.
    """
    if not quantization or quantization.get("flavour") != "u8s8":
        return None
    host_class = host_class or host_cpu_class()
    # Artifacts from before edgedet recorded it were built with 8-bit weights.
    if quantization.get("reduce_range") or not reduce_range(host_class):
        return None
    built_for = quantization.get("cpu_class") or "vnni (8-bit weights)"
    return (
        f"this U8S8 model was built for {built_for} CPUs with 8-bit weights; on this "
        f"{host_class} CPU ONNX Runtime's int8 kernels can saturate and change detections. "
        "Re-export it with --calib-cpu avx2 (7-bit weights, exact on every x86 CPU)."
    )
