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


# Images of the parity bundle: deterministic, sizes inside the default profile.
BUNDLE_IMAGES = "synthetic:shapes?n=12&seed=14&size=96-480"


def write_parity_bundle(end_to_end, metadata, folder, force=False, images=BUNDLE_IMAGES):
    """Writes the parity bundle (`edgedet.runtimes.bundle`): images and the float32
    reference's detections, so the device checks its engine without TensorFlow."""
    import tensorflow as tf

    from edgedet.data.synthetic import from_spec
    from edgedet.runtimes.bundle import write_bundle

    dataset = from_spec(images, split="parity")
    named = [(f"image_{i:02d}", dataset.get(i)["image"]) for i in range(len(dataset))]

    def predict(image):
        outputs = end_to_end.serve(tf.constant(image[None]))
        return {name: value.numpy() for name, value in outputs.items()}

    reference = dataclasses.replace(metadata, target="keras", precision="fp32")
    name = f"Keras {getattr(end_to_end.model, 'name', 'model')} (float32)"
    return write_bundle(folder, reference, named, predict, name, force=force)
