"""OpenVINO runtime: an edgedet IR (`.xml` + `.bin`) compiled for the CPU.

OpenVINO's CPU plugin computes in bf16 by default on CPUs that have it
(AVX-512 BF16, AMX), and in f32 elsewhere: a float artifact is then not run
at float32. The runtime says what it ran at (`inference_precision`: `"fp32"`,
`"bf16"` or `"fp16"` for an FP32 artifact, the artifact's own precision
otherwise), so parity applies that precision's thresholds and the benchmark
records it. Force float32 with `precision="f32"`, or for every command
(`predict`, `parity`, `benchmark`) with the environment variable
`EDGEDET_OPENVINO_PRECISION=f32`.

The IR's input is dynamic (batch, height, width), and OpenVINO's CPU plugin
runs a dynamic-shape model with per-call shape inference and without its
static-shape fusions (snippets subgraphs, Transpose/Reorder folding): 6-10%
of yolov8n's time on a 1280x720 frame. So an input shape that comes back
(a camera's frames, a benchmark) gets its own static-shape compiled model
the second time it is seen (`static_shapes`, on by default; about a second
of compile, the `STATIC_CACHE` most recent shapes kept), while images of
ever-changing sizes keep the one dynamic model.

Metadata is read from the `.xml`'s `<rt_info>` (`edgedet/metadata`) with
the standard library's XML parser: `edgedet info` needs no OpenVINO.
"""

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from edgedet.detections import PADDED_KEYS
from edgedet.metadata import METADATA_KEY, ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

#: Environment variable forcing the inference precision of every OpenVINO runtime.
PRECISION_ENV = "EDGEDET_OPENVINO_PRECISION"
#: Accepted `precision` values -> OpenVINO's name.
PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
#: OpenVINO element type name -> edgedet precision name.
_EDGEDET_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
#: An input shape seen this many times gets a static-shape compiled model.
STATIC_AFTER = 2
#: Static-shape compiled models kept (the least recently used is dropped).
STATIC_CACHE = 4
#: Distinct input shapes counted before the count starts over.
_SEEN_LIMIT = 256


def thread_options(threads):
    """`OpenVINORuntime` options for `threads` inference threads (`--threads`)."""
    return {"threads": int(threads)}


def read_metadata(path):
    """Reads the edgedet metadata from an IR's `.xml` (`<rt_info><edgedet><metadata>`).

    Raises:
        MetadataError: not an OpenVINO IR, or no edgedet metadata in it.
    """
    path = Path(path)
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise MetadataError(f"'{path}' is not an OpenVINO IR (XML: {error}).") from error
    if root.tag != "net":
        raise MetadataError(f"'{path}' is not an OpenVINO IR (root element <{root.tag}>, "
                            "expected <net>).")
    entry = root.find(f"./rt_info/{METADATA_KEY}/metadata")
    if entry is None or entry.get("value") is None:
        raise MetadataError(
            f"OpenVINO IR '{path}' has no edgedet metadata (<rt_info><{METADATA_KEY}><metadata> "
            "is missing). Was it exported by edgedet?")
    return ArtifactMetadata.from_json(entry.get("value"), source=str(path))


def requested_precision(precision=None):
    """OpenVINO's name of the inference precision asked for, or None for its default.

    Args:
        precision: str or None. `"f32"`/`"fp32"`, `"bf16"`, `"f16"`/`"fp16"`;
            None reads `EDGEDET_OPENVINO_PRECISION` (unset or empty: None).

    Raises:
        ValueError: an unknown value (naming where it came from).
    """
    where = "precision"
    if precision is None:
        precision, where = os.environ.get(PRECISION_ENV) or None, PRECISION_ENV
    if precision is None:
        return None
    key = str(precision).strip().lower()
    if key not in PRECISIONS:
        raise ValueError(f"Invalid OpenVINO inference {where} {precision!r}. Expected one of "
                         f"{sorted(set(PRECISIONS))}.")
    return PRECISIONS[key]


class OpenVINORuntime(Runtime):
    """Runs an edgedet OpenVINO IR.

    Args:
        path: str or path. The `.xml` file (its `.bin` beside it).
        device: str. OpenVINO device. Defaults to `"CPU"`.
        precision: str or None. Inference precision (`"f32"`, `"bf16"`,
            `"f16"`); None: `EDGEDET_OPENVINO_PRECISION`, else OpenVINO's
            default (bf16 on CPUs with AVX-512 BF16 or AMX). Defaults to None.
        threads: int or None. `INFERENCE_NUM_THREADS`. Defaults to None
            (OpenVINO's choice).
        config: dict or None. More `compile_model` properties. Defaults to None.
        static_shapes: bool. Compile a static-shape model for an input shape
            seen `STATIC_AFTER` times (same outputs, faster calls); False
            keeps the dynamic model only. Defaults to True.
    """

    kind = "openvino"

    def __init__(self, path, device="CPU", precision=None, threads=None, config=None,
                 static_shapes=True):
        super().__init__(Path(path))
        self.device = device
        self.requested_precision = requested_precision(precision)
        self.threads = threads
        self.config = dict(config or {})
        self.static_shapes = bool(static_shapes)
        self.compiled = None
        self._static = {}  # input shape -> infer request of its static-shape model
        self._seen = {}  # input shape -> calls, until it gets a static model
        #: What the float parts run at (`"fp32"`, `"bf16"`, `"fp16"`), once loaded.
        self.compute_precision = None

    @property
    def inference_precision(self):
        """The precision this runtime runs the artifact at (what parity and benchmark record).

        An FP32 artifact run in bf16 or f16 is reported as that; other
        artifacts (INT8) keep their own precision. None until loaded.
        """
        if self.compute_precision is None:
            return None
        if self.metadata.precision == "fp32":
            return self.compute_precision
        return self.metadata.precision

    def _read_metadata(self):
        return read_metadata(self.path)

    def compile_config(self):
        """The `compile_model` properties: latency hint, precision, threads, `config`."""
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if self.requested_precision:
            config["INFERENCE_PRECISION_HINT"] = self.requested_precision
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        return {**config, **self.config}

    def _load(self):
        import openvino as ov

        self.metadata  # noqa: B018 - fail early on missing metadata.
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.path))
        self.compiled = self._core.compile_model(self._model, self.device, self.compile_config())
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.compute_precision = _EDGEDET_PRECISION.get(hint.get_type_name(), "fp32")
        self._request = self.compiled.create_infer_request()
        self._outputs = [_contract_name(port) for port in self.compiled.outputs]

    def _release(self):
        self._request = None
        self._static, self._seen = {}, {}
        self._core = self._model = self.compiled = None

    def _infer(self, batch):
        request = self._request_for(batch.shape)
        request.infer({0: batch})
        return {name: request.get_output_tensor(index).data.copy()
                for index, name in enumerate(self._outputs)}

    def _request_for(self, shape):
        """The infer request for an input `shape`: its static model's, or the dynamic one's."""
        shape = tuple(int(dim) for dim in shape)
        request = self._static.pop(shape, None)
        if request is None:
            if not self.static_shapes:
                return self._request
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            self._seen[shape] = self._seen.get(shape, 0) + 1
            if self._seen[shape] < STATIC_AFTER:
                return self._request
            request = self._compile_static(shape)
        self._static[shape] = request  # Most recently used last.
        while len(self._static) > STATIC_CACHE:
            self._static.pop(next(iter(self._static)))
        return request

    def _compile_static(self, shape):
        """An infer request of the IR reshaped to the static input `shape` and compiled."""
        import openvino as ov

        model = self._model.clone()
        model.reshape({0: ov.PartialShape(list(shape))})
        return self._core.compile_model(model, self.device,
                                        self.compile_config()).create_infer_request()


def _contract_name(port):
    """The output's contract name among its tensor names (any one if none is)."""
    names = port.get_names()
    for name in PADDED_KEYS:
        if name in names:
            return name
    return port.get_any_name()
