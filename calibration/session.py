"""Calibration shared by the targets of one `edgedet export --precision int8` run.

One `ExportCalibration` per export: the FP32 ONNX of the end-to-end graph is
converted once, the calibration images are opened once, and one
`edgedet.calibration.pipeline.Int8Pipeline` collects the ranges once; they are
then reused by the ONNX INT8 artifact (U8S8), the TensorRT
engine or its fallback files (S8S8 Q/DQ, calibration cache). TFLite INT8
calibrates inside the TFLite converter, on the same images.

The exporters (`edgedet.exporters.onnx_int8`, `tflite_int8`, `tensorrt`)
receive it as `session` and ask it for data, models and caches; it writes
no artifact. From `edgedet.exporters` it takes only public functions, to
make the FP32 ONNX: `onnx_export.convert` / `check` / `set_metadata` and
`base.serving_function` / `stage`.
"""


from edgedet.calibration.data import DEFAULT_SIZE
from edgedet.calibration.qdq import DEFAULT_METHOD, METHODS


class ExportCalibration:
    """Lazily built calibration state for one export.

    Args:
        data: calibration source (folder, dataset, `synthetic:` spec, arrays,
            `CalibrationData`) or None for the default set. Defaults to None.
        method: str. One of `edgedet.calibration.methods.METHODS`. Defaults
            to `"p90_min_max"`.
        size: int. Images to sample. Defaults to 300.
        seed: int. Sampling seed. Defaults to 0.
        quantize_head: bool. Also quantize the head's output convolutions.
            Defaults to False.
        float_blocks: iterable of str. Conv blocks to keep float in every
            INT8 artifact (e.g. `stack2_c2f_pre`, what a sensitivity search
            keeps: `edgedet calibrate --sensitivity-data`), besides the model
            family's (`edgedet.calibration.body.family_float_blocks`).
            Defaults to `()`.
        progress: callable or None. Called with one message per step.
        cpu: str. CPU class the ONNX U8S8 artifact is for (`edgedet.cpu`:
            `"vnni"`, `"avx512"`, `"avx2"`, `"arm"`), or `"auto"` for this
            machine's. Defaults to `"auto"`.
    """

    def __init__(self, data=None, method=DEFAULT_METHOD, size=DEFAULT_SIZE, seed=0,
                 quantize_head=False, float_blocks=(), progress=None, cpu="auto"):
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
        self._pipelines = {}

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
                self._onnx[key] = check(model, end_to_end.config.head)
        return self._onnx[key]

    def fp32_onnx(self, end_to_end, metadata):
        """The FP32 end-to-end ONNX `ModelProto`, with `metadata` inside (a copy)."""
        import onnx

        from edgedet.exporters.onnx_export import set_metadata

        model = onnx.ModelProto()
        model.CopyFrom(self._raw_onnx(end_to_end))
        set_metadata(model, metadata)
        return model

    def pipeline(self, end_to_end):
        """The `Int8Pipeline` of this graph (one per graph: ranges are collected once)."""
        from edgedet.calibration.pipeline import Int8Pipeline

        key = id(end_to_end)
        if key not in self._pipelines:
            self._pipelines[key] = Int8Pipeline(
                self._raw_onnx(end_to_end), self.data(), method=self.method,
                quantize_head=self.quantize_head, float_blocks=self.float_blocks, cpu=self.cpu,
                progress=self.notify,
                chunk=1 if end_to_end.config.letterbox.shape == "rect" else None)
        return self._pipelines[key]

    def qdq(self, end_to_end, metadata, flavour):
        """The Q/DQ INT8 `ModelProto` (`"u8s8"` or `"s8s8"`), placement-checked."""
        return self.pipeline(end_to_end).qdq(flavour, self.fp32_onnx(end_to_end, metadata))

    def key(self, end_to_end, metadata, data_key=None):
        """The cache key record of this model, preprocessing, method and data."""
        from edgedet.calibration.qdq import DEFAULT_PERCENTILE
        from edgedet.calibration.record import key_record

        options = {"percentile": DEFAULT_PERCENTILE} if self.method == "percentile" else {}
        return key_record(metadata, self.method, data_key or self.data().key(), options)

    def tensorrt_cache(self, end_to_end, metadata, trt_version, file_name):
        """`(cache text, calibration record)` for `trt_version`: the record has the
        cache's `tensorrt_cache` entry."""
        pipeline = self.pipeline(end_to_end)
        text, entry = pipeline.tensorrt_cache(trt_version, file_name)
        record = pipeline.record(metadata)
        record["tensorrt_cache"] = entry
        return text, record

    def cache_text(self, end_to_end, metadata, trt_version):
        """TensorRT calibration cache text for `trt_version`."""
        return self.pipeline(end_to_end).tensorrt_cache(trt_version, "")[0]
