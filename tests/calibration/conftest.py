"""Fixtures for INT8 tests: a tiny detector with live activations, its FP32 ONNX, images.

A random-weight YOLOv8 has vanishing activations (ranges of 1e-4, every
score ~0.5), so quantization could not break it and parity could not tell.
`detector` sets each batch norm's statistics from letterboxed images (one
training-mode pass with momentum 0), damps the gains, and rescales the
head's last convolutions so class logits spread around -2.5 and box
distributions favour a few bins: detections then depend on the image, and a
bad quantization visibly changes them.
"""

import numpy as np
import pytest

CLASS_NAMES = ["cat", "dog", "bird"]
CALIB_SPEC = "synthetic:shapes?n=12&seed=11&size=48-96"
EVAL_SPEC = "synthetic:shapes?n=8&seed=23&size=56-112"


def synthetic_images(spec, split="train"):
    from edgedet.data import load_dataset

    dataset = load_dataset(spec, split=split)
    return [dataset[i]["image"] for i in range(len(dataset))]


def _liven(model, images):
    import keras

    from edgedet.letterbox import letterbox

    letterboxed = np.concatenate(
        [letterbox(image[None], model.letterbox)[0].numpy() for image in images]
    )
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(letterboxed, training=True)
    for layer in norms:
        layer.momentum = 0.97
        layer.gamma.assign(layer.gamma.numpy() * 0.8)
    heads = [model.get_layer(f"yolo_v8_head_{level}_{branch}_3_conv")
             for level in (1, 2, 3) for branch in ("box", "class")]
    probe = keras.Model(model.input, [layer.output for layer in heads])
    for layer, output in zip(heads, probe(letterboxed)):
        kernel, bias = layer.get_weights()
        signal = output.numpy() - bias
        scale = 1.0 / (float(np.std(signal)) or 1.0)
        centre = np.mean(signal, axis=(0, 1, 2)) * scale
        if "class" in layer.name:
            layer.set_weights([kernel * 1.5 * scale, -1.5 * centre - 2.5])
        else:
            bins = bias.shape[0] // 4
            ramp = np.tile(-0.25 * np.arange(bins, dtype=np.float32), 4)
            layer.set_weights([kernel * scale, ramp - centre])


@pytest.fixture(scope="session")
def calib_images():
    return synthetic_images(CALIB_SPEC)


@pytest.fixture(scope="session")
def eval_images():
    """Held-out images (another seed and split than the calibration set)."""
    return synthetic_images(EVAL_SPEC, split="val")


@pytest.fixture(scope="session")
def detector(calib_images):
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(3)
    model = YOLOV8Detector.from_preset("tiny", class_names=CLASS_NAMES)
    _liven(model, calib_images)
    return model


@pytest.fixture(scope="session")
def config(detector):
    import dataclasses

    config = detector.default_inference_config()
    return config.replace(nms=dataclasses.replace(config.nms, confidence_threshold=0.15,
                                                  iou_threshold=0.5))


@pytest.fixture(scope="session")
def end_to_end(detector, config):
    from edgedet.end_to_end import build_end_to_end

    return build_end_to_end(detector, config)


@pytest.fixture(scope="session")
def fp32_onnx(detector, config, end_to_end, tmp_path_factory):
    """Path of the FP32 end-to-end ONNX of `detector`."""
    from edgedet.exporters.onnx_export import export
    from edgedet.metadata import artifact_metadata

    path = tmp_path_factory.mktemp("fp32") / "model.onnx"
    return export(end_to_end, artifact_metadata(detector, config, "onnx"), path)


@pytest.fixture(scope="session")
def calib_data(calib_images):
    from edgedet.calibration.data import calibration_data

    return calibration_data(calib_images, size=None, min_images=1)


@pytest.fixture(scope="session")
def ranges(fp32_onnx, calib_data):
    from edgedet.calibration.qdq import collect_ranges

    return collect_ranges(fp32_onnx, calib_data, method="minmax")
