"""The parity bundle an export writes for the device: images and the reference's detections.

`edgedet export --target trt` writes `<stem>_parity/` next to the TensorRT-ready
ONNX, so a device without TensorFlow checks its engine against the
workstation's Keras reference (`edgedet parity --reference <stem>_parity
<stem>.engine`). The folder's format, its manifest and the runtime that replays
it are in `edgedet.runtimes.bundle`.
"""

import dataclasses
from pathlib import Path


def bundle_path(path):
    """The parity bundle folder next to an engine path: `<stem>_parity`."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}_parity")


# Images of the parity bundle without calibration data: deterministic, sizes inside the
# default profile.
BUNDLE_IMAGES = "synthetic:shapes?n=12&seed=14&size=96-480"
BUNDLE_SIZE = 12


def bundle_images(session):
    """The bundle's images for an export: `BUNDLE_SIZE` images of the user's calibration
    source when the export has one (sampled with the next seed, so mostly not the images
    calibrated on), else the synthetic `BUNDLE_IMAGES`.

    A model trained on other classes detects little in synthetic shapes, and a gate on a
    handful of borderline detections says little about an INT8 engine: the user's own
    images are what the engine must agree on.
    """
    source = getattr(session, "source", None)
    if source is None:
        return BUNDLE_IMAGES
    from edgedet.calibration.data import CalibrationData, calibration_data

    if isinstance(source, CalibrationData):
        return source.images()[:BUNDLE_SIZE]
    return calibration_data(source, size=BUNDLE_SIZE, seed=session.seed + 1,
                            min_images=1).images()


def write_parity_bundle(end_to_end, metadata, folder, force=False, images=BUNDLE_IMAGES):
    """Writes the parity bundle (`edgedet.runtimes.bundle`): images and the float32
    reference's detections, so the device checks its engine without TensorFlow.

    Args:
        images: str or list of uint8 `[H, W, 3]` arrays. A `synthetic:` spec or the
            images themselves (`bundle_images`). Defaults to `BUNDLE_IMAGES`.
    """
    import tensorflow as tf

    from edgedet.runtimes.bundle import write_bundle

    if isinstance(images, str):
        from edgedet.data.synthetic import from_spec

        dataset = from_spec(images, split="parity")
        images = [dataset.get(i)["image"] for i in range(len(dataset))]
    named = [(f"image_{i:02d}", image) for i, image in enumerate(images)]

    def predict(image):
        outputs = end_to_end.serve(tf.constant(image[None]))
        return {name: value.numpy() for name, value in outputs.items()}

    reference = dataclasses.replace(metadata, target="keras", precision="fp32")
    name = f"Keras {getattr(end_to_end.model, 'name', 'model')} (float32)"
    return write_bundle(folder, reference, named, predict, name, force=force)
