"""The model family table: presets, the Keras class, and the head layers INT8 keeps float."""

import numpy as np
import pytest

from edgedet.models import families

keras = pytest.importorskip("keras")


def test_yolo_v8_row():
    family = families.get_family("yolo_v8")
    from edgedet.models import YOLOV8Detector, preset_names

    assert family.model_class() is YOLOV8Detector
    assert set(family.preset_names()) < set(preset_names())
    assert families.family_of_preset("yolov8n") is family
    assert families.family_of_preset("yolo11n").name == "yolo11"
    assert families.preset_names() == preset_names()
    for name in family.registered_names:
        assert keras.saving.get_registered_object(name) is YOLOV8Detector


@pytest.mark.parametrize("name, preset", [("yolo_v8", "tiny"), ("yolo11", "yolo11_tiny")])
def test_head_output_layers_are_the_last_convolutions_of_the_head(name, preset):
    family = families.get_family(name)
    model = family.model_class().from_preset(preset, num_classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    assert np.abs(model(images)["boxes"]).max() > 0
    channels = []
    for name in family.head_output_layers:
        layer = model.get_layer(name)
        assert isinstance(layer, keras.layers.Conv2D)
        channels.append(layer.filters)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    assert sorted(channels) == [3, 3, 3, 64, 64, 64]
    # Nothing reaches the raw head except through these layers.
    outputs = model(images)
    assert not np.any(outputs["boxes"]) and not np.any(outputs["classes"])
    for name in family.input_layers:
        assert isinstance(model.get_layer(name), keras.layers.Rescaling)


def test_unknown_family_and_preset_suggest_the_closest():
    with pytest.raises(ValueError,
                       match=r"Unknown model family: 'yolo_v9'.*Did you mean 'yolo_v8'"):
        families.get_family("yolo_v9")
    with pytest.raises(ValueError, match=r"Unknown preset: 'yolov8q'.*Did you mean 'yolov8"):
        families.family_of_preset("yolov8q")
