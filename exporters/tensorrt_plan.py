"""Planning a TensorRT build, without importing TensorRT.

This module holds the build options (`BuildOptions`, `parse_shape`), which
ONNX and which builder settings each TensorRT version gets (`build_plan`),
the ONNX as that version's parser accepts it (`prepare_onnx`, `fp16_onnx`),
and the `trtexec` and `edgedet` command lines that build the same engine on
the device. The builder itself, the sidecar JSON and the exporters are in
`edgedet.exporters.tensorrt`.

What is built from what (`build_plan`):

| precision | TensorRT 8.5 / 8.6              | TensorRT 10.x                     | TensorRT 11+               |
| --------- | ------------------------------- | --------------------------------- | -------------------------- |
| fp32      | FP32 ONNX                       | FP32 ONNX                         | FP32 ONNX, strongly typed  |
| fp16      | FP32 ONNX + `BuilderFlag.FP16`  | FP32 ONNX + `BuilderFlag.FP16`    | FP16 ONNX (body), strongly typed |
| int8, explicit (default) | S8S8 Q/DQ ONNX + `INT8`,`FP16` flags | S8S8 Q/DQ ONNX, strongly typed | S8S8 Q/DQ ONNX, strongly typed |
| int8, implicit | FP32 ONNX + `INT8` + calibration cache | same (deprecated API) | not available |

TensorRT 8.x's ONNX parser has no UINT8 tensors, so for 8.x the engine's
`images` input is float32 (0-255, same values; the runtime casts). From 10
on it is uint8, as in every other artifact.
"""  # noqa: E501 (the build_plan table)

import dataclasses
import shlex
from pathlib import Path

from edgedet.exporters.base import INPUT_NAME

TARGET = "trt"
PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("explicit", "implicit")
SIDECAR_SUFFIX = ".json"
# (batch, height, width) of the `images` input: min / opt / max.
DEFAULT_SHAPES = ((1, 32, 32), (1, 720, 1280), (1, 2160, 3840))
DEFAULT_WORKSPACE_MIB = 4096


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How to build an engine.

    Args:
        precision: str. `"fp32"`, `"fp16"` or `"int8"`. Defaults to `"fp32"`.
        int8_mode: str. `"explicit"` (Q/DQ ONNX) or `"implicit"` (FP32 ONNX
            and a calibration cache; TensorRT 8.x / 10.x only). Defaults to
            `"explicit"`.
        shapes: three `(batch, height, width)`: the optimization profile's
            min / opt / max input sizes. Defaults to `DEFAULT_SHAPES`.
        workspace_mib: int. Builder workspace limit in MiB. Defaults to 4096.
        timing_cache: str, path or None. Timing cache file, read if present
            and written back after the build. Defaults to None.
        dla_core: int or None. Build for this DLA core (Jetson), with GPU
            fallback; needs fp16 or int8. Defaults to None.
        calib_cache: str, path or None. An existing calibration cache for
            implicit INT8 (checked against its calibration JSON). Defaults
            to None: calibrate now.
    """

    precision: str = "fp32"
    int8_mode: str = "explicit"
    shapes: tuple = DEFAULT_SHAPES
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    timing_cache: object = None
    dla_core: object = None
    calib_cache: object = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"Invalid TensorRT precision '{self.precision}'. "
                f"Expected one of {list(PRECISIONS)}."
            )
        if self.int8_mode not in INT8_MODES:
            raise ValueError(
                f"Invalid INT8 mode '{self.int8_mode}'. Expected one of {list(INT8_MODES)}."
            )
        shapes = tuple(tuple(int(v) for v in shape) for shape in self.shapes)
        if len(shapes) != 3 or any(len(s) != 3 or min(s) < 1 for s in shapes):
            raise ValueError(
                f"Invalid optimization profile {self.shapes!r}. Expected three (batch, height, "
                "width) tuples of positive ints: min, opt, max."
            )
        if any(not (a <= b <= c) for a, b, c in zip(*shapes)):
            raise ValueError(
                f"Invalid optimization profile {shapes}: every dimension must satisfy "
                "min <= opt <= max."
            )
        object.__setattr__(self, "shapes", shapes)
        if not isinstance(self.workspace_mib, int) or self.workspace_mib < 1:
            raise ValueError(
                f"Invalid workspace: {self.workspace_mib!r} MiB. Expected an int >= 1.")
        if self.dla_core is not None:
            if not isinstance(self.dla_core, int) or self.dla_core < 0:
                raise ValueError(f"Invalid DLA core: {self.dla_core!r}. Expected an int >= 0.")
            if self.precision == "fp32":
                raise ValueError("DLA runs fp16 or int8 only; "
                                 "use --precision fp16 or int8 with a DLA core.")


def parse_shape(text):
    """`"1x720x1280"` or `"720x1280"` (batch 1) -> `(batch, height, width)`."""
    try:
        values = tuple(int(v) for v in str(text).lower().split("x"))
    except ValueError:
        values = ()
    if len(values) == 2:
        values = (1, *values)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(
            f"Invalid input shape {text!r}. Expected 'HxW' or 'BxHxW', e.g. '720x1280'.")
    return values


def version_tuple(version):
    """`"10.3.0.26"` -> `(10, 3, 0)`."""
    from edgedet.calibration.trt_cache import parse_version

    return parse_version(version)


def build_plan(options, trt_version):
    """Which ONNX to build from and which network/builder settings, for a TensorRT version.

    Returns:
        dict: `onnx` (`"fp32"`, `"fp16"` or `"s8s8"`), `strongly_typed`,
        `flags` (builder flag names), `calibration_cache` (bool),
        `input_dtype` (`"uint8"` or `"float32"`).

    Raises:
        ValueError: a combination this TensorRT cannot build (implicit INT8
            on 11+, versions before 8.5).
    """
    major, minor, _ = version_tuple(trt_version)
    if (major, minor) < (8, 5):
        raise ValueError(f"TensorRT {trt_version} is not supported: edgedet needs 8.5 or later.")
    plan = {"onnx": "fp32", "strongly_typed": major >= 11, "flags": [],
            "calibration_cache": False, "input_dtype": "uint8" if major >= 10 else "float32"}
    if options.precision == "fp16":
        if major >= 11:
            plan["onnx"] = "fp16"
        else:
            plan["flags"] = ["FP16"]
    elif options.precision == "int8":
        if options.int8_mode == "implicit":
            if major >= 11:
                raise ValueError(
                    f"TensorRT {trt_version} has no implicit INT8 (BuilderFlag.INT8 and "
                    "calibrators were removed in 11): use the default explicit INT8 (Q/DQ)."
                )
            plan.update(flags=["INT8", "FP16"], calibration_cache=True)
        else:
            plan["onnx"] = "s8s8"
            if major >= 10:
                plan["strongly_typed"] = True
            else:
                plan["flags"] = ["INT8", "FP16"]  # 8.x reads Q/DQ only with the INT8 flag.
    if options.dla_core is not None:
        plan["flags"] = sorted(set(plan["flags"]) | {"GPU_FALLBACK"})
    return plan


def prepare_onnx(model, trt_version):
    """The ONNX model as the given TensorRT's parser accepts it (a copy).

    The NMS runs per image (`edgedet.exporters.trt_nms`: TensorRT's NMS caps
    the boxes per batch item). TensorRT 8.x has no UINT8 tensors: the
    `images` input becomes float32 (the graph's first op casts it to float
    anyway).
    """
    import onnx

    from edgedet.exporters.trt_nms import per_image_nms

    prepared = per_image_nms(model)
    if version_tuple(trt_version)[0] < 10:
        for graph_input in prepared.graph.input:
            if graph_input.name == INPUT_NAME:
                graph_input.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return prepared


def fp16_onnx(model):
    """FP16 body of an FP32 end-to-end ONNX (for strongly typed FP16 builds).

    Only the network body is converted (`edgedet.calibration.body`); the
    letterbox, decode and NMS stay float32, with casts at the boundary.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from edgedet.calibration.body import find_body

    body = set(find_body(model).nodes)
    keep = [node.name for node in model.graph.node if node.name not in body]
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # The converter edits the model it is given.
    half = convert_float_to_float16(copy, keep_io_types=True, node_block_list=keep,
                                    disable_shape_infer=True)
    return drop_fp16_round_trips(half)


def drop_fp16_round_trips(model):
    """Removes float32 -> float16 -> float32 Cast pairs (in place; returns `model`).

    onnxruntime's float16 converter puts such a pair on tensors passing
    between two blocked (float32) nodes, e.g. the NMS candidates: FP16
    rounding there moves boxes by up to 0.25 px at 640 and overflows past
    65504. Consumers of the second Cast read the float32 tensor instead.
    """
    from onnx import TensorProto

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    types = {i.name: i.type.tensor_type.elem_type
             for i in list(graph.input) + list(graph.value_info) + list(graph.output)}

    def cast_to(node):
        return next((a.i for a in node.attribute if a.name == "to"), None)

    bypass = {}
    for node in graph.node:
        first = producers.get(node.input[0]) if node.op_type == "Cast" else None
        if (first is not None and first.op_type == "Cast"
                and cast_to(node) == TensorProto.FLOAT and cast_to(first) == TensorProto.FLOAT16
                and types.get(first.input[0], TensorProto.FLOAT) == TensorProto.FLOAT):
            bypass[node.output[0]] = first.input[0]
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in bypass:
                node.input[index] = bypass[name]
    dead = [n for n in graph.node if n.op_type == "Cast" and n.output[0] in bypass
            and n.output[0] not in outputs]
    for node in dead:
        graph.node.remove(node)
    used = {i for n in graph.node for i in n.input} | outputs
    for node in [n for n in graph.node if n.op_type == "Cast" and n.output[0] not in used]:
        graph.node.remove(node)
    return model


def _shape_arg(shape):
    batch, height, width = shape
    return f"{INPUT_NAME}:{batch}x{height}x{width}x3"


def trtexec_command(onnx_path, engine_path, options, trt_version, calib_cache=None):
    """The `trtexec` line that builds the same engine as `build_engine`.

    Args:
        onnx_path: path. The ONNX to build from (see `build_plan`).
        engine_path: path. Where to save the engine.
        options: `BuildOptions`.
        trt_version: str. TensorRT version of the device.
        calib_cache: path or None. The calibration cache (implicit INT8).
    """
    plan = build_plan(options, trt_version)
    minimum, optimum, maximum = options.shapes
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
            f"--minShapes={_shape_arg(minimum)}", f"--optShapes={_shape_arg(optimum)}",
            f"--maxShapes={_shape_arg(maximum)}",
            f"--memPoolSize=workspace:{options.workspace_mib}"]
    if plan["strongly_typed"] and version_tuple(trt_version)[0] < 11:
        args.append("--stronglyTyped")
    if "FP16" in plan["flags"]:
        args.append("--fp16")
    if "INT8" in plan["flags"]:
        args.append("--int8")
    if plan["calibration_cache"]:
        if calib_cache is None:
            raise ValueError("Implicit INT8 needs a calibration cache.")
        args.append(f"--calib={calib_cache}")
    if options.timing_cache:
        args.append(f"--timingCacheFile={options.timing_cache}")
    if options.dla_core is not None:
        args += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    return " ".join(shlex.quote(str(a)) for a in args)


def edgedet_command(model_spec, out_dir, options, calib_data=None):
    """The `edgedet export` line to run on the device instead."""
    args = ["edgedet", "export", "--model", str(model_spec), "--target", "trt",
            "--precision", options.precision, "--out", str(out_dir)]
    if options.precision == "int8":
        if options.int8_mode == "implicit":
            args += ["--int8-mode", "implicit"]
            if options.calib_cache:
                args += ["--calib-cache", str(options.calib_cache)]
        if calib_data is not None and not options.calib_cache:
            args += ["--calib-data", str(calib_data)]
    if options.dla_core is not None:
        args += ["--dla-core", str(options.dla_core)]
    return " ".join(shlex.quote(a) for a in args)


def sidecar_path(engine_path):
    """`model.engine` -> `model.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)
