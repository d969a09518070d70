"""Explicit INT8: Q/DQ ONNX of the network body, with onnxruntime.quantization.

Two flavours of the same statistics (DESIGN.md, "Precision and INT8"):

- `"u8s8"` for ONNX Runtime on CPU: uint8 activations (asymmetric), int8
  per-channel symmetric weights. ONNX Runtime fuses these Q/DQ pairs into
  integer kernels (about 2x faster than FP32 on YOLOv8n here). On x86
  without VNNI those kernels add pairs of products in int16, which
  saturates; for such CPUs the weights use 7 bits (`reduce_range`, see
  `edgedet.cpu`). The `cpu` argument names the CPU class the artifact
  is for (default: the machine building it).
- `"s8s8"` for TensorRT: int8 activations and weights, both symmetric
  (every zero point is 0, as TensorRT requires), per-channel weights, Q/DQ
  on the convolutions' inputs only and float biases (`TENSORRT_OPTIONS`).

Only the body is quantized (`edgedet.calibration.body`): never the letterbox,
decode or NMS; the head's output convolutions stay float unless asked.

The ranges are collected once (`collect_ranges`: by default each image's
extremes, combined by their 90th percentile over the images
(`edgedet.calibration.methods`); or ONNX Runtime's MinMax / Entropy /
Percentile calibrators; on the body's tensors only, in chunks so memory
stays bounded) and then reused for both flavours and for the
TensorRT calibration cache (`edgedet.calibration.trt_cache`).

Example:

```python
from edgedet.calibration.data import calibration_data
from edgedet.calibration.qdq import collect_ranges, quantize

data = calibration_data("calib/", size=300)
ranges = collect_ranges("model.onnx", data)  # method="p90_min_max"
quantize("model.onnx", ranges, "model_int8.onnx", flavour="u8s8")
quantize("model.onnx", ranges, "model_int8_trt.onnx", flavour="s8s8")
```
"""

import contextlib
import dataclasses
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgedet.calibration.body import find_body
from edgedet.calibration.data import DegenerateDataWarning
from edgedet.calibration.methods import DEFAULT_METHOD, DEFAULT_PERCENTILE, METHODS, RULES
from edgedet.calibration.qdq_graph import (
    load_onnx,
    unround_other_readers,
    unshare_initializers,
)

FLAVOURS = ("u8s8", "s8s8")
# The S8S8 (TensorRT) recipe: NVIDIA's own for TensorRT's explicit quantization,
# as TensorRT Model Optimizer passes it to this same ONNX Runtime quantizer
# (modelopt.onnx.quantization.ort_utils.configure_ort; the TensorRT developer
# guide's "Q/DQ layer-placement recommendations"):
# - only the inputs of weighted ops get Q/DQ (activations per tensor, weights
#   per output channel, axis 0): TensorRT fuses Conv + BatchNorm + SiLU (+ the
#   residual Add) and keeps what lies between convolutions in float; a Q/DQ on
#   every Add, Concat, Mul, Sigmoid or MaxPool only adds rounding (measured:
#   about 1.2 pt mAP50-95 on the built-in model against 0.4 with Conv only);
# - biases stay float: TensorRT takes INT8 (FP8/INT4) Q/DQ only, never INT32
#   ("only activation types allowed as input to this layer");
# - weights stay float behind a Q -> DQ pair that TensorRT folds at build time,
#   the form QAT exports and TensorRT documents ("Quantized Weights");
# - a tensor that a convolution reads and a residual Add or Concat also reads
#   reaches the latter unrounded (`unround_other_readers`: ONNX Runtime hands
#   every reader the dequantized tensor);
# - zero points 0 (symmetric) everywhere, int8.
TENSORRT_OP_TYPES = ("Conv",)
TENSORRT_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "AddQDQPairToWeight": True,
    "QDQOpTypePerChannelSupportToAxis": {"Conv": 0},
    "DedicatedQDQPair": False,
    "OpTypesToExcludeOutputQuantization": ["Conv"],
    "QDQDisableWeightAdjustForInt32Bias": True,
}
# Images per calibration pass: bounds the memory of the histogram calibrators,
# which hold every intermediate output of a pass.
CHUNK = 8


@dataclasses.dataclass
class Ranges:
    """Activation ranges of the body, from one calibration pass.

    Attributes:
        method: str. One of `edgedet.calibration.methods.METHODS` (or a
            benchmark rule of `RULES`).
        ranges: dict of tensor name -> `(lowest, highest)` floats.
        tensors_data: ONNX Runtime's `TensorsData` (what its quantizer reads).
        images: list of `{"name", "sha256", "shape"}` of the images used.
        data_key: str. `CalibrationData.key()` of the images.
        options: dict. Method options (e.g. the percentile).
    """

    method: str
    ranges: dict
    tensors_data: object
    images: list = dataclasses.field(default_factory=list)
    data_key: str = ""
    options: dict = dataclasses.field(default_factory=dict)

    def amax(self, name):
        """max(|lowest|, |highest|) of tensor `name` (the symmetric range)."""
        low, high = self.ranges[name]
        return max(abs(low), abs(high))

    def degenerate(self, tolerance=1e-8):
        """Tensors whose range is (almost) a single value."""
        return sorted(n for n, (lo, hi) in self.ranges.items() if hi - lo <= tolerance)

    def with_ranges(self, ranges):
        """A copy whose ranges are `ranges` (`{tensor: (lowest, highest)}`), for ONNX
        Runtime's quantizer too (e.g. ranges read back from a calibration JSON)."""
        from onnxruntime.quantization.calibrate import TensorData, TensorsData

        ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in ranges.items()}
        data = TensorsData(
            _method(self.method)[1],
            {k: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
             for k, (lo, hi) in ranges.items()},
        )
        return dataclasses.replace(self, ranges=ranges, tensors_data=data)

    @classmethod
    def from_record(cls, record):
        """`Ranges` from a calibration JSON's content (`edgedet calibrate`)."""
        base = cls(method=record["method"], ranges={}, tensors_data=None,
                   images=record.get("data", {}).get("images", []),
                   data_key=record.get("data_key", ""), options=record.get("options", {}))
        return base.with_ranges(record["ranges"])

    def to_dict(self):
        return {
            "method": self.method,
            "options": dict(self.options),
            "data_key": self.data_key,
            "images": list(self.images),
            "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(self.ranges.items())},
        }


def _method(name):
    from onnxruntime.quantization import CalibrationMethod

    key = str(name).strip().lower()
    table = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        **{rule: CalibrationMethod.MinMax for rule in RULES},
    }
    if key not in table:
        from edgedet.suggest import closest

        raise ValueError(
            f"Unknown calibration method '{name}'. Expected one of {list(METHODS)}."
            + closest(key, METHODS)
        )
    return key, table[key]



@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's calibrators print progress and log warnings; keep them quiet."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _calibrator(method, model_path, tensors, workdir, percentile):
    """ONNX Runtime's calibrator for `method`, restricted to `tensors`."""
    from onnxruntime.quantization.calibrate import (
        EntropyCalibrater,
        MinMaxCalibrater,
        PercentileCalibrater,
    )

    from edgedet.calibration.methods import calibrater

    if method in RULES:
        return calibrater(Path(model_path), tensors, Path(workdir) / "augmented.onnx",
                          RULES[method])
    base = {"minmax": MinMaxCalibrater, "entropy": EntropyCalibrater,
            "percentile": PercentileCalibrater}[method]

    class BodyCalibrater(base):
        def select_tensors_to_calibrate(self, model):
            found, infos = super().select_tensors_to_calibrate(model)
            return {t for t in found if t in tensors}, infos

    kwargs = {"augmented_model_path": str(Path(workdir) / "augmented.onnx")}
    if method == "percentile":
        kwargs.update(percentile=percentile, symmetric=False)
    calibrator = BodyCalibrater(Path(model_path), None, **kwargs)
    calibrator.augment_graph()
    calibrator.create_inference_session()
    return calibrator


def body_tensors(model, body):
    """Float tensors read or written by the body nodes that get quantized."""
    initializers = {i.name for i in model.graph.initializer}
    wanted = set(body.quantize)
    names = set()
    for node in model.graph.node:
        if node.name in wanted:
            names.update(t for t in list(node.input) + list(node.output)
                         if t and t not in initializers)
    return names


def collect_ranges(model, data, method=DEFAULT_METHOD, body=None, percentile=DEFAULT_PERCENTILE,
                   chunk=CHUNK):
    """Runs the FP32 end-to-end ONNX model on `data` and records the body's ranges.

    Args:
        model: path or `onnx.ModelProto`. The FP32 end-to-end ONNX.
        data: `edgedet.calibration.data.CalibrationData`.
        method: str. One of `edgedet.calibration.methods.METHODS`. Defaults
            to `"p90_min_max"`.
        body: `Body` or None. Defaults to `find_body(model)`.
        percentile: float. For `"percentile"`. Defaults to 99.999.
        chunk: int. Images per calibration pass. Defaults to 8.

    Returns:
        `Ranges`.

    Warns:
        DegenerateDataWarning: most images are flat, or most ranges are a
            single value (the data does not exercise the model).
    """
    import onnx

    method, _ = _method(method)
    if not 0 < percentile <= 100:
        raise ValueError(f"Invalid percentile: {percentile!r}. Expected (0, 100].")
    proto = load_onnx(model)
    body = body or find_body(proto)
    tensors = body_tensors(proto, body)
    with tempfile.TemporaryDirectory(prefix="edgedet-calib-") as workdir, _quiet():
        path = Path(workdir) / "model.onnx"
        onnx.save(proto, str(path))
        calibrator = _calibrator(method, path, tensors, workdir, percentile)
        for reader in data.chunks(chunk):
            calibrator.collect_data(reader)
        tensors_data = calibrator.compute_data()
    data.check_degenerate()
    ranges = {}
    for name, value in tensors_data.items():
        low, high = value.range_value
        ranges[name] = (float(np.asarray(low).min()), float(np.asarray(high).max()))
    result = Ranges(
        method=method,
        ranges=ranges,
        tensors_data=tensors_data,
        images=data.image_records(),
        data_key=data.key(),
        options={"percentile": percentile} if method == "percentile" else {},
    )
    flat = result.degenerate()
    if ranges and len(flat) * 2 > len(ranges):
        warnings.warn(
            f"{len(flat)} of {len(ranges)} body tensors have a degenerate range (a single "
            "value) on this calibration set: it does not exercise the model, and the INT8 "
            "model will be inaccurate. Calibrate with representative images.",
            DegenerateDataWarning,
            stacklevel=2,
        )
    return result


def quantize(model, ranges, path=None, flavour="u8s8", body=None, quantize_head=False,
             exclude=(), per_channel=True, cpu="auto"):
    """Writes the Q/DQ INT8 model of `model` from collected `ranges`.

    Args:
        model: path or `onnx.ModelProto`. The FP32 end-to-end ONNX.
        ranges: `Ranges` from `collect_ranges` on the same model.
        path: str, path or None. Where to save; None returns the model only.
            Defaults to None.
        flavour: str. `"u8s8"` (ONNX Runtime CPU) or `"s8s8"` (TensorRT,
            symmetric, zero points 0). Defaults to `"u8s8"`.
        body: `Body` or None. Defaults to `find_body(model, quantize_head,
            exclude)`.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        exclude: iterable of str. More body nodes or Keras layers to keep
            float (what the sensitivity search returns). Defaults to `()`.
        per_channel: bool. Per-channel weight scales. Defaults to True.
        cpu: str. The CPU class a `"u8s8"` model is for (`edgedet.cpu`:
            `"vnni"`, `"avx512"`, `"avx2"`, `"arm"`), or `"auto"` for this
            machine's. x86 without VNNI gets 7-bit weights. Ignored for
            `"s8s8"` (TensorRT). Defaults to `"auto"`.

    Returns:
        The quantized `onnx.ModelProto`, with the edgedet metadata updated
        (`precision="int8"`, `extra["quantization"]`).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    if flavour not in FLAVOURS:
        raise ValueError(f"Unknown INT8 flavour '{flavour}'. Expected one of {list(FLAVOURS)}.")
    from edgedet.cpu import reduce_range, resolve_cpu_class

    _, calibrate_method = _method(ranges.method)
    target_cpu = resolve_cpu_class(cpu) if flavour == "u8s8" else None
    seven_bit = reduce_range(target_cpu)
    proto = load_onnx(model)
    body = body or find_body(proto, quantize_head=quantize_head, exclude=exclude)
    proto = unshare_initializers(proto, body.quantize)
    symmetric = flavour == "s8s8"
    if symmetric:
        extra_options, op_types = dict(TENSORRT_OPTIONS), list(TENSORRT_OP_TYPES)
    else:
        extra_options = {"ActivationSymmetric": False, "WeightSymmetric": True,
                         "DedicatedQDQPair": False}
        op_types = None  # Every op ONNX Runtime has an integer kernel for.
    with tempfile.TemporaryDirectory(prefix="edgedet-qdq-") as workdir, _quiet():
        cache = Path(workdir) / "ranges.json"
        save_tensors_data(ranges.tensors_data, cache)
        out = Path(workdir) / "int8.onnx"
        quantize_static(
            proto,
            str(out),
            calibration_data_reader=None,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=seven_bit,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=list(body.quantize),
            op_types_to_quantize=op_types,
            calibrate_method=calibrate_method,
            extra_options=extra_options,
            calibration_cache_path=str(cache),
        )
        quantized = onnx.load(str(out))
    if symmetric:
        unround_other_readers(quantized, TENSORRT_OP_TYPES)
    _update_metadata(quantized, proto, flavour, ranges, body,
                     {"cpu_class": target_cpu, "reduce_range": seven_bit})
    if path is not None:
        from edgedet.files import atomic_write_bytes

        atomic_write_bytes(path, quantized.SerializeToString())
    return quantized




def update_quantization_metadata(model, facts):
    """Adds `facts` to the `quantization` entry of `model`'s edgedet metadata (if it has some)."""
    import dataclasses as dc

    from edgedet.metadata import METADATA_KEY, ArtifactMetadata

    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            metadata = ArtifactMetadata.from_json(entry.value)
            quantization = {**metadata.extra.get("quantization", {}), **facts}
            entry.value = dc.replace(
                metadata, extra={**metadata.extra, "quantization": quantization}).to_json()


def _update_metadata(quantized, original, flavour, ranges, body, kernels):
    """Copies the edgedet metadata with precision int8 and the quantization facts."""
    import dataclasses as dc

    from edgedet.metadata import METADATA_KEY, ArtifactMetadata

    props = {p.key: p.value for p in original.metadata_props}
    del quantized.metadata_props[:]
    for key, value in props.items():
        if key != METADATA_KEY:
            entry = quantized.metadata_props.add()
            entry.key, entry.value = key, value
    if METADATA_KEY not in props:
        return
    metadata = ArtifactMetadata.from_json(props[METADATA_KEY])
    metadata = dc.replace(
        metadata,
        precision="int8",
        extra={
            **metadata.extra,
            "quantization": {
                "format": "qdq",
                "flavour": flavour,
                "method": ranges.method,
                "calibration_images": len(ranges.images),
                "data_key": ranges.data_key,
                "float_nodes": list(body.float_nodes),
                **kernels,
            },
        },
    )
    entry = quantized.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
