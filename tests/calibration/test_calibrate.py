"""calibrate(): the files, the calibration JSON, the cache reading back, stale caches."""

import hashlib
import json

import numpy as np
import pytest

from edgedet.calibration import trt_cache
from edgedet.calibration.calibrate import calibrate
from edgedet.calibration.record import cache_for_version, json_path_for_cache, load_record


@pytest.fixture(scope="module")
def calibrated(fp32_onnx, calib_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated")
    return calibrate(fp32_onnx, calib_data, out, method="minmax", trt_version="8.5.2")


def test_writes_the_int8_files(calibrated):
    names = {kind: path.name for kind, path in calibrated.paths.items()}
    assert names == {"u8s8": "model_int8.onnx", "s8s8": "model_int8_trt.onnx",
                     "cache": "model_int8.calib.cache", "json": "model_int8.calib.json"}
    assert all(path.is_file() for path in calibrated.paths.values())
    assert json_path_for_cache(calibrated.paths["cache"]) == calibrated.paths["json"]


def test_cache_parses_back_to_the_recorded_ranges(calibrated):
    text = calibrated.paths["cache"].read_text()
    header, scales = trt_cache.parse_cache(text)
    assert header == {"version_code": 8502, "algorithm": "MinMaxCalibration"}
    record = load_record(calibrated.paths["json"])
    assert record["tensorrt_cache"]["tensors"] == len(scales) > 50
    assert record["tensorrt_cache"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    for name, scale in scales.items():
        low, high = record["ranges"][name]
        amax = max(abs(low), abs(high), trt_cache.MIN_AMAX)
        assert scale == np.float32(amax / 127.0), name
    # Head outputs and everything after the body have no scale: they stay float.
    assert not [n for n in scales if "_3_conv" in n or "NonMaxSuppression" in n]


def test_json_records_method_images_and_key(calibrated, calib_data):
    record = json.loads(calibrated.paths["json"].read_text())
    assert record["method"] == "minmax"
    assert record["data"]["images"] == calib_data.image_records()
    assert len(record["data"]["images"]) == 12
    assert record["key"] == trt_cache.cache_key(
        record["model_sha256"], record["preprocessing"], "minmax", record["data_key"])
    assert record["preprocessing"]["size"] == 64
    assert record["body"]["quantize_head"] is False
    assert len([n for n in record["body"]["float_nodes"] if "_3_conv" in n]) == 6


def test_cache_header_can_be_moved_to_the_device_version(calibrated):
    text = calibrated.paths["cache"].read_text()
    moved = cache_for_version(text, "10.3.0")
    assert moved.splitlines()[0] == "TRT-100300-MinMaxCalibration"
    assert moved.splitlines()[1:] == text.splitlines()[1:]


def test_existing_files_are_not_overwritten(fp32_onnx, calib_data, calibrated):
    from edgedet.files import OutputExistsError

    with pytest.raises(OutputExistsError):
        calibrate(fp32_onnx, calib_data, calibrated.paths["json"].parent, method="minmax")


def test_a_cache_from_another_model_is_refused(calibrated):
    record = load_record(calibrated.paths["json"])
    other = dict(record, model_sha256="0" * 64)
    other["key"] = trt_cache.cache_key(other["model_sha256"], other["preprocessing"],
                                       other["method"], other["data_key"])
    with pytest.raises(trt_cache.StaleCacheError, match="another model weights"):
        trt_cache.check_key(other, record)


def test_no_cache_for_tensorrt_11(fp32_onnx, calib_data, tmp_path):
    result = calibrate(fp32_onnx, calib_data, tmp_path, method="minmax", trt_version="11.0.0",
                       flavours=("s8s8",))
    assert set(result.paths) == {"s8s8", "json"}
    assert "tensorrt_cache" not in result.record


def test_onnx_without_metadata_is_refused(fp32_onnx, calib_data, tmp_path):
    import onnx

    from edgedet.metadata import MetadataError

    model = onnx.load(str(fp32_onnx))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(MetadataError, match="no edgedet metadata"):
        calibrate(bare, calib_data, tmp_path / "out")


@pytest.mark.parametrize("flavours, searched", [(("u8s8", "s8s8"), "s8s8"), (("u8s8",), "u8s8")])
def test_sensitivity_searches_the_strictest_flavour(fp32_onnx, calib_data, eval_images,
                                                    tmp_path, flavours, searched):
    from edgedet.thresholds import Thresholds

    lenient = Thresholds(min_recall=0.0, min_precision=0.0, min_mean_iou=0.0,
                         min_map_vs_reference=0.0, max_score_delta=1.0)
    result = calibrate(fp32_onnx, calib_data, tmp_path, method="minmax", flavours=flavours,
                       trt_version="10.3.0", sensitivity_images=eval_images[:2],
                       sensitivity_thresholds=lenient)
    assert result.sensitivity.flavour == searched
    assert result.sensitivity.passed and result.sensitivity.kept == []
    assert result.record["sensitivity"]["flavour"] == searched
