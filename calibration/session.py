"""Calibration shared by the targets of one `edgedet export --precision int8` run.

One `ExportCalibration` per export: the FP32 ONNX of the end-to-end graph is
converted once, the calibration images are opened once and the ranges are
collected once, then reused by the ONNX INT8 artifact (U8S8), the TensorRT
engine or its fallback files (S8S8 Q/DQ, calibration cache). TFLite INT8
calibrates inside the TFLite converter, on the same images.

The exporters (`edgedet.exporters.onnx_int8`, `tflite_int8`, `tensorrt`)
receive it as `session` and ask it for data, models and caches; it writes
no artifact. From `edgedet.exporters` it takes only public functions, to
make the FP32 ONNX: `onnx_export.convert` / `check` / `set_metadata` and
`base.serving_function` / `stage`.
"""


from edgedet.calibration.data import DEFAULT_SIZE
from edgedet.calibration.qdq import DEFAULT_METHOD


class ExportCalibration:
    """Lazily built calibration state for one export.

    Args:
        data: calibration source (folder, dataset, `synthetic:` spec, arrays,
            `CalibrationData`) or None for the default set. Defaults to None.
        method: str. `"minmax"`, `"entropy"` or `"percentile"`. Defaults to
            `"entropy"`.
        size: int. Images to sample. Defaults to 300.
        seed: int. Sampling seed. Defaults to 0.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        float_blocks: iterable of str. Conv blocks to keep float in every
            INT8 artifact (e.g. `stack2_c2f_pre`, what a sensitivity search
            keeps: `edgedet calibrate --sensitivity-data`). Defaults to `()`.
        progress: callable or None. Called with one message per step.
        cpu: str. CPU class the ONNX U8S8 artifact is for (`edgedet.cpu`:
            `"vnni"`, `"avx512"`, `"avx2"`, `"arm"`), or `"auto"` for this
            machine's. Defaults to `"auto"`.
    """

    def __init__(self, data=None, method=DEFAULT_METHOD, size=DEFAULT_SIZE, seed=0,
                 quantize_head=False, float_blocks=(), progress=None, cpu="auto"):
        from edgedet.calibration.qdq import METHODS
        from edgedet.cpu import resolve_cpu_class

        if method not in METHODS:
            from edgedet.suggest import closest

            raise ValueError(
                f"Unknown calibration method '{method}'. Expected one of {list(METHODS)}."
                + closest(str(method), METHODS)
            )
        self.source, self.method, self.size, self.seed = data, method, size, seed
        self.quantize_head = quantize_head
        self.float_blocks = tuple(float_blocks or ())
        self.cpu = resolve_cpu_class(cpu)
        self.notify = progress or (lambda message: None)
        self._data = None
        self._onnx = {}
        self._ranges = {}

    def data(self):
        """The `CalibrationData` (opened on first use)."""
        from edgedet.calibration.data import CalibrationData, calibration_data

        if self._data is None:
            if isinstance(self.source, CalibrationData):
                self._data = self.source
            else:
                self._data = calibration_data(self.source, size=self.size, seed=self.seed)
        return self._data

    def _raw_onnx(self, end_to_end):
        from edgedet.exporters.base import serving_function, stage
        from edgedet.exporters.onnx_export import TARGET, check, convert

        key = id(end_to_end)
        if key not in self._onnx:
            self.notify("converting the end-to-end graph to ONNX for calibration")
            with stage(TARGET, "trace"):
                serving_function(end_to_end)
            model = convert(end_to_end)
            with stage(TARGET, "check"):
                self._onnx[key] = check(model)
        return self._onnx[key]

    def fp32_onnx(self, end_to_end, metadata):
        """The FP32 end-to-end ONNX `ModelProto`, with `metadata` inside (a copy)."""
        import onnx

        from edgedet.exporters.onnx_export import set_metadata

        model = onnx.ModelProto()
        model.CopyFrom(self._raw_onnx(end_to_end))
        set_metadata(model, metadata)
        return model

    def body(self, end_to_end):
        from edgedet.calibration.body import find_body
        from edgedet.calibration.sensitivity import conv_blocks

        model = self._raw_onnx(end_to_end)
        body = find_body(model, quantize_head=self.quantize_head)
        if not self.float_blocks:
            return body
        blocks = conv_blocks(model, body)
        unknown = [b for b in self.float_blocks if b not in blocks]
        if unknown:
            raise ValueError(f"Unknown conv block(s) to keep float: {unknown}. Expected some "
                             f"of {list(blocks)}.")
        exclude = [n for b in self.float_blocks for n in blocks[b]]
        return find_body(model, quantize_head=self.quantize_head, exclude=exclude)

    def ranges(self, end_to_end):
        """The body's `Ranges` on the calibration images (collected once)."""
        from edgedet.calibration.qdq import collect_ranges

        key = id(end_to_end)
        if key not in self._ranges:
            data = self.data()
            self.notify(f"calibrating ({self.method}) on {len(data)} images from {data.source}")
            self._ranges[key] = collect_ranges(self._raw_onnx(end_to_end), data,
                                               method=self.method, body=self.body(end_to_end))
        return self._ranges[key]

    def qdq(self, end_to_end, metadata, flavour):
        """The Q/DQ INT8 `ModelProto` (`"u8s8"` or `"s8s8"`), placement-checked."""
        from edgedet.calibration.qdq import check_placement, quantize

        body = self.body(end_to_end)
        model = quantize(self.fp32_onnx(end_to_end, metadata), self.ranges(end_to_end),
                         flavour=flavour, body=body, cpu=self.cpu)
        problems = check_placement(model, body)
        if problems:
            raise ValueError("Q/DQ placement check failed: " + "; ".join(problems[:5]))
        return model

    def key(self, end_to_end, metadata, data_key=None):
        """The cache key record of this model, preprocessing, method and data."""
        from edgedet.calibration.calibrate import key_record
        from edgedet.calibration.qdq import DEFAULT_PERCENTILE

        options = {"percentile": DEFAULT_PERCENTILE} if self.method == "percentile" else {}
        return key_record(metadata, self.method, data_key or self.data().key(), options)

    def cache_text(self, end_to_end, metadata, trt_version):
        """TensorRT calibration cache text for `trt_version`."""
        from edgedet.calibration.calibrate import cache_text

        text, _, _ = cache_text(self._raw_onnx(end_to_end), self.ranges(end_to_end),
                                self.body(end_to_end), trt_version)
        return text

    def record(self, end_to_end, metadata):
        """The calibration JSON's content for this export."""
        from edgedet.calibration.calibrate import make_record

        return make_record(metadata, self.ranges(end_to_end), self.data(), self.body(end_to_end))
