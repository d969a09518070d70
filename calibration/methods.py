"""The calibration methods, and activation ranges from each image's extremes.

`METHODS` are what `--calib-method` / `--method` take, for every INT8 path:
ONNX Runtime's `"minmax"`, `"entropy"` and `"percentile"` calibrators, and
`"p90_min_max"` (below; the default: docs/benchmarks.md, issue 25, has the
figures behind it). The TFLite exporter reads the same names
(`edgedet.exporters.tflite_int8.RANGES`); OpenVINO INT8 lets NNCF collect
its own statistics.

ONNX Runtime's MinMax calibrator keeps each tensor's extremes over all the
calibration images, so one image with a rare large activation widens the
range, and coarsens the int8 steps, for every image; its histogram
calibrators (entropy, percentile) clip the values of all images pooled. Here
each body tensor's min and max are kept per image, then combined over the
images by a quantile (the max's `quantile`, the mins' `1 - quantile`), which
drops only the rarest images' extremes; `quantile` None takes their mean.

It is ONNX Runtime's own `MinMaxCalibrater` (its ReduceMin / ReduceMax
graph), which keeps the per-image values instead of merging them; the result
is a MinMax `TensorsData` that `quantize_static` reads like any other.
The TFLite exporter applies the same rule to its own tensors
(`edgedet.exporters.tflite_int8.image_ranges`); `RULES` names them for both.

Nothing here imports NumPy or ONNX Runtime at import time (the CLI reads
`METHODS`).
"""

#: Range rules from per-image extremes: name -> quantile over the images (None: the mean).
#: Only `p90_min_max` is a user-facing method; the others are for benchmarks.
RULES = {"mean_min_max": None, "p90_min_max": 0.9, "p99_min_max": 0.99}
METHODS = ("minmax", "entropy", "percentile", "p90_min_max")
DEFAULT_METHOD = "p90_min_max"
DEFAULT_PERCENTILE = 99.999


def combine(lows, highs, quantile):
    """`(low, high)` of per-image `lows` / `highs` by `quantile` (None: their mean)."""
    import numpy as np

    if quantile is None:
        return float(np.mean(lows)), float(np.mean(highs))
    return float(np.quantile(lows, 1.0 - quantile)), float(np.quantile(highs, quantile))


def calibrater(model_path, tensors, augmented_path, quantile):
    """A `MinMaxCalibrater` on `tensors` that combines per-image extremes by `quantile`.

    Args:
        model_path: path. The FP32 ONNX model.
        tensors: set of str. The tensors to calibrate (the body's).
        augmented_path: path. Where ONNX Runtime writes its augmented model.
        quantile: float or None. See `combine`.

    Returns:
        The calibrator, its session created: feed it with `collect_data`,
        read the ranges with `compute_data`.
    """
    import numpy as np
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        MinMaxCalibrater,
        TensorData,
        TensorsData,
    )

    class PerImageCalibrater(MinMaxCalibrater):
        def select_tensors_to_calibrate(self, model):
            found, infos = super().select_tensors_to_calibrate(model)
            return {t for t in found if t in tensors}, infos

        def collect_data(self, data_reader):
            outputs = [o.name for o in self.infer_session.get_outputs()][self.num_model_outputs:]
            while True:
                feed = data_reader.get_next()
                if not feed:
                    break
                for name, value in zip(outputs, self.infer_session.run(outputs, feed)):
                    tensor, _, op = name.rpartition("_")
                    if value.size and np.all(np.isfinite(value)):
                        reduce = np.min if op == "ReduceMin" else np.max
                        self.extremes.setdefault((tensor, op), []).append(float(reduce(value)))

        def compute_data(self):
            ranges = {}
            for (tensor, op), lows in self.extremes.items():
                if op != "ReduceMin" or (tensor, "ReduceMax") not in self.extremes:
                    continue
                low, high = combine(lows, self.extremes[(tensor, "ReduceMax")], quantile)
                ranges[tensor] = TensorData(lowest=np.float32(low), highest=np.float32(high))
            return TensorsData(CalibrationMethod.MinMax, ranges)

    calibrator = PerImageCalibrater(model_path, None, augmented_model_path=str(augmented_path))
    calibrator.extremes = {}
    calibrator.augment_graph()
    calibrator.create_inference_session()
    return calibrator
