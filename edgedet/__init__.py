"""edgedet: ship a Keras 3 YOLOv8 detector to the edge.

Importing `edgedet` is cheap: it imports neither Keras nor TensorFlow. Modules
that need Keras call `edgedet.backend.keras()` (or import `edgedet.models`),
which checks that Keras runs on the TensorFlow backend. It is enough for
`keras.saving.load_model("model.keras")` to find `YOLOV8Detector` and the
other edgedet objects a saved model names (`edgedet.keras_objects`), whether
Keras is imported before or after edgedet.
"""

import os

__version__ = "0.1.0"

# edgedet builds TensorFlow graphs, so Keras must use the TensorFlow backend.
# Only a default: an explicit KERAS_BACKEND is honoured and then checked by
# `edgedet.backend.keras()`, which fails with a clear message.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgedet import keras_objects  # noqa: E402 (after the environment defaults above)

keras_objects.install()
