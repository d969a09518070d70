"""TensorRT calibration cache: format, version header, scales and the staleness key."""

import struct

import numpy as np
import pytest

from edgedet.calibration import trt_cache
from edgedet.calibration.qdq import Ranges


@pytest.mark.parametrize("version, code", [
    ("8.5.2", 8502), ("8.5.2.2", 8502), ("8.6.1", 8601), ("10.0.1", 100001),
    ("10.3.0", 100300), ("10.7.0.23", 100700),
])
def test_version_code_matches_tensorrt_headers(version, code):
    # Known headers: TRT-8601-EntropyCalibration2 (8.6.1), TRT-100300-... (10.3.0).
    assert trt_cache.version_code(version) == code


def test_versions_without_implicit_int8_are_refused():
    with pytest.raises(ValueError, match="TensorRT 11.0.0 has no implicit INT8"):
        trt_cache.version_code("11.0.0")
    with pytest.raises(ValueError, match="needs TensorRT 8.5 or later"):
        trt_cache.version_code("8.4.3")
    with pytest.raises(ValueError, match="Invalid TensorRT version"):
        trt_cache.version_code("ten")


def test_hex_is_the_big_endian_float32_bits():
    assert trt_cache.float_to_hex(0.0078125) == "3c000000"  # 2**-7
    assert trt_cache.float_to_hex(1.0) == "3f800000"
    assert trt_cache.hex_to_float("3dc40000") == pytest.approx(0.095703125)
    value = 0.0123456
    assert trt_cache.hex_to_float(trt_cache.float_to_hex(value)) == np.float32(value)


def test_cache_text_round_trip():
    scales = {"images": 0.5, "model/conv_1/mul_1:0": 3.1e-3, "Transpose__12:0": 1e-6}
    text = trt_cache.format_cache(scales, "8.6.1", "EntropyCalibration2")
    lines = text.splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[1] == "images: 3f000000"
    header, parsed = trt_cache.parse_cache(text)
    assert header == {"version_code": 8601, "algorithm": "EntropyCalibration2"}
    assert list(parsed) == list(scales)
    for name, scale in scales.items():
        assert parsed[name] == np.float32(scale)
        packed = struct.unpack(">f", struct.pack(">f", scale))[0]
        assert parsed[name] == packed


@pytest.mark.parametrize("text, message", [
    ("", "does not start with"),
    ("images: 3f000000\n", "does not start with"),
    ("TRT-8601-EntropyCalibration2\nimages 3f000000\n", "line 2"),
    (b"\xff\xfe\x00", "binary"),
])
def test_malformed_caches_are_refused(text, message):
    with pytest.raises(trt_cache.CacheFormatError, match=message):
        trt_cache.parse_cache(text)


def test_bad_scales_and_names_are_refused():
    with pytest.raises(ValueError, match="Expected > 0"):
        trt_cache.format_cache({"t": 0.0})
    with pytest.raises(ValueError, match="cannot be written"):
        trt_cache.format_cache({"a: b": 1.0})
    with pytest.raises(ValueError, match="Unknown calibrator"):
        trt_cache.format_cache({"t": 1.0}, algorithm="Magic")


def test_scales_are_symmetric_amax_over_127():
    ranges = Ranges("minmax", {"a": (-2.54, 1.0), "b": (0.0, 12.7), "flat": (0.0, 0.0)}, None)
    with pytest.warns(UserWarning, match="1 tensors had a degenerate range"):
        scales = trt_cache.scales_from_ranges(ranges)
    assert scales["a"] == pytest.approx(0.02)
    assert scales["b"] == pytest.approx(0.1)
    assert scales["flat"] == pytest.approx(trt_cache.MIN_AMAX / 127)
    assert trt_cache.scales_from_ranges(ranges, ["b", "missing"]) == {"b": pytest.approx(0.1)}


def _record(**changes):
    fields = {"model_sha256": "a" * 64, "preprocessing": {"size": 640}, "method": "entropy",
              "data_key": "d" * 64}
    fields.update(changes)
    fields["key"] = trt_cache.cache_key(fields["model_sha256"], fields["preprocessing"],
                                        fields["method"], fields["data_key"])
    return fields


def test_key_depends_on_model_preprocessing_method_and_data():
    base = _record()
    for change in [{"model_sha256": "b" * 64}, {"preprocessing": {"size": 320}},
                   {"method": "minmax"}, {"data_key": "e" * 64}]:
        assert _record(**change)["key"] != base["key"]
    assert _record()["key"] == base["key"]


@pytest.mark.parametrize("change, what", [
    ({"model_sha256": "b" * 64}, "model weights"),
    ({"preprocessing": {"size": 320}}, "preprocessing"),
    ({"method": "minmax"}, "calibration method"),
    ({"data_key": "e" * 64}, "calibration images"),
])
def test_a_stale_cache_is_refused_naming_what_changed(change, what):
    trt_cache.check_key(_record(), _record())  # Same key: fine.
    with pytest.raises(trt_cache.StaleCacheError, match=f"another {what}.*not reused"):
        trt_cache.check_key(_record(**change), _record(), cache="model.calib.cache")
