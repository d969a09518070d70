"""`import edgedet` is enough for `keras.saving.load_model` to find edgedet's classes."""

import subprocess
import sys

import pytest

pytest.importorskip("keras")

LOAD = """
import keras
model = keras.saving.load_model({path!r})
print(type(model).__module__, type(model).__name__, model.class_names)
print(keras.saving.get_registered_object("edgedet>WarmupDecay").__name__)
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from edgedet.models import YOLOV8Detector

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    YOLOV8Detector.from_preset("tiny", class_names=["a", "b"]).save(path)
    return path


@pytest.mark.parametrize("first", ["keras", "edgedet"])
def test_load_model_after_import_edgedet_in_either_order(model_file, first):
    before = "import keras; import edgedet" if first == "keras" else "import edgedet"
    code = before + "\n" + LOAD.format(path=str(model_file))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split("\n")
    assert lines[0] == "edgedet.models.yolo_v8_detector YOLOV8Detector ('a', 'b')"
    assert lines[1] == "WarmupDecay"


def test_without_edgedet_keras_cannot_find_the_class(model_file):
    # What the hook is for: a plain Keras process does not know edgedet's class.
    code = LOAD.format(path=str(model_file))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0 and "YOLOV8Detector" in result.stderr


def test_a_failing_registration_does_not_break_import_keras():
    # The hook runs inside the user's `import keras`: an error there must not become theirs.
    code = """
import warnings
import edgedet
from edgedet import keras_objects

def broken():
    raise RuntimeError("models do not import")

keras_objects.register = broken
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import keras
print(int(keras.ops.add(1, 2)))
print([str(w.message) for w in caught if "could not register" in str(w.message)])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split("\n")
    assert lines[0] == "3"
    assert "RuntimeError: models do not import" in lines[1]
