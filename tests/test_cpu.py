"""CPU classes for INT8: detection from flags, `--calib-cpu` values, the saturation warning."""

import pytest

from edgedet import cpu


@pytest.mark.parametrize(("flags", "machine", "expected"), [
    ({"avx2", "fma"}, "x86_64", "avx2"),                       # AMD Zen 2/3, Intel Haswell
    ({"avx2", "avx512f", "avx512bw"}, "x86_64", "avx512"),     # Intel Skylake-SP
    ({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "x86_64", "vnni"),  # Cascade Lake, Zen 4
    ({"avx2", "avx_vnni"}, "x86_64", "vnni"),                  # Alder Lake
    ({"avx2", "amx_int8"}, "x86_64", "vnni"),
    ({"asimd", "asimddp"}, "aarch64", "arm"),                  # Jetson Orin, Graviton
    (set(), "arm64", "arm"),                                   # Apple silicon
    (set(), "AMD64", "avx2"),                                  # flags unknown: the safe choice
])
def test_cpu_class(flags, machine, expected):
    assert cpu.cpu_class(flags, machine) == expected


def test_host_flags_are_read_and_classified():
    flags = cpu.cpu_flags()
    summary = cpu.isa_summary()
    assert summary["cpu_class"] in cpu.CPU_CLASSES
    assert summary["int8_flags"] == [f for f in cpu.INT8_FLAGS if f in flags]
    import platform

    if platform.machine() in ("x86_64", "AMD64") and flags:
        # Every x86-64 CPU edgedet's wheels run on has at least SSE2; archspec read real flags.
        assert "sse2" in flags


def test_resolve_cpu_class():
    assert cpu.resolve_cpu_class("auto") == cpu.host_cpu_class()
    assert cpu.resolve_cpu_class(None) == cpu.host_cpu_class()
    assert cpu.resolve_cpu_class(" AVX2 ") == "avx2"
    with pytest.raises(ValueError, match=r"Unknown INT8 CPU class 'vnn'.*Did you mean 'vnni'"):
        cpu.resolve_cpu_class("vnn")


def test_reduce_range_only_where_u8s8_saturates():
    assert [c for c in cpu.CPU_CLASSES if cpu.reduce_range(c)] == ["avx512", "avx2"]


def test_saturation_warning():
    eight_bit = {"flavour": "u8s8", "cpu_class": "vnni", "reduce_range": False}
    warning = cpu.saturation_warning(eight_bit, host_class="avx2")
    assert "built for vnni" in warning and "--calib-cpu avx2" in warning
    assert cpu.saturation_warning(eight_bit, host_class="vnni") is None
    assert cpu.saturation_warning(eight_bit, host_class="arm") is None
    seven_bit = {"flavour": "u8s8", "cpu_class": "avx2", "reduce_range": True}
    assert cpu.saturation_warning(seven_bit, host_class="avx2") is None
    # Artifacts from before the CPU class was recorded had 8-bit weights.
    assert "vnni" in cpu.saturation_warning({"flavour": "u8s8"}, host_class="avx512")
    assert cpu.saturation_warning({"flavour": "s8s8"}, host_class="avx2") is None
    assert cpu.saturation_warning(None, host_class="avx2") is None
