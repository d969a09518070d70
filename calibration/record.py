"""The calibration record (`<stem>_int8.calib.json`): what a calibration used and made.

The record holds the key a TensorRT calibration cache is valid for (model
weights, letterbox, method, images; `edgedet.calibration.trt_cache.cache_key`),
the images' hashes, the body that was quantized, the ranges and, when a
cache was written, its `tensorrt_cache` entry. `edgedet.calibration.pipeline`
builds it; `calibrate` and the TensorRT exporter write it; `load_record`
reads it back.
"""

import datetime
import hashlib
import json
from pathlib import Path

import edgedet
from edgedet.calibration import trt_cache

SCHEMA_VERSION = 1


def json_path_for_cache(cache_path):
    """The calibration JSON that describes a cache: `X.calib.cache` -> `X.calib.json`."""
    cache_path = Path(cache_path)
    name = cache_path.name
    stem = name[: -len(".cache")] if name.endswith(".cache") else name
    return cache_path.with_name(stem + ".json")


def read_onnx_metadata(model):
    """The edgedet `ArtifactMetadata` of an ONNX `ModelProto` (MetadataError if none)."""
    from edgedet.metadata import METADATA_KEY, ArtifactMetadata, MetadataError

    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise MetadataError(
            "The ONNX model has no edgedet metadata: calibrate an ONNX exported by "
            "`edgedet export --target onnx` (or pass the Keras model)."
        )
    return ArtifactMetadata.from_json(props[METADATA_KEY])


def key_record(metadata, method, data_key, options=None, model_bytes=b""):
    """The fields a cache is keyed by, and the key itself."""
    model_sha = metadata.source_sha256 or hashlib.sha256(model_bytes).hexdigest()
    preprocessing = metadata.inference.letterbox.to_dict()
    record = {"model_sha256": model_sha, "preprocessing": preprocessing, "method": method,
              "data_key": data_key, "options": dict(options or {})}
    record["key"] = trt_cache.cache_key(model_sha, preprocessing, method, data_key, options)
    return record


def make_record(metadata, ranges, data, body, source_model="", files=None, model_bytes=b""):
    """The calibration JSON's content (without the TensorRT cache entry).

    Args:
        metadata: `ArtifactMetadata` of the FP32 model.
        ranges: `Ranges`.
        data: `CalibrationData` the ranges came from.
        body: `Body` that was quantized.
        source_model: str. The FP32 model's file name. Defaults to `""`.
        files: dict or None. Kind -> file name of what was written.
        model_bytes: bytes. Hashed when the metadata has no weights hash.
    """
    key = key_record(metadata, ranges.method, ranges.data_key, ranges.options, model_bytes)
    return {
        "schema_version": SCHEMA_VERSION,
        "edgedet_version": edgedet.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source_model": source_model,
        **key,
        "data": {"source": data.source, "seed": data.seed, "images": ranges.images},
        "body": {"scope": body.scope, "float_nodes": list(body.float_nodes),
                 "quantized_nodes": len(body.quantize), "quantize_head": not body.float_head,
                 "family_float_blocks": list(body.family_float)},
        "files": dict(files or {}),
        "ranges": ranges.to_dict()["ranges"],
    }


def load_record(json_path):
    """Reads a calibration JSON (ValueError naming the file when unreadable)."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read calibration record '{json_path}': {error}") from error
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"'{json_path}' is not an edgedet calibration record (schema_version "
            f"{record.get('schema_version') if isinstance(record, dict) else None!r}, "
            f"expected {SCHEMA_VERSION})."
        )
    return record


def cache_for_version(cache_text, trt_version):
    """A cache's text with the header for `trt_version` (the scales are unchanged).

    TensorRT ignores a cache whose header names another version; the scales
    themselves do not depend on it, so the device-side build rewrites the
    header of a cache calibrated elsewhere.
    """
    header, scales = trt_cache.parse_cache(cache_text)
    return trt_cache.format_cache(scales, trt_version, header["algorithm"])
