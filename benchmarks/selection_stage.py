"""Stage 4 alone in ONNX Runtime: the NMS (one-to-many head) vs the one-to-one top-k.

Both selections get the same decoded `[1, A, 4]` boxes and `[1, A, C]` scores
(640 px: A = 8400, C = 80), converted to ONNX by tf2onnx as in every artifact,
and run alternately in one process on one thread (CPU time per call, median),
for a quiet frame (few anchors over the threshold) and a busy one (many):

    python benchmarks/selection_stage.py --repeats 50
"""

import argparse
import time

import numpy as np


def _onnx(select, anchors, classes):
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec([None, anchors, 4], tf.float32),
            tf.TensorSpec([None, anchors, classes], tf.float32)]
    function = tf.function(select, input_signature=spec)
    model, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=17)
    return model.SerializeToString()


def _frame(anchors, classes, busy, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 600, (1, anchors, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 120, (1, anchors, 2))], -1)
    scores = rng.uniform(0, 0.2, (1, anchors, classes))
    hot = rng.choice(anchors, busy, replace=False)
    scores[0, hot, rng.integers(0, classes, busy)] = rng.uniform(0.3, 1.0, busy)
    return boxes.astype(np.float32), scores.astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=8400)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    import onnxruntime as ort

    from edgedet.config import NMSConfig
    from edgedet.nms import non_max_suppression
    from edgedet.topk import one_to_one_select

    config = NMSConfig(confidence_threshold=0.25, max_detections=300)
    contenders = {
        "one2many (NMS)": lambda b, s: non_max_suppression(b, s, config),
        "one2one (top-k)": lambda b, s: one_to_one_select(b, s, config),
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(_onnx(f, args.anchors, args.classes), options,
                                           providers=["CPUExecutionProvider"])
                for name, f in contenders.items()}
    print(f"A={args.anchors} C={args.classes} max_det=300 conf=0.25, ONNX Runtime "
          f"{ort.__version__}, 1 thread, CPU ms per call (median of {args.repeats})")
    for label, busy in (("quiet frame (20 candidates)", 20), ("busy frame (3000 candidates)",
                                                             3000)):
        boxes, scores = _frame(args.anchors, args.classes, busy)
        times = {name: [] for name in sessions}
        for _ in range(args.repeats):
            for name, session in sessions.items():  # alternating
                feed = dict(zip([i.name for i in session.get_inputs()], (boxes, scores)))
                start = time.process_time()
                session.run(None, feed)
                times[name].append(time.process_time() - start)
        row = ", ".join(f"{name} {1000 * np.median(t):.2f}" for name, t in times.items())
        print(f"{label}: {row}")


if __name__ == "__main__":
    main()
