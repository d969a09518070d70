"""TensorRT calibration caches in TensorRT's own text format.

For implicit INT8 builds on TensorRT 8.x / 10.x (JetPack 5 / 6), where the
builder reads per-tensor scales from a calibrator's cache instead of Q/DQ
nodes. The file is what TensorRT's own calibrators write (and what
`trtexec --calib=FILE` reads):

```
TRT-8502-EntropyCalibration2
yolov8_detector_1/stem_1_1/mul_1:0: 3c8f5c29
...
```

The first line names the TensorRT version (`major*1000 + minor*100 + patch`
before 10, `major*10000 + minor*100 + patch` from 10 on, e.g. `TRT-100300`
for 10.3.0) and the calibrator; TensorRT ignores a cache whose header does
not match the running version and calibrator. Each following line is an
ONNX tensor name and the big-endian hex of its float32 scale,
`amax / 127` (symmetric int8). Tensors absent from the cache (letterbox,
decode, NMS, the float-kept head outputs) have no scale and stay float.

The scales come from the same `Ranges` as the Q/DQ models. A cache is only
valid for one model, preprocessing, method and image set: `cache_key`
hashes them, the calibration JSON written beside the cache records it, and
`check_key` refuses a stale cache (`StaleCacheError`) instead of reusing it.

TensorRT 11 removed implicit INT8 and calibrators: use the S8S8 Q/DQ ONNX.
"""

import hashlib
import json
import re
import struct
import warnings

ALGORITHMS = ("EntropyCalibration2", "MinMaxCalibration", "EntropyCalibration",
              "LegacyCalibration")
# Method -> the TensorRT calibrator whose name the header carries.
ALGORITHM_OF_METHOD = {
    "entropy": "EntropyCalibration2",
    "minmax": "MinMaxCalibration",
    "percentile": "EntropyCalibration2",
    "p90_min_max": "EntropyCalibration2",
}
# JetPack 6 (TensorRT 10.3) is the default target; JetPack 5 is 8.5.2.
DEFAULT_TRT_VERSION = "10.3.0"
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{1,8})$")
# A zero scale makes TensorRT fail the build; degenerate ranges get this floor.
MIN_AMAX = 1e-6


class StaleCacheError(ValueError):
    """A calibration cache does not belong to this model / preprocessing / method / data."""


class CacheFormatError(ValueError):
    """A file is not a TensorRT calibration cache."""


def parse_version(version):
    """`"10.3.0"` -> `(10, 3, 0)`; extra components (build numbers) are dropped."""
    parts = str(version).split(".")
    try:
        numbers = [int(p) for p in parts[:3]] + [0] * (3 - len(parts[:3]))
    except ValueError:
        raise ValueError(
            f"Invalid TensorRT version: {version!r}. Expected 'MAJOR.MINOR.PATCH', e.g. '8.5.2'."
        ) from None
    return tuple(numbers)


def version_code(version):
    """TensorRT's `getInferLibVersion()` number, as in the cache header.

    `8.5.2` -> 8502, `8.6.1` -> 8601, `10.3.0` -> 100300.

    Raises:
        ValueError: below 8.5 (not supported by edgedet) or 11 and later
            (no implicit INT8).
    """
    major, minor, patch = parse_version(version)
    if (major, minor) < (8, 5):
        raise ValueError(
            f"TensorRT {version} is not supported: edgedet needs TensorRT 8.5 or later."
        )
    if major >= 11:
        raise ValueError(
            f"TensorRT {version} has no implicit INT8 (calibrators and calibration caches were "
            "removed in 11): build from the S8S8 Q/DQ ONNX instead."
        )
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def float_to_hex(value):
    """Big-endian hex of the float32 bits of `value` (`0.0078125` -> `3c000000`)."""
    return struct.pack(">f", float(value)).hex()


def hex_to_float(text):
    """Inverse of `float_to_hex`."""
    return struct.unpack(">f", bytes.fromhex(text.zfill(8)))[0]


def scales_from_ranges(ranges, tensors=None):
    """`{tensor: amax / 127}` from a `Ranges` (optionally only `tensors`).

    Degenerate ranges (amax below `MIN_AMAX`) get `MIN_AMAX / 127` and a
    warning: TensorRT rejects zero scales.
    """
    names = sorted(ranges.ranges) if tensors is None else [t for t in tensors if t in ranges.ranges]
    scales, floored = {}, []
    for name in names:
        amax = ranges.amax(name)
        if amax < MIN_AMAX:
            floored.append(name)
            amax = MIN_AMAX
        scales[name] = amax / 127.0
    if floored:
        warnings.warn(
            f"{len(floored)} tensors had a degenerate range (e.g. '{floored[0]}'); their "
            f"TensorRT scale is floored at {MIN_AMAX:g}/127.",
            stacklevel=2,
        )
    return scales


def format_cache(scales, trt_version=DEFAULT_TRT_VERSION, algorithm="EntropyCalibration2"):
    """The cache file's text for `{tensor: scale}`.

    Args:
        scales: dict of tensor name -> float32 scale (> 0).
        trt_version: str. TensorRT version of the target device. Defaults
            to `"10.3.0"` (JetPack 6).
        algorithm: str. Calibrator name in the header. Defaults to
            `"EntropyCalibration2"`.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown calibrator '{algorithm}'. Expected one of {list(ALGORITHMS)}.")
    lines = [f"TRT-{version_code(trt_version)}-{algorithm}"]
    for name, scale in scales.items():
        if ": " in name or "\n" in name:
            raise ValueError(f"Tensor name {name!r} cannot be written to a calibration cache.")
        if not scale > 0:
            raise ValueError(f"Invalid scale {scale!r} for tensor '{name}'. Expected > 0.")
        lines.append(f"{name}: {float_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def parse_cache(text, source="calibration cache"):
    """Reads a cache's text back.

    Returns:
        `(header, scales)`: `{"version_code": int, "algorithm": str}` and
        `{tensor: scale}` in file order.

    Raises:
        CacheFormatError: not a TensorRT calibration cache.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise CacheFormatError(
                f"{source} is binary, not a TensorRT calibration cache.") from None
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    match = _HEADER.match(lines[0]) if lines else None
    if match is None:
        first = lines[0][:60] if lines else "(empty)"
        raise CacheFormatError(
            f"{source} does not start with a 'TRT-<version>-<calibrator>' header "
            f"(first line: {first!r})."
        )
    scales = {}
    for number, line in enumerate(lines[1:], start=2):
        entry = _LINE.match(line)
        if entry is None:
            raise CacheFormatError(
                f"{source}, line {number}: expected 'tensor: hexscale', received {line[:80]!r}."
            )
        scales[entry.group(1)] = hex_to_float(entry.group(2))
    return {"version_code": int(match.group(1)), "algorithm": match.group(2)}, scales


def cache_key(model_sha256, preprocessing, method, data_key, options=None):
    """sha256 over what a cache depends on: model, preprocessing, method and data."""
    payload = json.dumps(
        {"model": model_sha256, "preprocessing": preprocessing, "method": method,
         "data": data_key, "options": options or {}},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def check_key(recorded, expected, cache="calibration cache"):
    """Raises `StaleCacheError` naming what differs between two key records.

    Args:
        recorded: dict with `key` and its parts (`model_sha256`,
            `preprocessing`, `method`, `data_key`), as written in the
            calibration JSON.
        expected: dict of the same fields for the current export.
        cache: str. The cache's name, for the message.
    """
    if recorded.get("key") == expected.get("key"):
        return
    labels = {"model_sha256": "model weights", "preprocessing": "preprocessing (letterbox)",
              "method": "calibration method", "data_key": "calibration images"}
    differs = [label for field, label in labels.items()
               if recorded.get(field) != expected.get(field)] or ["its key"]
    raise StaleCacheError(
        f"{cache} was made for another {', '.join(differs)}; it is stale and is not reused. "
        "Recalibrate (`edgedet calibrate`), or delete the cache."
    )
