"""The runtime interface itself, with a fake runtime (no TensorFlow needed)."""

import numpy as np
import pytest

from edgedet.config import MAX_IMAGE_SIDE, InferenceConfig
from edgedet.metadata import ArtifactMetadata
from edgedet.runtimes.base import Runtime, group_by_size


class EchoRuntime(Runtime):
    """One detection per image whose box is (0, 0, width, height) and score = batch index."""

    kind = "echo"

    def __init__(self):
        super().__init__(None)
        self.loads = self.releases = 0
        self.batches = []

    def _read_metadata(self):
        return ArtifactMetadata(("a", "b"), InferenceConfig(), target="echo")

    def _load(self):
        self.loads += 1

    def _release(self):
        self.releases += 1

    def _infer(self, batch):
        self.batches.append(batch.shape)
        b, h, w, _ = batch.shape
        boxes = np.zeros((b, 2, 4), np.float32)
        boxes[:, 0] = [0, 0, w, h]
        confidence = np.zeros((b, 2), np.float32)
        confidence[:, 0] = np.arange(b) / 10
        classes = np.full((b, 2), -1, np.int32)
        classes[:, 0] = 1
        return {
            "boxes": boxes,
            "confidence": confidence,
            "classes": classes,
            "num_detections": np.ones((b,), np.int32),
        }


def image(h, w, c=3, dtype=np.uint8):
    return np.zeros((h, w, c), dtype)


def test_context_manager_loads_once_and_releases():
    runtime = EchoRuntime()
    with runtime as entered:
        assert entered is runtime and runtime.is_loaded
        runtime.__enter__()  # entering again does not load again
    assert (runtime.loads, runtime.releases) == (1, 1)
    assert not runtime.is_loaded


def test_predict_needs_loading():
    with pytest.raises(RuntimeError, match="context manager"):
        EchoRuntime().predict([image(4, 4)])


def test_batch_array_gives_one_detections_per_image():
    with EchoRuntime() as runtime:
        results = runtime.predict(np.zeros((3, 5, 7, 3), np.uint8))
    assert runtime.batches == [(3, 5, 7, 3)]
    assert [len(r) for r in results] == [1, 1, 1]
    np.testing.assert_array_equal(results[0].boxes, [[0, 0, 7, 5]])
    assert [r.confidence[0] for r in results] == pytest.approx([0.0, 0.1, 0.2])
    assert results[0].classes.tolist() == [1]
    assert runtime.last_inference_seconds >= 0


def test_list_of_sizes_is_grouped_and_keeps_order():
    images = [image(5, 7), image(9, 3), image(5, 7), image(1, 1)]
    with EchoRuntime() as runtime:
        results = runtime.predict(images)
    assert runtime.batches == [(2, 5, 7, 3), (1, 9, 3, 3), (1, 1, 1, 3)]
    widths_heights = [tuple(r.boxes[0, 2:].tolist()) for r in results]
    assert widths_heights == [(7, 5), (3, 9), (7, 5), (1, 1)]
    # Position within its size group: images 0 and 2 are batch rows 0 and 1.
    assert [float(r.confidence[0]) for r in results] == pytest.approx([0.0, 0.0, 0.1, 0.0])


def test_empty_list_gives_no_results():
    with EchoRuntime() as runtime:
        assert runtime.predict([]) == []


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((1, 4, 4, 3), np.float32), "dtype uint8.*received dtype float32"),
        ([image(4, 4, dtype=np.int64)], r"images\[0\] with dtype uint8.*int64"),
        (np.zeros((1, 4, 4, 4), np.uint8), "3 channels.*received 4"),
        ([image(4, 4, c=1)], "3 channels.*received 1"),
        (np.zeros((4, 4, 3), np.uint8), r"\[B, H, W, 3\].*image\[None\]"),
        ([np.zeros((4, 4), np.uint8)], r"\[H, W, 3\], received shape \(4, 4\)"),
        (np.zeros((0, 4, 4, 3), np.uint8), "at least one image"),
        ([image(0, 4)], "between 1 and"),
        (np.zeros((1, 1, MAX_IMAGE_SIDE + 1, 3), np.uint8), "between 1 and"),
        ("not an image", "numpy uint8 array, received str"),
    ],
)
def test_bad_input_is_a_clear_value_error(images, message):
    with EchoRuntime() as runtime, pytest.raises(ValueError, match=message):
        runtime.predict(images)


def test_group_by_size_accepts_tensors():
    tf = pytest.importorskip("tensorflow")
    ((indices, batch),) = group_by_size(tf.zeros((2, 3, 4, 3), tf.uint8))
    assert indices == [0, 1] and isinstance(batch, np.ndarray) and batch.shape == (2, 3, 4, 3)
