"""OpenVINO runtime: an edgedet IR (`.xml` + `.bin`) compiled for the CPU.

OpenVINO's CPU plugin computes in bf16 by default on CPUs that have it
(AVX-512 BF16, AMX), and in f32 elsewhere: a float artifact is then not run
at float32. The runtime says what it ran at (`inference_precision`: `"fp32"`,
`"bf16"` or `"fp16"` for an FP32 artifact, the artifact's own precision
otherwise), so parity applies that precision's thresholds and the benchmark
records it. Force float32 with `precision="f32"`, or for every command
(`predict`, `parity`, `benchmark`) with the environment variable
`EDGEDET_OPENVINO_PRECISION=f32`.

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
    """

    kind = "openvino"

    def __init__(self, path, device="CPU", precision=None, threads=None, config=None):
        super().__init__(Path(path))
        self.device = device
        self.requested_precision = requested_precision(precision)
        self.threads = threads
        self.config = dict(config or {})
        self.compiled = None
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
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(self.path)), self.device,
                                           self.compile_config())
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.compute_precision = _EDGEDET_PRECISION.get(hint.get_type_name(), "fp32")
        self._request = self.compiled.create_infer_request()
        self._outputs = [(port, _contract_name(port)) for port in self.compiled.outputs]

    def _release(self):
        self._request = None
        self.compiled = None

    def _infer(self, batch):
        self._request.infer({0: batch})
        return {name: self._request.get_tensor(port).data.copy()
                for port, name in self._outputs}


def _contract_name(port):
    """The output's contract name among its tensor names (any one if none is)."""
    names = port.get_names()
    for name in PADDED_KEYS:
        if name in names:
            return name
    return port.get_any_name()
