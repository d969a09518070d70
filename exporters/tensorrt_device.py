"""The device half of the TensorRT target: an engine from the workstation's TensorRT-ready ONNX.

`edgedet engine` runs this on the Jetson / GPU server, where TensorFlow and
Keras are not installed: the ONNX written by `edgedet export --target trt`
carries the edgedet metadata, and is prepared and linted for this TensorRT
as `edgedet.exporters.tensorrt.export` does.
"""

from pathlib import Path

from edgedet.exporters.base import stage
from edgedet.exporters.tensorrt import build_and_describe, lint_or_refuse, sidecar_json
from edgedet.exporters.tensorrt_plan import (
    TARGET,
    BuildOptions,
    build_plan,
    prepare_onnx,
    sidecar_path,
)
from edgedet.files import atomic_write_bytes, atomic_write_text, check_writable_output


def onnx_kind(model):
    """What a TensorRT-ready ONNX holds: `"s8s8"` (Q/DQ), `"fp16"` (FP16 body) or `"fp32"`."""
    import onnx

    if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        return "s8s8"
    if any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def build_from_onnx(onnx_path, engine_path, force=False, calib_cache=None, **options):
    """Builds an engine (+ sidecar) on the device from the TensorRT-ready ONNX the
    workstation wrote: no TensorFlow or Keras needed.

    The ONNX carries the edgedet metadata; it is prepared for this TensorRT
    (`prepare_onnx`) and linted (`lint_or_refuse`) like `export` does.

    Args:
        onnx_path: path. `<stem>_trt.onnx` (FP32), `<stem>_fp16_trt.onnx`, or
            the Q/DQ `<stem>_int8_trt.onnx`; which one a precision needs on
            this TensorRT follows `build_plan`.
        engine_path: path. The `.engine` to write.
        force: bool. Replace existing files. Defaults to False.
        calib_cache: path or None. The calibration cache for implicit INT8
            (its header is rewritten for this TensorRT). Defaults to None.
        **options: `BuildOptions` fields (`precision`, `int8_mode`, `shapes`,
            `workspace_mib`, `timing_cache`, `dla_core`).

    Returns:
        `engine_path` as a `pathlib.Path`.

    Raises:
        ValueError: the ONNX does not fit the precision (naming the file to
            use), or it carries no edgedet metadata.
    """
    import onnx
    import tensorrt as trt

    from edgedet.calibration.trt_cache import format_cache, parse_cache
    from edgedet.metadata import METADATA_KEY, ArtifactMetadata

    options = BuildOptions(**options)
    engine_path = check_writable_output(engine_path, force)
    sidecar = check_writable_output(sidecar_path(engine_path), force)
    version = trt.__version__
    plan = build_plan(options, version)
    source = onnx.load(str(onnx_path))
    kind = onnx_kind(source)
    if kind != plan["onnx"]:
        wanted = {"fp32": "the FP32 <stem>_trt.onnx (or <stem>_int8_fp32_trt.onnx)",
                  "fp16": "the <stem>_fp16_trt.onnx",
                  "s8s8": "the Q/DQ <stem>_int8_trt.onnx"}[plan["onnx"]]
        raise ValueError(
            f"'{onnx_path}' is a {kind} ONNX; a {options.precision} engine "
            f"({options.int8_mode if options.precision == 'int8' else 'default'} mode) on "
            f"TensorRT {version} is built from {wanted}.")
    props = {p.key: p.value for p in source.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"'{onnx_path}' has no edgedet metadata: export it with edgedet.")
    metadata = ArtifactMetadata.from_json(props[METADATA_KEY], source=str(onnx_path))
    cache_text = None
    if plan["calibration_cache"]:
        if calib_cache is None:
            raise ValueError("Implicit INT8 needs the calibration cache (--calib-cache).")
        header, scales = parse_cache(Path(calib_cache).read_text())
        cache_text = format_cache(scales, version, header["algorithm"])
    with stage(TARGET, "prepare ONNX"):
        model = prepare_onnx(source, version)
    lint_or_refuse(model, version, options)
    onnx_bytes = model.SerializeToString()
    engine, facts = build_and_describe(onnx_bytes, options, cache_text,
                                       built_from=Path(onnx_path).name)
    with stage(TARGET, "write"):
        atomic_write_bytes(engine_path, engine)
        atomic_write_text(sidecar, sidecar_json(metadata, options.precision, facts))
    return Path(engine_path)
