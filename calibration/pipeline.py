"""The one INT8 pipeline: ranges once, then every Q/DQ model, cache and record.

`edgedet calibrate` (`edgedet.calibration.calibrate.calibrate`), `edgedet
export --precision int8` (`edgedet.calibration.session.ExportCalibration`)
and the TensorRT exporter all go through `Int8Pipeline`, so the steps of an
INT8 build are written once:

1. the body (`edgedet.calibration.body.find_body`), less the blocks kept
   float (the model family's `int8_float_layers`, given, or found by the
   sensitivity search);
2. the ranges, collected once on the calibration images
   (`edgedet.calibration.qdq.collect_ranges`);
3. each Q/DQ flavour (`quantize`: U8S8 for ONNX Runtime, S8S8 for TensorRT),
   placement-checked; the S8S8 one bias-corrected
   (`edgedet.calibration.bias_correction`: its biases stay float);
4. the TensorRT calibration cache and its entry in the calibration record;
5. the calibration record (the `.calib.json`).

It writes no file: the callers decide where (and whether) things go.

Example:

```python
import onnx
from edgedet.calibration.data import calibration_data
from edgedet.calibration.pipeline import Int8Pipeline

pipeline = Int8Pipeline(onnx.load("model.onnx"), calibration_data("calib/"))
trt_onnx = pipeline.qdq("s8s8")
text, entry = pipeline.tensorrt_cache("10.3.0", "model.calib.cache")
```
"""

import hashlib
import itertools

from edgedet.calibration.qdq import DEFAULT_METHOD


class Int8Pipeline:
    """INT8 calibration of one FP32 end-to-end ONNX model.

    Args:
        model: `onnx.ModelProto`. The FP32 end-to-end ONNX (edgedet metadata
            inside or not).
        data: `edgedet.calibration.data.CalibrationData`. The calibration
            images.
        method: str. One of `edgedet.calibration.methods.METHODS`. Defaults
            to `"p90_min_max"`.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        float_blocks: iterable of str. Conv blocks kept float (names from
            `edgedet.calibration.sensitivity.conv_blocks`). Defaults to `()`.
        cpu: str. CPU class of the U8S8 model (`edgedet.cpu`) or `"auto"`.
            Defaults to `"auto"`.
        progress: callable or None. Called with one message per step.
        chunk: int or None. Images per calibration pass (`collect_ranges`);
            1 for a rect letterbox, whose body shape differs per image (ONNX
            Runtime's collectors stack a pass's activations). Defaults to
            None (`collect_ranges`' default).
    """

    def __init__(self, model, data, method=DEFAULT_METHOD, quantize_head=False,
                 float_blocks=(), cpu="auto", progress=None, chunk=None):
        self.model = model
        self.chunk = chunk
        self.data = data
        self.method = method
        self.quantize_head = quantize_head
        self.cpu = cpu
        self.notify = progress or (lambda message: None)
        self.sensitivity = None
        self._ranges = None
        self.body = self._body_without(float_blocks)

    def _body_without(self, float_blocks):
        from edgedet.calibration.body import find_body
        from edgedet.calibration.sensitivity import conv_blocks

        body = find_body(self.model, quantize_head=self.quantize_head)
        float_blocks = tuple(float_blocks or ())
        if not float_blocks:
            return body
        blocks = conv_blocks(self.model, body)
        unknown = [b for b in float_blocks if b not in blocks]
        if unknown:
            raise ValueError(f"Unknown conv block(s) to keep float: {unknown}. Expected some "
                             f"of {list(blocks)}.")
        return self.keep_float([n for b in float_blocks for n in blocks[b]])

    def keep_float(self, nodes):
        """Keeps body `nodes` float from now on; returns the new `Body`."""
        from edgedet.calibration.body import find_body

        self.body = find_body(self.model, quantize_head=self.quantize_head, exclude=tuple(nodes))
        return self.body

    @property
    def ranges(self):
        """The body's `Ranges` on the calibration images (collected on first use)."""
        from edgedet.calibration.qdq import collect_ranges

        if self._ranges is None:
            self.notify(f"calibrating ({self.method}) on {len(self.data)} images from "
                        f"{self.data.source}")
            chunk = {} if self.chunk is None else {"chunk": self.chunk}
            self._ranges = collect_ranges(self.model, self.data, method=self.method,
                                          body=self.body, **chunk)
        return self._ranges

    def search_sensitivity(self, images, flavour="s8s8", thresholds=None):
        """Runs the sensitivity search on held-out `images` and keeps its blocks float.

        Returns:
            The `edgedet.calibration.sensitivity.Sensitivity`.
        """
        from edgedet.calibration.sensitivity import search

        self.notify(f"sensitivity search ({flavour.upper()}) on {len(images)} held-out images")
        self.sensitivity = search(self.model, self.ranges, images, flavour=flavour,
                                  thresholds=thresholds, quantize_head=self.quantize_head,
                                  progress=self.notify, cpu=self.cpu)
        self.keep_float(self.sensitivity.float_nodes)
        return self.sensitivity

    def qdq(self, flavour, model=None):
        """The Q/DQ INT8 `ModelProto` of one flavour, placement-checked.

        The S8S8 model is bias-corrected (`correct_biases`, on the first
        `bias_correction.MEAN_IMAGES` calibration images); the metadata's
        `quantization` entry says so.

        Args:
            flavour: str. `"u8s8"` (ONNX Runtime CPU) or `"s8s8"` (TensorRT).
            model: `onnx.ModelProto` or None. The same FP32 model with the
                metadata the INT8 model should carry. Defaults to `self.model`.

        Raises:
            ValueError: a Q/DQ node sits outside the body (names the first five).
        """
        from edgedet.calibration.qdq import quantize
        from edgedet.calibration.qdq_graph import check_placement

        quantized = quantize(self.model if model is None else model, self.ranges,
                             flavour=flavour, body=self.body, cpu=self.cpu)
        problems = check_placement(quantized, self.body)
        if problems:
            raise ValueError("Q/DQ placement check failed: " + "; ".join(problems[:5]))
        if flavour == "s8s8":
            quantized = self._bias_corrected(quantized)
        return quantized

    def _bias_corrected(self, quantized):
        """`quantized` (S8S8) with its biases corrected, the facts in its metadata."""
        from edgedet.calibration import bias_correction
        from edgedet.calibration.qdq import update_quantization_metadata

        feeds = itertools.islice(self.data, bias_correction.MEAN_IMAGES)
        corrected, facts = bias_correction.correct_biases(self.model, quantized, self.body, feeds,
                                                          progress=self.notify)
        update_quantization_metadata(corrected, {"bias_correction": facts})
        return corrected

    def tensorrt_cache(self, trt_version, file_name):
        """The TensorRT calibration cache for `trt_version` and its record entry.

        Args:
            trt_version: str. TensorRT version of the device (8.x or 10.x).
            file_name: str. The cache's file name, for the record.

        Returns:
            `(text, entry)`: the cache text and the calibration record's
            `tensorrt_cache` entry (`file`, `trt_version`, `algorithm`,
            `tensors`, `sha256`).
        """
        from edgedet.calibration import trt_cache
        from edgedet.calibration.qdq import body_tensors

        trt_cache.version_code(trt_version)  # Refuses an unsupported version.
        algorithm = trt_cache.ALGORITHM_OF_METHOD[self.ranges.method]
        tensors = sorted(body_tensors(self.model, self.body))
        scales = trt_cache.scales_from_ranges(self.ranges, tensors)
        text = trt_cache.format_cache(scales, trt_version, algorithm)
        entry = {"file": str(file_name), "trt_version": trt_version, "algorithm": algorithm,
                 "tensors": len(scales), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        return text, entry

    def record(self, metadata, source_model="", files=None, model_bytes=b""):
        """The calibration JSON's content (without a TensorRT cache entry).

        Args:
            metadata: `ArtifactMetadata` of the FP32 model.
            source_model: str. The FP32 model's file name. Defaults to `""`.
            files: dict or None. Kind -> file name of what was written.
            model_bytes: bytes. Hashed when the metadata has no weights hash.
        """
        from edgedet.calibration.record import make_record

        record = make_record(metadata, self.ranges, self.data, self.body, source_model,
                             files=files, model_bytes=model_bytes)
        if self.sensitivity is not None:
            record["sensitivity"] = self.sensitivity.to_dict()
        return record
