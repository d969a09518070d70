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
import json
from pathlib import Path

from edgedet.calibration import trt_cache
from edgedet.calibration.data import DEFAULT_SIZE, CalibrationData, calibration_data
from edgedet.calibration.pipeline import Int8Pipeline
from edgedet.calibration.qdq import DEFAULT_METHOD
from edgedet.calibration.record import read_onnx_metadata

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
        method: str. One of `edgedet.calibration.methods.METHODS`. Defaults
            to `"p90_min_max"`.
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

    from edgedet.files import atomic_write_bytes, atomic_write_text, check_writable_output

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
    if not isinstance(data, CalibrationData):
        data = calibration_data(data, size=size, seed=seed)
    pipeline = Int8Pipeline(proto, data, method=method, quantize_head=quantize_head, cpu=cpu,
                            progress=notify)
    if sensitivity_images:
        # Symmetric int8 activations lose the most: blocks that S8S8 needs in
        # float are the ones U8S8 would need too.
        pipeline.search_sensitivity(sensitivity_images,
                                    flavour="s8s8" if "s8s8" in flavours else "u8s8",
                                    thresholds=sensitivity_thresholds)
    for flavour in flavours:
        notify(f"writing {flavour.upper()} Q/DQ model {paths[flavour]}")
        atomic_write_bytes(paths[flavour], pipeline.qdq(flavour).SerializeToString())

    record = pipeline.record(metadata, onnx_model.name,
                             files={kind: paths[kind].name for kind in wanted if kind != "json"},
                             model_bytes=(b"" if metadata.source_sha256
                                          else proto.SerializeToString()))
    if write_cache:
        text, record["tensorrt_cache"] = pipeline.tensorrt_cache(trt_version, paths["cache"].name)
        atomic_write_text(paths["cache"], text)
        notify(f"wrote TensorRT {trt_version} calibration cache {paths['cache']}")
    atomic_write_text(paths["json"], json.dumps(record, indent=2, sort_keys=True))
    written = {kind: paths[kind] for kind in wanted}
    return CalibrationResult(paths=written, record=record, ranges=pipeline.ranges,
                             sensitivity=pipeline.sensitivity)


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
