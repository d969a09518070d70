"""The one place that imports Keras and checks its backend."""

import contextlib
import os
import sys


class BackendError(RuntimeError):
    """Keras is configured with a backend other than TensorFlow."""


@contextlib.contextmanager
def stderr_silenced():
    """Silences file descriptor 2 (C++ logging) for the duration of the block.

    TensorFlow 2.21 logs oneDNN / CUDA notices through absl before its log
    settings are read, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them; they are
    noise for a command-line user. Python exceptions are unaffected.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensorflow():
    """Returns the `tensorflow` module, imported without start-up log noise."""
    if "tensorflow" not in sys.modules and not os.environ.get("EDGEDET_VERBOSE_TF"):
        with stderr_silenced():
            import tensorflow as tf

            # Device discovery logs a CUDA error on machines without a GPU
            # driver; do it here, silenced. Set EDGEDET_VERBOSE_TF=1 to see it.
            tf.config.list_physical_devices()
        # TF's Python-side warnings (SavedModel import notes) go through absl.
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow as tf

    return tf


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
    if not already_imported and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        tensorflow()
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
