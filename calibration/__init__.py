"""edgedet.calibration (installed from the top-level `calibration/` folder): INT8.

Modules:

- `data`: calibration images (folder, COCO / YOLO / VOC dataset, `synthetic:`
  spec, arrays) as one reader protocol of raw uint8 feeds, sampled
  deterministically and checked.
- `body`: which nodes of the end-to-end ONNX graph are the network body (the
  only part quantized; head output convolutions stay float by default).
- `methods`: the calibration methods (one table) and the default range rule,
  each image's extremes combined by their 90th percentile (`p90_min_max`).
- `qdq`: ranges with ONNX Runtime's calibrators (that rule, minmax, entropy,
  percentile) and Q/DQ models: U8S8 for ONNX Runtime CPU, symmetric S8S8 for
  TensorRT.
- `trt_cache`: TensorRT calibration caches in TensorRT's text format, keyed
  by model, preprocessing, method and data.
- `sensitivity`: keeps the blocks that hurt parity most in float.
- `record`: the calibration record (`.calib.json`) and the cache key fields.
- `pipeline`: `Int8Pipeline`, the one INT8 pipeline (all of the above for one
  FP32 ONNX) that `calibrate`, `session` and the TensorRT exporter use.
- `calibrate`: `edgedet calibrate` as a function (one pipeline, files written).
- `session`: the calibration shared by the targets of one INT8 export.

The INT8 exporters of `edgedet export` live in `edgedet.exporters`
(`onnx_int8`, `tflite_int8`, `tensorrt`) and ask an `ExportCalibration` for
data, ranges, Q/DQ models and caches; nothing here converts a TensorFlow
graph or calls a TFLite / TensorRT converter (`calibrate` works on an
existing FP32 ONNX).

Nothing here imports TensorFlow, ONNX Runtime or TensorRT at import time.
"""
