"""Fixtures for runtime tests: a tiny detector that really detects, its artifacts.

A random-weight YOLOv8 is useless for parity tests: its activations vanish
through the stack, every class logit is ~0 and every anchor scores ~0.5, so
the scores are near-ties that float noise reorders. `detector` fixes that
without training: the batch-norm statistics are set from the letterboxed
test images themselves (one forward pass in training mode with momentum 0)
and every batch norm's gain is cut to 0.8 (keeping float32 rounding from
growing through the random stack); then the head's last convolutions are
rescaled so class logits are ~N(-2.5, 1.5) (about 25 of the 84 anchors pass
the test threshold 0.15, about half survive NMS) and box distributions
favour the first bins (boxes of a few strides).
"""

import importlib.util

import numpy as np
import pytest

# name -> (height, width); "WxH" names, as image sizes are usually written.
IMAGE_SIZES = {
    "640x480": (480, 640),
    "480x640": (640, 480),
    "1x2000": (2000, 1),
    "2000x1": (1, 2000),
    "17x23": (23, 17),
    "model_size": (64, 64),  # the tiny preset's letterbox size
}
BATCH = 4
TARGET_FILES = {"savedmodel": "model_saved_model", "onnx": "model.onnx", "tflite": "model.tflite"}
if importlib.util.find_spec("openvino") is not None:  # The `openvino` extra (in `dev`).
    TARGET_FILES["openvino"] = "model.xml"


def _smooth_noise(rng, height, width):
    """Blocky random RGB images: structure at several scales, not white noise."""
    base = rng.integers(0, 256, (BATCH, 8, 8, 3)).astype(np.float32)
    rows = np.minimum(np.arange(height) * 8 // height, 7)
    cols = np.minimum(np.arange(width) * 8 // width, 7)
    image = base[:, rows][:, :, cols]
    image += rng.normal(0, 20, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def images():
    """name -> uint8 `[4, H, W, 3]` batch."""
    rng = np.random.default_rng(1234)
    return {name: _smooth_noise(rng, h, w) for name, (h, w) in IMAGE_SIZES.items()}


def _calibrate(model, images):
    import keras

    from edgedet.letterbox import letterbox

    letterboxed = np.concatenate(
        [letterbox(batch, model.letterbox)[0].numpy() for batch in images.values()]
    )
    norms = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in norms:
        layer.momentum = 0.0
    model(letterboxed, training=True)  # moving stats := these images' stats
    for layer in norms:
        layer.momentum = 0.97
        # A unit-gain random network is chaotic: float32 rounding grows ~100x
        # through the stack (errors of 5e-3 px). At 0.8 it stays ~5e-5 px.
        layer.gamma.assign(layer.gamma.numpy() * 0.8)
    heads = [
        model.get_layer(f"yolo_v8_head_{level}_{branch}_3_conv")
        for level in (1, 2, 3)
        for branch in ("box", "class")
    ]
    probe = keras.Model(model.input, [layer.output for layer in heads])
    for layer, output in zip(heads, probe(letterboxed)):
        kernel, bias = layer.get_weights()
        signal = output.numpy() - bias
        scale = 1.0 / (float(np.std(signal)) or 1.0)
        centre = np.mean(signal, axis=(0, 1, 2)) * scale
        if "class" in layer.name:  # logits ~ N(-2.5, 1.5): a third of anchors pass 0.15
            layer.set_weights([kernel * 1.5 * scale, -1.5 * centre - 2.5])
        else:  # DFL logits ~ N(ramp, 1): boxes of a few strides
            bins = bias.shape[0] // 4
            ramp = np.tile(-0.25 * np.arange(bins, dtype=np.float32), 4)
            layer.set_weights([kernel * scale, ramp - centre])


@pytest.fixture(scope="session")
def detector(images):
    """Tiny YOLOv8 (3 classes, 64 px) that yields real, well-separated detections."""
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(7)
    model = YOLOV8Detector.from_preset("tiny", class_names=["cat", "dog", "bird"])
    _calibrate(model, images)
    return model


@pytest.fixture(scope="session")
def config(detector):
    """A low threshold and a moderate IoU, so extreme aspect ratios detect too and NMS works."""
    import dataclasses

    config = detector.default_inference_config()
    nms = dataclasses.replace(config.nms, confidence_threshold=0.15, iou_threshold=0.5)
    return config.replace(nms=nms)


@pytest.fixture(scope="session")
def reference(detector, config):
    """The Keras reference runtime, with the debug (pre-NMS) outputs."""
    from edgedet.runtimes.keras_model import KerasRuntime

    with KerasRuntime(detector, config=config, debug=True) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def debug_artifacts(detector, config, tmp_path_factory):
    """target -> path of a debug export (with pre-NMS outputs) of `detector`."""
    from edgedet.end_to_end import build_end_to_end
    from edgedet.exporters.registry import get_target
    from edgedet.metadata import artifact_metadata

    folder = tmp_path_factory.mktemp("artifacts")
    end_to_end = build_end_to_end(detector, config, debug=True)
    paths = {}
    for target, name in TARGET_FILES.items():
        metadata = artifact_metadata(detector, config, target=target)
        paths[target] = get_target(target).load_exporter()(end_to_end, metadata, folder / name)
    return paths
