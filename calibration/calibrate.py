"""`edgedet calibrate` as a library function: one pass, every INT8 artifact.

From an FP32 end-to-end ONNX (with edgedet metadata) and calibration images,
writes into `out_dir`:

| file                         | what                                               |
| ---------------------------- | -------------------------------------------------- |
| `<stem>_int8.onnx`           | U8S8 Q/DQ, for ONNX Runtime on CPU                 |
| `<stem>_int8_trt.onnx`       | symmetric S8S8 Q/DQ, for TensorRT explicit INT8    |
| `<stem>_int8.calib.cache`    | TensorRT calibration cache (implicit INT8, 8.x/10.x) |
| `<stem>_int8.calib.json`     | key, method, ranges, image hashes, kept-float layers |

All from one set of ranges. The JSON's `key` ties the cache to the model
weights, the letterbox, the method and the images (see
`edgedet.calibration.trt_cache`).

Example:

```python
from edgedet.calibration.calibrate import calibrate

result = calibrate("out/model.onnx", "calib_images/", "out/", size=300)
result.paths  # {"u8s8": ..., "s8s8": ..., "cache": ..., "json": ...}
```
"""

import dataclasses
import datetime
import hashlib
import json
from pathlib import Path

import edgedet
from edgedet.calibration import trt_cache
from edgedet.calibration.body import find_body
from edgedet.calibration.data import DEFAULT_SIZE, CalibrationData, calibration_data
from edgedet.calibration.qdq import DEFAULT_METHOD, check_placement, collect_ranges, quantize

SCHEMA_VERSION = 1
SUFFIXES = {
    "u8s8": "_int8.onnx",
    "s8s8": "_int8_trt.onnx",
    "cache": "_int8.calib.cache",
    "json": "_int8.calib.json",
}


@dataclasses.dataclass
class CalibrationResult:
    """What `calibrate` wrote.

    Attributes:
        paths: dict. `"u8s8"`, `"s8s8"`, `"cache"`, `"json"` -> `Path`
            (only those written).
        record: dict. The calibration JSON's content.
        ranges: `edgedet.calibration.qdq.Ranges`.
        sensitivity: `Sensitivity` or None.
    """

    paths: dict
    record: dict
    ranges: object
    sensitivity: object = None


def artifact_paths(out_dir, stem):
    """`{"u8s8", "s8s8", "cache", "json"}` -> paths under `out_dir` for `stem`."""
    return {kind: Path(out_dir) / f"{stem}{suffix}" for kind, suffix in SUFFIXES.items()}


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


def calibrate(onnx_model, data=None, out_dir=".", method=DEFAULT_METHOD, size=DEFAULT_SIZE,
              seed=0, stem=None, flavours=("u8s8", "s8s8"), trt_version=None,
              quantize_head=False, sensitivity_images=None, sensitivity_thresholds=None,
              force=False, progress=None, cpu="auto"):
    """Calibrates once and writes the Q/DQ ONNX files, the TensorRT cache and the JSON.

    Args:
        onnx_model: path. FP32 end-to-end ONNX with edgedet metadata.
        data: `CalibrationData`, or a source for
            `edgedet.calibration.data.calibration_data` (folder, dataset,
            `synthetic:` spec, arrays), or None for the default set.
            Defaults to None.
        out_dir: str or path. Output folder (created). Defaults to `"."`.
        method: str. `"minmax"`, `"entropy"` or `"percentile"`. Defaults to
            `"entropy"`.
        size: int. Images to sample when `data` is a source. Defaults to 300.
        seed: int. Sampling seed. Defaults to 0.
        stem: str or None. File base name. Defaults to the ONNX file's stem.
        flavours: tuple of str. Q/DQ models to write (`"u8s8"`, `"s8s8"`).
            Defaults to both.
        trt_version: str or None. TensorRT version of the target device for
            the cache header, or None for the installed TensorRT, else
            `trt_cache.DEFAULT_TRT_VERSION`. A TensorRT >= 11 writes no cache.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        sensitivity_images: list of uint8 arrays or None. With images, run
            the sensitivity search on them (held-out images) and keep the
            worst blocks float. The search runs on the strictest flavour
            written (S8S8 when asked for, else U8S8) and its float blocks
            apply to every flavour. Defaults to None.
        sensitivity_thresholds: `edgedet.thresholds.Thresholds` or None. What the
            search must reach; None: the INT8 parity defaults. Defaults to
            None.
        force: bool. Replace existing files. Defaults to False.
        progress: callable or None. Called with one message per step.
        cpu: str. CPU class the U8S8 model is for (`edgedet.cpu`: `"vnni"`,
            `"avx512"`, `"avx2"`, `"arm"`) or `"auto"` for this machine's.
            Defaults to `"auto"`.

    Returns:
        A `CalibrationResult`.
    """
    import onnx

    from edgedet.files import atomic_write_text, check_writable_output

    notify = progress or (lambda message: None)
    onnx_model = Path(onnx_model)
    stem = stem or onnx_model.stem
    paths = artifact_paths(out_dir, stem)
    wanted = [*flavours, "json"]
    trt_version = trt_version or installed_trt_version() or trt_cache.DEFAULT_TRT_VERSION
    write_cache = trt_cache.parse_version(trt_version)[0] < 11
    if write_cache:
        trt_cache.version_code(trt_version)  # Fail early on an unsupported version.
        wanted.append("cache")
    for kind in wanted:
        check_writable_output(paths[kind], force)
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    proto = onnx.load(str(onnx_model))
    metadata = read_onnx_metadata(proto)
    body = find_body(proto, quantize_head=quantize_head)
    if not isinstance(data, CalibrationData):
        data = calibration_data(data, size=size, seed=seed)
    notify(f"calibrating ({method}) on {len(data)} images from {data.source}")
    ranges = collect_ranges(proto, data, method=method, body=body)

    sensitivity = None
    exclude = ()
    if sensitivity_images:
        from edgedet.calibration.sensitivity import search

        # Symmetric int8 activations lose the most: blocks that S8S8 needs in
        # float are the ones U8S8 would need too.
        searched = "s8s8" if "s8s8" in flavours else "u8s8"
        notify(f"sensitivity search ({searched.upper()}) on {len(sensitivity_images)} "
               "held-out images")
        sensitivity = search(proto, ranges, sensitivity_images, flavour=searched,
                             thresholds=sensitivity_thresholds, quantize_head=quantize_head,
                             progress=notify, cpu=cpu)
        exclude = tuple(sensitivity.float_nodes)
        body = find_body(proto, quantize_head=quantize_head, exclude=exclude)

    for flavour in flavours:
        notify(f"writing {flavour.upper()} Q/DQ model {paths[flavour]}")
        quantized = quantize(proto, ranges, paths[flavour], flavour=flavour, body=body, cpu=cpu)
        problems = check_placement(quantized, body)
        if problems:
            raise ValueError("Q/DQ placement check failed: " + "; ".join(problems[:5]))

    record = make_record(metadata, ranges, data, body, onnx_model.name,
                         files={kind: paths[kind].name for kind in wanted if kind != "json"},
                         model_bytes=b"" if metadata.source_sha256 else proto.SerializeToString())
    if sensitivity is not None:
        record["sensitivity"] = sensitivity.to_dict()
    if write_cache:
        text, algorithm, count = cache_text(proto, ranges, body, trt_version)
        atomic_write_text(paths["cache"], text)
        record["tensorrt_cache"] = {
            "file": paths["cache"].name, "trt_version": trt_version, "algorithm": algorithm,
            "tensors": count, "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
        notify(f"wrote TensorRT {trt_version} calibration cache {paths['cache']}")
    atomic_write_text(paths["json"], json.dumps(record, indent=2, sort_keys=True))
    written = {kind: paths[kind] for kind in wanted}
    return CalibrationResult(paths=written, record=record, ranges=ranges, sensitivity=sensitivity)


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
                 "quantized_nodes": len(body.quantize), "quantize_head": not body.float_head},
        "files": dict(files or {}),
        "ranges": ranges.to_dict()["ranges"],
    }


def cache_text(model, ranges, body, trt_version):
    """TensorRT cache text for the body's quantized tensors; `(text, algorithm, count)`."""
    algorithm = trt_cache.ALGORITHM_OF_METHOD[ranges.method]
    scales = trt_cache.scales_from_ranges(ranges, _quantized_tensors(model, body))
    return trt_cache.format_cache(scales, trt_version, algorithm), algorithm, len(scales)


def _quantized_tensors(model, body):
    from edgedet.calibration.qdq import body_tensors

    return sorted(body_tensors(model, body))


def installed_trt_version():
    """`tensorrt.__version__` if TensorRT is importable here, else None (never imports it
    when it is not installed)."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        import tensorrt

        return tensorrt.__version__
    except Exception:  # noqa: BLE001 - a broken TensorRT install is "not installed".
        return None


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
