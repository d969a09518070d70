"""TFLite INT8 activation ranges: the calibrator's extremes, or per-image extremes combined."""

import pytest


@pytest.fixture(scope="module")
def calibrated(end_to_end, calib_data):
    from edgedet.exporters.base import serving_function
    from edgedet.exporters.tflite import freeze
    from edgedet.exporters.tflite_int8 import calibrate

    return calibrate(freeze(serving_function(end_to_end)), calib_data)


@pytest.mark.parametrize("quantile", [None, 0.9])
def test_image_ranges_lie_inside_the_calibrator_extremes(calibrated, calib_data, quantile):
    from tensorflow.lite.tools import flatbuffer_utils

    from edgedet.exporters.tflite_int8 import image_ranges

    ranges = image_ranges(calibrated, calib_data, quantile)
    tensors = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(calibrated)).subgraphs[0].tensors
    assert len(ranges) > 50
    narrower = 0
    for index, (low, high) in ranges.items():
        extremes = tensors[index].quantization
        assert extremes.min[0] - 1e-4 <= low <= high <= extremes.max[0] + 1e-4
        narrower += (high - low) < 0.99 * (extremes.max[0] - extremes.min[0])
    assert narrower > len(ranges) // 4  # Images differ: most extremes are rarer than the mean.


def test_entropy_and_percentile_use_image_ranges_and_pass_parity(detector, config, eval_images,
                                                               tmp_path):
    from edgedet.export import export
    from edgedet.exporters.tflite_int8 import RANGES
    from edgedet.parity import run_parity
    from edgedet.runtimes.registry import read_metadata

    assert RANGES == {"minmax": "min_max", "entropy": "p90_min_max",
                      "percentile": "p90_min_max", "p90_min_max": "p90_min_max"}
    with pytest.warns(UserWarning, match="recommended"):
        (result,) = export(detector, ["tflite"], tmp_path, config=config, stem="model",
                           precision="int8", calibration={
                               "data": "synthetic:shapes?n=12&seed=11&size=48-96", "size": 12,
                               "method": "entropy"})
    quantization = read_metadata(result.path).extra["quantization"]
    assert quantization["activation_ranges"] == "p90_min_max"
    parity = run_parity(detector, [result.path], eval_images)
    assert parity, parity.summary_text()
