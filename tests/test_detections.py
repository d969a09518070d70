"""Tests for edgedet.detections."""

import json

import numpy as np
import pytest

from edgedet.detections import Detections, batch_from_padded


def _two():
    return Detections(
        boxes=[[10, 20, 30, 60], [0, 0, 5, 5]],
        confidence=[0.9, 0.5],
        classes=[2, 0],
    )


def test_coerces_dtypes_and_iterates():
    det = _two()
    assert det.boxes.dtype == np.float32 and det.boxes.shape == (2, 4)
    assert det.confidence.dtype == np.float32
    assert det.classes.dtype == np.int32
    assert len(det) == 2
    rows = list(det)
    assert [r[2] for r in rows] == [2, 0]
    assert isinstance(rows[0][1], float) and isinstance(rows[0][2], int)
    np.testing.assert_array_equal(rows[0][0], [10, 20, 30, 60])
    # Whole-number floats are accepted as classes.
    assert Detections([[0, 0, 1, 1]], [0.1], np.array([3.0])).classes.tolist() == [3]


def test_empty():
    det = Detections.empty("yxyx")
    assert len(det) == 0 and list(det) == [] and det.to_dict() == []
    assert det.boxes.shape == (0, 4) and det.bounding_box_format == "yxyx"
    assert len(Detections([], [], [])) == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"boxes": [[0, 0, 1]]}, r"boxes` of shape \[N, 4\], received shape \(1, 3\)"),
        ({"confidence": [0.1, 0.2]}, r"`confidence` of shape \[1\]"),
        ({"classes": [[1]]}, r"`classes` of shape \[1\]"),
        ({"boxes": [[0, 0, np.nan, 1]]}, "`boxes` contains NaN or infinite"),
        ({"confidence": [np.inf]}, "`confidence` contains NaN or infinite"),
        ({"classes": [1.5]}, r"Expected integer `classes`, received \[1.5\]"),
        ({"classes": [-1]}, r"`classes` >= 0, received \[-1\]"),
        ({"bounding_box_format": "xyWH"}, "Did you mean 'xywh'"),
    ],
)
def test_validation_errors(kwargs, match):
    args = {"boxes": [[0, 0, 1, 1]], "confidence": [0.5], "classes": [1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Detections(**args)


def test_to_format_round_trip():
    det = _two()
    rel = det.to_format("rel_center_xywh", image_shape=(100, 200))
    assert rel.bounding_box_format == "rel_center_xywh"
    np.testing.assert_allclose(rel.boxes[0], [0.1, 0.4, 0.1, 0.4], rtol=1e-6)
    back = rel.to_format("xyxy", image_shape=(100, 200))
    np.testing.assert_allclose(back.boxes, det.boxes, atol=1e-4)
    np.testing.assert_array_equal(back.classes, det.classes)
    with pytest.raises(ValueError, match="needs the image size"):
        det.to_format("rel_xyxy")


def test_to_dict_is_json_ready():
    rows = _two().to_dict(class_names=["cat", "dog", "bird"])
    assert json.loads(json.dumps(rows)) == rows
    assert rows[0] == {
        "box": [10.0, 20.0, 30.0, 60.0],
        "confidence": pytest.approx(0.9),
        "class_id": 2,
        "class_name": "bird",
    }
    assert _two().to_dict()[1]["class_name"] is None
    with pytest.raises(ValueError, match="Class id 2 has no name"):
        _two().to_dict(class_names=["cat"])


def _padded(batch=2, max_det=4):
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 50, size=(batch, max_det, 4)).astype(np.float32)
    confidence = np.zeros((batch, max_det), np.float32)
    classes = np.full((batch, max_det), -1, np.int32)
    num = np.array([3, 0][:batch], np.int32)
    confidence[0, :3] = [0.9, 0.8, 0.3]
    classes[0, :3] = [1, 4, 1]
    return {"boxes": boxes, "confidence": confidence, "classes": classes, "num_detections": num}


def test_from_padded_drops_padding_rows():
    out = _padded()
    det = Detections.from_padded(
        out["boxes"][0], out["confidence"][0], out["classes"][0], out["num_detections"][0]
    )
    assert len(det) == 3
    np.testing.assert_array_equal(det.boxes, out["boxes"][0, :3])
    assert det.classes.tolist() == [1, 4, 1]
    zero = Detections.from_padded(out["boxes"][1], out["confidence"][1], out["classes"][1], 0)
    assert len(zero) == 0


def test_from_padded_errors():
    out = _padded()
    b, c, k = out["boxes"][0], out["confidence"][0], out["classes"][0]
    with pytest.raises(ValueError, match="Invalid num_detections: 5. Expected 0 <= num"):
        Detections.from_padded(b, c, k, 5)
    with pytest.raises(ValueError, match="Invalid num_detections: -1"):
        Detections.from_padded(b, c, k, -1)
    with pytest.raises(ValueError, match="one integer"):
        Detections.from_padded(b, c, k, [1, 2])
    with pytest.raises(ValueError, match=r"`confidence` of shape \[4\]"):
        Detections.from_padded(b, c[:2], k, 1)
    # A padding row counted as valid is caught by validation.
    with pytest.raises(ValueError, match="classes` >= 0"):
        Detections.from_padded(b, c, k, 4)


def test_batch_from_padded():
    out = _padded()
    dets = batch_from_padded(out, "xywh")
    assert [len(d) for d in dets] == [3, 0]
    assert all(d.bounding_box_format == "xywh" for d in dets)
    np.testing.assert_allclose(dets[0].confidence, [0.9, 0.8, 0.3])


def test_batch_from_padded_accepts_tensors():
    tf = pytest.importorskip("tensorflow")
    out = {k: tf.constant(v) for k, v in _padded().items()}
    assert [len(d) for d in batch_from_padded(out)] == [3, 0]


def test_batch_from_padded_errors():
    out = _padded()
    with pytest.raises(ValueError, match=r"missing \['num_detections'\]"):
        batch_from_padded({k: v for k, v in out.items() if k != "num_detections"})
    with pytest.raises(ValueError, match="expected a batch of 2"):
        batch_from_padded({**out, "classes": out["classes"][:1]})
    with pytest.raises(ValueError, match="Expected a dict"):
        batch_from_padded([out])
