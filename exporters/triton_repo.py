"""Triton Inference Server exporter: a model repository around the edgedet ONNX.

The repository (a folder) holds one model per backend:

```
<repo>/<name>/config.pbtxt        ONNX Runtime backend (platform onnxruntime_onnx)
<repo>/<name>/1/model.onnx        the end-to-end ONNX artifact (metadata inside)
<repo>/<name>_trt/config.pbtxt    TensorRT backend, only when an engine is given
<repo>/<name>_trt/1/model.plan
```

or, with `backend="python"`, `<name>/1/model.py` (the
`triton_python_model.py` file beside this one) running the same
`model.onnx` with ONNX Runtime inside Triton's Python backend: what a
server without the ONNX Runtime backend (e.g. the `tritonserver` bundled
with `nvidia-pytriton`) can serve.

Every config follows the artifact contract: input `images` `TYPE_UINT8`
`dims: [-1, -1, 3]` under `max_batch_size` (Triton adds the batch
dimension; its dynamic batcher only merges requests of equal shape), the
four outputs with their per-image shapes, and `num_detections` declared as
`dims: [1]` with `reshape: { shape: [] }` (the model's output is `[B]`;
clients receive `[B, 1]`); or, with `max_batch_size=0`, an explicit batch
dimension (`[-1, -1, -1, 3]`, the ONNX's own shapes, no Triton batching).
The edgedet metadata (JSON) and the class names are `parameters`, so a
client reads thresholds and names from the server.

The config text is written here rather than through Triton's
`model_config_pb2` so that writing a repository needs no Triton package;
the tests parse every config with Triton's own protobuf schema.
"""

import dataclasses
import json
import shutil
from pathlib import Path

from edgedet.exporters.base import INPUT_NAME, serving_function, stage, with_target
from edgedet.files import atomic_output_dir, check_writable_output

TARGET = "triton"
BACKENDS = ("onnxruntime", "python")
ACCELERATORS = (None, "cuda", "tensorrt")
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
# Output name -> (Triton data type, per-image dims as a function of max_det).
_OUTPUTS = (
    ("boxes", "TYPE_FP32", lambda n: [n, 4]),
    ("confidence", "TYPE_FP32", lambda n: [n]),
    ("classes", "TYPE_INT32", lambda n: [n]),
    ("num_detections", "TYPE_INT32", None),
)


@dataclasses.dataclass(frozen=True)
class RepoOptions:
    """How the models of a Triton repository are served.

    Args:
        max_batch_size: int. Largest batch Triton forms (>= 1), or 0 for an
            explicit batch dimension (`dims: [-1, -1, -1, 3]`, no Triton
            batching: each request is run as sent). Defaults to 8.
        instances: int. Model instances (`instance_group.count`) per device.
            Defaults to 1.
        backend: str. `"onnxruntime"` (Triton's ONNX Runtime backend) or
            `"python"` (ONNX Runtime inside the Python backend). Defaults
            to `"onnxruntime"`.
        accelerator: str or None. None: CPU instances. `"cuda"`: GPU
            instances (ONNX Runtime's CUDA provider). `"tensorrt"`: GPU
            instances with ONNX Runtime's TensorRT provider (engine cache on,
            FP16 when `fp16`). Defaults to None.
        fp16: bool. TensorRT provider precision FP16. Defaults to False.
        queue_delay_us: int. Dynamic batcher's `max_queue_delay_microseconds`.
            Defaults to 2000.
        preferred_batch_sizes: tuple of int. Defaults to `()` (Triton's choice).
        warmup_sizes: tuple of `(height, width)`. One warm-up request (batch
            1, zeros) per size when the model loads. Defaults to `((480, 640),)`.
        intra_op_threads: int. ONNX Runtime threads per instance (0: ONNX
            Runtime's default). Defaults to 0.
    """

    max_batch_size: int = 8
    instances: int = 1
    backend: str = "onnxruntime"
    accelerator: object = None
    fp16: bool = False
    queue_delay_us: int = 2000
    preferred_batch_sizes: tuple = ()
    warmup_sizes: tuple = ((480, 640),)
    intra_op_threads: int = 0

    def __post_init__(self):
        if not isinstance(self.instances, int) or isinstance(self.instances, bool) or (
                self.instances < 1):
            raise ValueError(f"Invalid Triton instances: {self.instances!r}. Expected an int >= 1.")
        for name in ("max_batch_size", "queue_delay_us", "intra_op_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Invalid Triton {name}: {value!r}. Expected an int >= 0.")
        if self.backend not in BACKENDS:
            raise ValueError(
                f"Invalid Triton backend {self.backend!r}. Expected one of {list(BACKENDS)}.")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(
                f"Invalid Triton accelerator {self.accelerator!r}. "
                f"Expected one of {list(ACCELERATORS)}."
            )
        if self.fp16 and self.accelerator != "tensorrt":
            raise ValueError(
                "fp16 applies to the TensorRT accelerator only (accelerator='tensorrt').")
        sizes = tuple(int(s) for s in self.preferred_batch_sizes)
        if any(not 1 <= s <= self.max_batch_size for s in sizes):
            raise ValueError(
                f"Invalid preferred batch sizes {list(self.preferred_batch_sizes)}: each must be "
                f"between 1 and max_batch_size {self.max_batch_size}."
            )
        object.__setattr__(self, "preferred_batch_sizes", sizes)
        warmup = tuple((int(h), int(w)) for h, w in self.warmup_sizes)
        if any(min(size) < 1 for size in warmup):
            raise ValueError(
                f"Invalid warm-up sizes {self.warmup_sizes!r}. Expected (height, width) >= 1.")
        object.__setattr__(self, "warmup_sizes", warmup)


def _quote(text):
    """A protobuf text-format string literal (protobuf's own escaping)."""
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(str(text), as_utf8=True) + '"'


def _dims(values):
    return "[ " + ", ".join(str(int(v)) for v in values) + " ]"


def _io_lines(max_det, input_type="TYPE_UINT8", batched=True):
    batch = [] if batched else [-1]  # Triton adds the batch dim of batched models.
    lines = ["input [", "  {", f"    name: {_quote(INPUT_NAME)}",
             f"    data_type: {input_type}", f"    dims: {_dims(batch + [-1, -1, 3])}", "  }", "]",
             "output ["]
    for index, (name, dtype, dims) in enumerate(_OUTPUTS):
        if dims:
            shape = f"    dims: {_dims(batch + dims(max_det))}"
        elif batched:
            shape = "    dims: [ 1 ]\n    reshape: { shape: [ ] }"
        else:
            shape = "    dims: [ -1 ]"
        lines += ["  {", f"    name: {_quote(name)}", f"    data_type: {dtype}", shape,
                  "  }," if index < len(_OUTPUTS) - 1 else "  }"]
    return lines + ["]"]


def _batching_lines(options):
    if options.max_batch_size == 0:
        return []  # Triton has no dynamic batching without a batch dimension of its own.
    lines = ["dynamic_batching {"]
    if options.preferred_batch_sizes:
        lines.append(f"  preferred_batch_size: {_dims(options.preferred_batch_sizes)}")
    return lines + [f"  max_queue_delay_microseconds: {options.queue_delay_us}", "}"]


def _instance_lines(options, kind):
    return ["instance_group [", "  {", f"    count: {options.instances}", f"    kind: {kind}",
            "  }", "]"]


def _warmup_lines(sizes, input_type="TYPE_UINT8", batched=True):
    lines = ["model_warmup ["]
    batch = [] if batched else [1]
    for index, (height, width) in enumerate(sizes):
        lines += [
            "  {", f"    name: {_quote(f'zeros_{height}x{width}')}", "    batch_size: 1",
            "    inputs {", f"      key: {_quote(INPUT_NAME)}", "      value: {",
            f"        data_type: {input_type}",
            f"        dims: {_dims(batch + [height, width, 3])}",
            "        zero_data: true", "      }", "    }",
            "  }," if index < len(sizes) - 1 else "  }",
        ]
    return lines + ["]"]


def _parameter_lines(parameters):
    lines = []
    for key, value in parameters.items():
        lines += ["parameters {", f"  key: {_quote(key)}",
                  f"  value: {{ string_value: {_quote(value)} }}", "}"]
    return lines


def _tensorrt_accelerator_lines(fp16):
    parameters = {"precision_mode": "FP16" if fp16 else "FP32",
                  "max_workspace_size_bytes": str(4 << 30),
                  "trt_engine_cache_enable": "1",
                  "trt_engine_cache_path": "/tmp/edgedet_trt_cache"}
    lines = ["optimization {", "  execution_accelerators {", "    gpu_execution_accelerator: [",
             "      {", f"        name: {_quote('tensorrt')}"]
    for key, value in parameters.items():
        lines.append(f"        parameters {{ key: {_quote(key)} value: {_quote(value)} }}")
    return lines + ["      }", "    ]", "  }", "}"]


def _metadata_parameters(metadata, **facts):
    triton_metadata = with_target(metadata, TARGET, triton=facts)
    return {"edgedet": json.dumps(triton_metadata.to_dict(), sort_keys=True),
            "class_names": json.dumps(list(metadata.class_names))}


def onnx_model_config(name, metadata, options=None):
    """`config.pbtxt` text of the ONNX model (ONNX Runtime or Python backend).

    Args:
        name: str. Model name (its folder name).
        metadata: `ArtifactMetadata` of the ONNX artifact.
        options: `RepoOptions` or None. Defaults to `RepoOptions()`.

    Returns:
        str. Triton `ModelConfig` in protobuf text format.
    """
    options = options or RepoOptions()
    if options.backend == "python":
        head = [f"name: {_quote(name)}", f"backend: {_quote('python')}"]
    else:
        head = [f"name: {_quote(name)}", f"platform: {_quote('onnxruntime_onnx')}"]
    kind = "KIND_CPU" if options.accelerator is None else "KIND_GPU"
    lines = head + [f"max_batch_size: {options.max_batch_size}"]
    batched = options.max_batch_size > 0
    lines += _io_lines(metadata.inference.nms.max_detections, batched=batched)
    lines += _batching_lines(options) + _instance_lines(options, kind)
    if options.warmup_sizes:
        lines += _warmup_lines(options.warmup_sizes, batched=batched)
    if options.accelerator == "tensorrt":
        lines += _tensorrt_accelerator_lines(options.fp16)
    parameters = _metadata_parameters(metadata, backend=options.backend,
                                      accelerator=options.accelerator)
    if options.backend == "python" and options.intra_op_threads:
        parameters["intra_op_threads"] = str(options.intra_op_threads)
    elif options.intra_op_threads:
        parameters["intra_op_thread_count"] = str(options.intra_op_threads)  # ORT backend's key
    return "\n".join(lines + _parameter_lines(parameters)) + "\n"


def engine_model_config(name, sidecar, options=None):
    """`config.pbtxt` text of a TensorRT engine model (platform `tensorrt_plan`).

    The batch limit, input type and warm-up size come from the engine's
    sidecar (`edgedet.exporters.tensorrt`): the profile's largest batch,
    `uint8` input (float32 for TensorRT 8.x engines), the profile's
    optimum size.

    Args:
        name: str. Model name.
        sidecar: dict. The engine's sidecar JSON.
        options: `RepoOptions` or None. `max_batch_size` is capped by the
            engine's profile; the accelerator and backend are ignored.

    Raises:
        ValueError: the sidecar has no TensorRT facts or the engine's
            profile does not allow a dynamic batch starting at 1.
    """
    from edgedet.metadata import ArtifactMetadata

    options = options or RepoOptions()
    metadata = ArtifactMetadata.from_dict(sidecar, source=f"engine sidecar of {name}")
    facts = metadata.extra.get("tensorrt") or {}
    profile = facts.get("profile")
    if not profile:
        raise ValueError(
            f"The engine sidecar for '{name}' has no TensorRT profile (extra.tensorrt.profile): "
            "was the engine built by `edgedet export --target trt`?"
        )
    (min_batch, _, _), (_, opt_h, opt_w), (max_batch, _, _) = (
        profile["min"], profile["opt"], profile["max"])
    batched = options.max_batch_size > 0
    if batched and min_batch != 1:
        raise ValueError(
            f"Engine '{name}' has a profile starting at batch {min_batch}; Triton batching needs "
            "batch 1 to be allowed. Rebuild with --trt-shapes starting at batch 1."
        )
    input_type = "TYPE_FP32" if facts.get("input_dtype") == "float32" else "TYPE_UINT8"
    batching = dataclasses.replace(
        options, max_batch_size=min(options.max_batch_size, max_batch),
        preferred_batch_sizes=tuple(s for s in options.preferred_batch_sizes if s <= max_batch))
    lines = [f"name: {_quote(name)}", f"platform: {_quote('tensorrt_plan')}",
             f"max_batch_size: {batching.max_batch_size}"]
    lines += _io_lines(metadata.inference.nms.max_detections, input_type, batched)
    lines += _batching_lines(batching) + _instance_lines(batching, "KIND_GPU")
    lines += _warmup_lines(((opt_h, opt_w),), input_type, batched)
    parameters = _metadata_parameters(metadata, backend="tensorrt")
    return "\n".join(lines + _parameter_lines(parameters)) + "\n"


def write_repository(onnx_path, repo, name=None, engine=None, force=False, options=None):
    """Writes a Triton model repository for an edgedet ONNX artifact (and engine).

    The whole repository is built in a temporary folder and moved into
    place at the end: a failure leaves no half-written repository, and an
    existing `repo` is replaced only with `force`.

    Args:
        onnx_path: str or path. An edgedet `.onnx` artifact (its metadata is
            read and copied into the configs).
        repo: str or path. The repository folder to write.
        name: str or None. Model name. Defaults to the ONNX file's stem.
        engine: str, path or None. A TensorRT `.engine` built by edgedet
            (with its sidecar JSON): served as model `<name>_trt`.
            Defaults to None.
        force: bool. Replace an existing `repo`. Defaults to False.
        options: `RepoOptions` or None. Defaults to `RepoOptions()`.

    Returns:
        `repo` as a `pathlib.Path`.

    Raises:
        FileNotFoundError: `onnx_path` or `engine` does not exist.
        MetadataError: the ONNX or the engine has no edgedet metadata.
        OutputExistsError: `repo` exists and `force` is False.
    """
    from edgedet.runtimes.onnxrt import read_metadata

    check_writable_output(repo, force)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX artifact '{onnx_path}' does not exist.")
    metadata = read_metadata(onnx_path)
    name = _model_name(name or onnx_path.stem)
    sidecar = None
    if engine is not None:
        from edgedet.runtimes.trt import read_sidecar

        engine = Path(engine)
        if not engine.is_file():
            raise FileNotFoundError(f"TensorRT engine '{engine}' does not exist.")
        sidecar = read_sidecar(engine)
    options = options or RepoOptions()
    configs = {name: onnx_model_config(name, metadata, options)}
    if sidecar is not None:
        configs[f"{name}_trt"] = engine_model_config(f"{name}_trt", sidecar, options)
    with atomic_output_dir(repo, force=force) as tmp:
        version = tmp / name / "1"
        version.mkdir(parents=True)
        shutil.copyfile(onnx_path, version / "model.onnx")
        if options.backend == "python":
            shutil.copyfile(PYTHON_MODEL, version / "model.py")
        if sidecar is not None:
            plan = tmp / f"{name}_trt" / "1"
            plan.mkdir(parents=True)
            shutil.copyfile(engine, plan / "model.plan")
        for model, text in configs.items():
            (tmp / model / "config.pbtxt").write_text(text, encoding="utf-8")
    return Path(repo)


def _model_name(text):
    import re

    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")
    if not name:
        raise ValueError(f"Invalid Triton model name {text!r}: use letters, digits, '_' or '-'.")
    return name


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None, engine=None,
           **options):
    """Exports `end_to_end` as a Triton model repository at `path`.

    The ONNX model is converted and checked as the `onnx` target does
    (`edgedet.exporters.onnx_export`), then `write_repository` writes the
    repository with model name `path`'s stem without its `_triton` suffix.
    An engine `<stem>.engine` already beside `path` (e.g. from
    `--target trt,triton`) is added as `<stem>_trt` unless `engine` names
    another.

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata`.
        path: str or path. The repository folder.
        force: bool. Replace an existing repository. Defaults to False.
        precision: str. Must be `"fp32"` (an INT8 or FP16 model is served
            from its own artifact: `edgedet triton repo MODEL_int8.onnx`).
        session: unused (the exporter signature's INT8 calibration).
        engine: str, path or None. A TensorRT engine to serve too.
        **options: `RepoOptions` fields.

    Returns:
        `path` as a `pathlib.Path`.
    """
    import tempfile

    from edgedet.exporters import onnx_export

    if precision != "fp32":
        raise ValueError(f"The triton target packages the FP32 ONNX; received precision "
                         f"'{precision}'. Serve an INT8 artifact with `edgedet triton repo "
                         "MODEL_int8.onnx`.")
    path = check_writable_output(path, force)
    options = RepoOptions(**options)
    stem = path.name.removesuffix("_triton") or "model"
    if engine is None and (path.parent / f"{stem}.engine").is_file():
        engine = path.parent / f"{stem}.engine"
    with stage(TARGET, "trace"):
        serving_function(end_to_end)
    model = onnx_export.convert(end_to_end)
    with stage(TARGET, "check"):
        model = onnx_export.check(model, end_to_end.config.head)
    onnx_export.set_metadata(model, with_target(metadata, "onnx"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.onnx.") as tmp:
        onnx_path = Path(tmp) / f"{stem}.onnx"
        onnx_path.write_bytes(model.SerializeToString())
        return write_repository(onnx_path, path, name=stem, engine=engine, force=force,
                                options=options)
