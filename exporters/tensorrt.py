"""TensorRT exporter: a plain `.engine` plus a sidecar JSON, built on the target device.

The engine is exactly what `IBuilder.build_serialized_network` returns (no
header glued on), so trtexec, DeepStream and plain TensorRT load it. Next to
it, `<engine>.json` holds the edgedet metadata with a `tensorrt` entry
(TensorRT version, GPU and compute capability, precision, INT8 mode,
optimization profile, hashes of the ONNX and calibration cache it was built
from); the TensorRT runtime (`edgedet.runtimes.trt`) reads it.

Everything that talks to TensorRT is in `build_engine`, written against the
TensorRT 8.5 / 10 / 11 Python API and imported lazily. What each TensorRT
version is built from (`build_plan`), the ONNX preparation and the `trtexec`
/ `edgedet` command lines are in `edgedet.exporters.tensorrt_plan`, which
does not import TensorRT. Without TensorRT or a GPU,
`export_without_tensorrt` writes the TensorRT-ready ONNX (and INT8
calibration cache) and raises `TensorRTUnavailableError` with the exact
`trtexec` and `edgedet` commands to build the engine on the device.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

from edgedet.exporters.base import INPUT_NAME, ExportError, stage
from edgedet.exporters.parity_bundle import bundle_images, bundle_path, write_parity_bundle
from edgedet.exporters.tensorrt_plan import (
    TARGET,
    BuildOptions,
    build_plan,
    edgedet_command,
    fp16_onnx,
    prepare_onnx,
    sidecar_path,
    trtexec_command,
    version_tuple,
)
from edgedet.files import atomic_write_bytes, atomic_write_text, check_writable_output


class TensorRTUnavailableError(ExportError):
    """TensorRT or a GPU is missing: the TensorRT-ready files were written instead."""


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# TensorRT (only here).


def build_and_describe(onnx_bytes, options, cache_text, **facts):
    """`build_engine`, then the facts the sidecar records about the build and the GPU."""
    from edgedet import cuda

    engine, built = build_engine(onnx_bytes, options, cache_text)
    device = cuda.cuda_device() or {}
    built.update(
        gpu=device.get("name"), compute_capability=device.get("compute_capability"),
        precision=options.precision,
        int8_mode=options.int8_mode if options.precision == "int8" else None,
        profile={"min": options.shapes[0], "opt": options.shapes[1], "max": options.shapes[2]},
        workspace_mib=options.workspace_mib, dla_core=options.dla_core,
        onnx_sha256=_sha256(onnx_bytes),
        calib_cache_sha256=_sha256(cache_text.encode()) if cache_text else None,
        **facts,
    )
    return engine, built


def build_engine(onnx_bytes, options, calib_cache_text=None, logger=None):
    """Builds a serialized engine with the installed TensorRT.

    Args:
        onnx_bytes: bytes. The ONNX prepared for this TensorRT (`build_plan`,
            `prepare_onnx`).
        options: `BuildOptions`.
        calib_cache_text: str or None. TensorRT calibration cache (implicit
            INT8), with this TensorRT's header.
        logger: `tensorrt.ILogger` or None. Defaults to a WARNING logger.

    Returns:
        `(engine bytes, facts dict)`.
    """
    import tensorrt as trt

    plan = build_plan(options, trt.__version__)
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if version_tuple(trt.__version__)[0] < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if plan["strongly_typed"] and strongly_typed is not None:  # Always on (no flag) in 11+.
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with stage(TARGET, "parse ONNX"):
        if not parser.parse(onnx_bytes):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise ExportError(TARGET, "parse ONNX", "; ".join(errors) or "unknown parser error")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    profile = builder.create_optimization_profile()
    minimum, optimum, maximum = ((b, h, w, 3) for b, h, w in options.shapes)
    profile.set_shape(INPUT_NAME, minimum, optimum, maximum)
    config.add_optimization_profile(profile)
    for name in plan["flags"]:
        config.set_flag(getattr(trt.BuilderFlag, name))
    pinned = 0
    if not plan["strongly_typed"] and {"FP16", "INT8"} & set(plan["flags"]):
        pinned = keep_nms_fp32(trt, network, config)
    if plan["calibration_cache"]:
        config.int8_calibrator = _cache_calibrator(trt, calib_cache_text)
        config.set_calibration_profile(profile)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
    timing_path = Path(options.timing_cache) if options.timing_cache else None
    if timing_path is not None:
        data = timing_path.read_bytes() if timing_path.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(data), False)

    with stage(TARGET, "build"):
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ExportError(TARGET, "build",
                              "TensorRT could not build the engine (see its log above).")
    if timing_path is not None:
        atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    facts = {"version": trt.__version__, "strongly_typed": plan["strongly_typed"],
             "flags": plan["flags"], "input_dtype": plan["input_dtype"],
             "nms_fp32_layers": pinned}
    return bytes(serialized), facts


def keep_nms_fp32(trt, network, config):
    """Keeps the NMS and the layers making its boxes and scores FP32 in an FP16/INT8
    (weakly typed) build: the builder would otherwise be free to run them in FP16,
    where box coordinates lose precision. Strongly typed builds take the ONNX's
    types (the NMS inputs are float32 there; `trt_lint` checks it). The one-to-one
    head's TopK layers (`edgedet.topk`) are kept FP32 the same way: FP16 scores
    would reorder close candidates.

    Returns:
        The number of layers pinned.
    """
    kinds = {getattr(trt.LayerType, name, None) for name in ("NMS", "TOPK")} - {None}
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    nms_inputs, pinned = set(), 0
    for layer in layers:
        if layer.type in kinds:
            layer.precision = trt.float32
            pinned += 1
            nms_inputs.update(layer.get_input(j).name for j in range(min(2, layer.num_inputs)))
    for layer in layers:
        for j in range(layer.num_outputs):
            if layer.get_output(j).name in nms_inputs:
                layer.precision = trt.float32
                layer.set_output_type(j, trt.float32)
                pinned += 1
    flag = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None)
    if pinned and flag is not None:
        config.set_flag(flag)
    return pinned


def _cache_calibrator(trt, cache_text):
    """A calibrator that only hands TensorRT a cache (TensorRT never asks for a batch)."""
    if not cache_text:
        raise ValueError("Implicit INT8 needs a calibration cache.")
    header = cache_text.splitlines()[0]
    base = trt.IInt8MinMaxCalibrator if "MinMax" in header else trt.IInt8EntropyCalibrator2
    payload = cache_text.encode()

    class CacheCalibrator(base):
        def __init__(self):
            base.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None  # Everything comes from the cache.

        def read_calibration_cache(self):
            return payload

        def write_calibration_cache(self, cache):
            return None

    return CacheCalibrator()


# --------------------------------------------------------------------------
# Exporters.


def _onnx_for(plan_onnx, end_to_end, metadata, session):
    """The source ONNX `ModelProto` for a plan (`fp32`, `fp16` or `s8s8`)."""
    from edgedet.calibration.session import ExportCalibration

    session = session or ExportCalibration()
    fp32 = session.fp32_onnx(end_to_end, metadata)
    if plan_onnx == "fp32":
        return fp32
    if plan_onnx == "fp16":
        return fp16_onnx(fp32)
    return session.qdq(end_to_end, metadata, "s8s8")


def _files(path):
    """`(onnx path, calibration cache path)` next to an engine path: `<stem>_trt.onnx`,
    `<stem>.calib.cache`."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}_trt.onnx"), path.with_name(f"{stem}.calib.cache")


def lint_or_refuse(model, version, options):
    """Runs the TensorRT lint (`edgedet.exporters.trt_lint`) on the ONNX TensorRT will
    parse; raises `ExportError` (stage "lint") listing every broken rule."""
    from edgedet.exporters.trt_lint import lint_onnx

    report = lint_onnx(model, version, max_batch=options.shapes[2][0])
    if not report:
        raise ExportError(TARGET, "lint", report.text())
    return report


# Keyword arguments only the fallback reads (what to print); the builder ignores them.
_CONTEXT = ("trt_version", "model_spec", "calib_data", "reason")


def _options(precision, options):
    """`BuildOptions` from keyword arguments (context-only keys dropped)."""
    if isinstance(options.get("options"), BuildOptions):
        return options["options"]
    fields = {k: v for k, v in options.items() if k not in _CONTEXT}
    return BuildOptions(precision=precision, **fields)


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None, **options):
    """Builds a TensorRT engine of `end_to_end` at `path` (with the sidecar JSON).

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata` (target `"trt"`).
        path: str or path. The `.engine` file.
        force: bool. Replace existing files. Defaults to False.
        precision: str. `"fp32"`, `"fp16"` or `"int8"`. Defaults to `"fp32"`.
        session: `edgedet.calibration.session.ExportCalibration` or None:
            calibration data and the FP32 ONNX shared with other targets.
        **options: `BuildOptions` fields (`int8_mode`, `shapes`,
            `workspace_mib`, `timing_cache`, `dla_core`, `calib_cache`).

    Returns:
        `path` as a `pathlib.Path`.
    """
    import tensorrt as trt


    options = _options(precision, options)
    path = check_writable_output(path, force)
    sidecar = check_writable_output(sidecar_path(path), force)
    bundle = check_writable_output(bundle_path(path), force)
    version = trt.__version__
    plan = build_plan(options, version)
    with stage(TARGET, "prepare ONNX"):
        model = prepare_onnx(_onnx_for(plan["onnx"], end_to_end, metadata, session), version)
        onnx_bytes = model.SerializeToString()
    lint_or_refuse(model, version, options)
    cache_text = None
    if plan["calibration_cache"]:
        cache_text = _calibration_cache(end_to_end, metadata, session, options, version)
    engine, facts = build_and_describe(onnx_bytes, options, cache_text)
    with stage(TARGET, "write"):
        atomic_write_bytes(path, engine)
        atomic_write_text(sidecar, sidecar_json(metadata, options.precision, facts))
    with stage(TARGET, "parity bundle"):
        write_parity_bundle(end_to_end, metadata, bundle, force=force,
                            images=bundle_images(session))
    return Path(path)


def sidecar_json(metadata, precision, facts):
    """The sidecar's text: the edgedet metadata with `extra["tensorrt"] = facts`."""
    sidecar = dataclasses.replace(
        metadata, target=TARGET, precision=precision,
        extra={**metadata.extra, "tensorrt": facts},
    )
    return sidecar.to_json()


def _calibration_cache(end_to_end, metadata, session, options, version):
    """This TensorRT's cache text: the given cache (checked) or a fresh calibration."""
    from edgedet.calibration.record import cache_for_version, json_path_for_cache, load_record
    from edgedet.calibration.session import ExportCalibration
    from edgedet.calibration.trt_cache import check_key

    session = session or ExportCalibration()
    if options.calib_cache:
        cache = Path(options.calib_cache)
        record = load_record(json_path_for_cache(cache))
        expected = session.key(end_to_end, metadata, record.get("data_key"))
        check_key(record, expected, cache=f"Calibration cache '{cache}'")
        return cache_for_version(cache.read_text(), version)
    return session.cache_text(end_to_end, metadata, version)


def _implicit_allowed(metadata, version):
    """False where the head cannot be built with implicit INT8 on `version`
    (`edgedet.exporters.head_support`: the one-to-one head on TensorRT 10.3)."""
    from edgedet.exporters.head_support import refusal

    options = {"int8_mode": "implicit", "trt_version": version}
    return refusal(metadata.inference.head, TARGET, "int8", options) is None


def export_without_tensorrt(end_to_end, metadata, path, force=False, precision="fp32",
                            session=None, trt_version=None, model_spec=None, calib_data=None,
                            reason=None, **options):
    """Writes the TensorRT-ready files and raises `TensorRTUnavailableError` explaining
    how to build the engine on the device.

    Next to the engine path `<stem>.engine` it writes `<stem>_trt.onnx`
    (FP32; for INT8 the S8S8 Q/DQ model), and for INT8 also the FP32
    `<stem>_fp32_trt.onnx`, the calibration cache `<stem>.calib.cache` and
    its `<stem>.calib.json` for implicit builds. The input is float32 when
    the device's TensorRT is 8.x. The error's message has the `trtexec` and
    `edgedet` lines to run on the device; `error.written` lists the files.

    Args:
        trt_version: str or None. TensorRT version of the target device.
            Defaults to `edgedet.calibration.trt_cache.DEFAULT_TRT_VERSION`.
        model_spec: str or None. How the user named the model (for the
            printed `edgedet` line). Defaults to `"MODEL"`.
        calib_data: str or None. Calibration source, for the printed line.
        reason: str or None. Why TensorRT cannot run here. Defaults to what
            the target registry finds this machine lacks.
        Other args: as `export`.
    """
    from edgedet.calibration.session import ExportCalibration
    from edgedet.calibration.trt_cache import DEFAULT_TRT_VERSION
    from edgedet.exporters.registry import get_target

    if reason is None:
        lacks = get_target(TARGET).unavailable_reason()
        reason = f"this machine {lacks}" if lacks else "TensorRT is not installed"
    options = _options(precision, options)
    version = trt_version or DEFAULT_TRT_VERSION
    build_plan(options, version)  # Fails early on an impossible combination.
    session = session or ExportCalibration()
    onnx_path, cache_path = _files(path)
    engine_name = Path(path).name
    stem = onnx_path.name[: -len("_trt.onnx")]
    fp32_path = onnx_path.with_name(f"{stem}_fp32_trt.onnx")
    record_path = cache_path.with_name(f"{stem}.calib.json")
    int8 = options.precision == "int8"
    bundle = bundle_path(path)
    planned = [onnx_path] + ([fp32_path, cache_path, record_path] if int8 else []) + [bundle]
    for file in planned:
        check_writable_output(file, force)

    commands = []
    with stage(TARGET, "prepare ONNX"):
        if int8:
            explicit = dataclasses.replace(options, int8_mode="explicit")
            implicit = dataclasses.replace(options, int8_mode="implicit",
                                           calib_cache=cache_path.name)
            qdq = prepare_onnx(_onnx_for("s8s8", end_to_end, metadata, session), version)
            lint_or_refuse(qdq, version, options)
            atomic_write_bytes(onnx_path, qdq.SerializeToString())
            commands.append(("explicit INT8 (Q/DQ)", trtexec_command(
                onnx_path.name, engine_name, explicit, version)))
            fp32 = prepare_onnx(_onnx_for("fp32", end_to_end, metadata, session), version)
            lint_or_refuse(fp32, version, options)
            atomic_write_bytes(fp32_path, fp32.SerializeToString())
            if version_tuple(version)[0] < 11 and _implicit_allowed(metadata, version):
                text, record = session.tensorrt_cache(end_to_end, metadata, version,
                                                      cache_path.name)
                atomic_write_text(cache_path, text)
                atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True))
                commands.append(("implicit INT8 (calibration cache, TensorRT 8.x/10.x)",
                                 trtexec_command(fp32_path.name, engine_name, implicit, version,
                                                 cache_path.name)))
            else:
                planned = [onnx_path, fp32_path, bundle]
            if options.int8_mode == "implicit":
                commands.reverse()
        else:
            plan = build_plan(options, version)
            model = prepare_onnx(_onnx_for(plan["onnx"], end_to_end, metadata, session), version)
            lint_or_refuse(model, version, options)
            atomic_write_bytes(onnx_path, model.SerializeToString())
            commands.append((options.precision.upper(), trtexec_command(
                onnx_path.name, engine_name, options, version)))
    with stage(TARGET, "parity bundle"):
        write_parity_bundle(end_to_end, metadata, bundle, force=force,
                            images=bundle_images(session))
    out_dir = Path(path).parent
    edgedet_line = edgedet_command(model_spec or "MODEL", out_dir, options, calib_data)
    lines = "\n".join(f"  # {label}\n  {command}" for label, command in commands)
    engine_onnx = onnx_path.name if not (int8 and options.int8_mode == "implicit") \
        else fp32_path.name
    device_args = ["edgedet", "engine", engine_onnx, "--precision", options.precision,
                   "--out", engine_name]
    if int8 and options.int8_mode == "implicit":
        device_args += ["--int8-mode", "implicit", "--calib-cache", cache_path.name]
    device_lines = (f"  {' '.join(device_args)}\n"
                    f"  edgedet parity --reference {bundle.name} {engine_name} --out parity")
    error = TensorRTUnavailableError(
        TARGET, "build",
        f"cannot build a TensorRT engine here: {reason}. Engines are specific to the GPU and "
        f"TensorRT version, so build it on the target device. Wrote the TensorRT-ready files: "
        f"{', '.join(str(p) for p in planned)}.\n"
        f"On the device (TensorRT {version}), in '{out_dir}', run:\n{lines}\n"
        f"or, with edgedet's device install there (no TensorFlow; see the README):\n"
        f"{device_lines}\n"
        f"or, with the full edgedet there (pip install 'edgedet[gpu]'):\n  {edgedet_line}",
    )
    error.written = [str(p) for p in planned]
    raise error

