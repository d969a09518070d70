"""The one place that imports Keras and checks its backend."""

import sys


class BackendError(RuntimeError):
    """Keras is configured with a backend other than TensorFlow."""


def keras():
    """Returns the `keras` module, after checking it runs on TensorFlow.

    edgedet builds TensorFlow graphs (letterbox, decode, NMS) around the Keras
    model and exports them with TensorFlow converters, so the Keras backend
    must be TensorFlow.

    Raises:
        BackendError: if Keras was imported (or configured through
            `KERAS_BACKEND`) with another backend.
    """
    already_imported = "keras" in sys.modules
    import keras as keras_module

    backend = keras_module.backend.backend()
    if backend != "tensorflow":
        how = (
            "Keras was imported before edgedet with this backend"
            if already_imported
            else "KERAS_BACKEND selects it"
        )
        raise BackendError(
            f"edgedet needs the Keras 'tensorflow' backend, but Keras is using "
            f"'{backend}' ({how}). Set KERAS_BACKEND=tensorflow before Python "
            f"starts, or import edgedet before keras."
        )
    return keras_module
