"""The one-to-one (NMS-free) selection: TensorFlow graph vs the numpy reference,
and what it converts to (no ONNX `Mod`)."""

import numpy as np
import pytest

from edgedet.config import NMSConfig
from edgedet.topk import one_to_one_select_numpy

tf = pytest.importorskip("tensorflow")

from edgedet.topk import one_to_one_select  # noqa: E402


def _inputs(batch=3, anchors=84, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60, (batch, anchors, 2))
    wh = rng.uniform(1, 20, (batch, anchors, 2))
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (batch, anchors, classes)).astype(np.float32) ** 3
    return boxes, scores


@pytest.mark.parametrize("config", [
    NMSConfig(confidence_threshold=0.25, max_detections=20),
    NMSConfig(confidence_threshold=0.0, max_detections=20),
    NMSConfig(confidence_threshold=0.1, max_detections=100),  # more than the 84 anchors
    NMSConfig(confidence_threshold=0.2, max_detections=30, class_aware=False),
    NMSConfig(confidence_threshold=0.99, max_detections=10),  # nothing passes
], ids=["aware", "no-threshold", "k-over-anchors", "agnostic", "empty"])
def test_graph_equals_numpy(config):
    boxes, scores = _inputs()
    got = {k: v.numpy() for k, v in one_to_one_select(tf.constant(boxes), tf.constant(scores),
                                                       config).items()}
    want = one_to_one_select_numpy(boxes, scores, config)
    for name in want:
        assert got[name].shape == want[name].shape, name
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    n = want["num_detections"]
    for b in range(len(n)):
        assert np.all(want["classes"][b, n[b]:] == -1)
        assert np.all(want["confidence"][b, :n[b]] >= config.confidence_threshold)


@pytest.mark.parametrize("max_det", [20, 100])  # under and over the 84 anchors
def test_dynamic_anchor_count_equals_static(max_det):
    # A rect letterbox body gives a run-time anchor count: the anchors are padded
    # (score -1, never kept) up to max_det, which must not change the selection.
    boxes, scores = _inputs()
    config = NMSConfig(confidence_threshold=0.0, max_detections=max_det)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None, 5])])
    def dynamic(boxes, scores):
        return one_to_one_select(boxes, scores, config)

    want = one_to_one_select_numpy(boxes, scores, config)
    got = dynamic(boxes, scores)
    for name in want:
        np.testing.assert_array_equal(got[name].numpy(), want[name], err_msg=name)


def test_same_as_the_best_pairs_overall():
    # The two-stage top-k equals the k best (anchor, class) pairs of all A x C.
    boxes, scores = _inputs(batch=1, anchors=200, classes=7, seed=3)
    config = NMSConfig(confidence_threshold=0.0, max_detections=25)
    out = one_to_one_select_numpy(boxes, scores, config)
    flat = scores[0].reshape(-1)
    best = np.sort(flat)[::-1][:25]
    np.testing.assert_array_equal(out["confidence"][0], best)
    # An anchor may give several classes (class-aware), as in Ultralytics.
    assert len(set(out["classes"][0])) > 1


def test_onnx_has_no_mod_and_matches():
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    boxes, scores = _inputs(batch=2)
    config = NMSConfig(confidence_threshold=0.1, max_detections=30)

    @tf.function(input_signature=[tf.TensorSpec([None, 84, 4], tf.float32),
                                  tf.TensorSpec([None, 84, 5], tf.float32)])
    def select(b, s):
        return one_to_one_select(b, s, config)

    model, _ = tf2onnx.convert.from_function(select, input_signature=select.input_signature,
                                             opset=17)
    ops = {node.op_type for node in model.graph.node}
    assert "Mod" not in ops and "TopK" in ops
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {i.name: v for i, v in
                                             zip(session.get_inputs(), (boxes, scores))})))
    want = one_to_one_select_numpy(boxes, scores, config)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("case", ["aware", "agnostic"])
def test_equals_ultralytics_postprocess(case):
    """Ultralytics 8.4.190's `Detect.postprocess` on the same predictions
    (`tools/make_one2one_fixture.py`): same rows, order, boxes, scores, classes."""
    from pathlib import Path

    data = np.load(Path(__file__).parent / "fixtures/ultralytics/one2one_postprocess.npz")
    preds, want = data["predictions"], data[case]
    config = NMSConfig(confidence_threshold=0.0, max_detections=int(data["max_det"]),
                       class_aware=case == "aware")
    got = {k: v.numpy() for k, v in one_to_one_select(
        tf.constant(preds[..., :4]), tf.constant(preds[..., 4:]), config).items()}
    np.testing.assert_array_equal(got["boxes"], want[..., :4])
    np.testing.assert_array_equal(got["confidence"], want[..., 4])
    np.testing.assert_array_equal(got["classes"], want[..., 5].astype(np.int32))
