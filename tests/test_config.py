"""Inference settings and artifact metadata: validation and round trips."""

import pytest

from edgedet.config import InferenceConfig, LetterboxConfig, NMSConfig
from edgedet.metadata import ArtifactMetadata, MetadataError


def test_letterbox_presets():
    assert LetterboxConfig.kerascv(320) == LetterboxConfig(320, "bottom_right", 0)
    assert LetterboxConfig.ultralytics() == LetterboxConfig(640, "center", 114)


@pytest.mark.parametrize("kwargs, words", [
    ({"size": 100}, ["100", "multiple of 32"]),
    ({"pad_position": "centre"}, ["'centre'", "Did you mean 'center'"]),
    ({"pad_value": 300}, ["300", "0-255"]),
])
def test_letterbox_errors_name_the_value(kwargs, words):
    with pytest.raises(ValueError) as info:
        LetterboxConfig(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("kwargs, word", [
    ({"iou_threshold": 1.5}, "iou_threshold: 1.5"),
    ({"confidence_threshold": -0.1}, "confidence_threshold: -0.1"),
    ({"max_detections": 0}, "max_detections: 0"),
])
def test_nms_errors_name_the_value(kwargs, word):
    with pytest.raises(ValueError, match=word):
        NMSConfig(**kwargs)


def test_inference_config_round_trip_and_unknown_keys():
    config = InferenceConfig(LetterboxConfig.ultralytics(320), NMSConfig(0.5, 0.1, 10, False),
                             "center_xywh")
    assert InferenceConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"Unknown key\(s\) \['iou'\]"):
        NMSConfig.from_dict({"iou": 0.5})
    with pytest.raises(ValueError, match="Did you mean 'xyxy'"):
        InferenceConfig(bounding_box_format="xyyx")


def test_metadata_round_trip_and_errors():
    metadata = ArtifactMetadata(class_names=["a", "b"], inference=InferenceConfig(),
                                target="onnx", precision="int8", source_sha256="ab" * 32)
    again = ArtifactMetadata.from_json(metadata.to_json())
    assert again == metadata and again.num_classes == 2
    with pytest.raises(MetadataError, match="not valid JSON"):
        ArtifactMetadata.from_json("{", source="x.onnx")
    with pytest.raises(MetadataError, match="schema_version 99"):
        ArtifactMetadata.from_dict({**metadata.to_dict(), "schema_version": 99})
    with pytest.raises(MetadataError, match="x.onnx: invalid edgedet metadata"):
        data = metadata.to_dict()
        del data["class_names"]
        ArtifactMetadata.from_dict(data, source="x.onnx")
    with pytest.raises(ValueError, match="'int4'"):
        ArtifactMetadata(class_names=[], inference=InferenceConfig(), target="onnx",
                         precision="int4")


def test_letterbox_shape_round_trip():
    rect = LetterboxConfig(size=320, shape="rect")
    assert rect.to_dict()["shape"] == "rect"
    assert LetterboxConfig.from_dict(rect.to_dict()) == rect
    # Square metadata reads as before: no `shape` key, so older edgedets read it.
    assert "shape" not in LetterboxConfig().to_dict()
    assert LetterboxConfig.from_dict({"size": 640}).shape == "square"
    with pytest.raises(ValueError, match="'rectangle'.*'rect'"):
        LetterboxConfig(shape="rectangle")
