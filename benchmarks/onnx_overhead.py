"""What does putting the letterbox, decode and NMS inside the ONNX graph cost?

Compares, with ONNX Runtime on the CPU, YOLOv8n at 640:

- end to end: the edgedet artifact, `images` uint8 `[1, 720, 1280, 3]` in,
  detections out (letterbox, network, decode, NMS inside);
- network only: the same Keras network exported alone, float32
  `[1, 640, 640, 3]` in, raw head out (what a pipeline that letterboxes,
  decodes and runs NMS outside the graph would run).

and prints median latencies, their ratio (target: <= 1.15x) and the export
time of every target. Weights are random (nothing is downloaded), so two NMS
loads are measured: "worst" keeps the random head, where every anchor scores
~0.5 and the full `pre_nms_topk` (1000) candidates enter the NMS; "empty"
pushes every class logit to -8, so no candidate passes. A trained model on a
real image sits between the two.

Usage:

    python benchmarks/onnx_overhead.py [--runs 50] [--threads 0]

Not a test: it takes a few minutes and its numbers depend on the machine.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def build_model(class_bias=None):
    import keras

    from edgedet.models import YOLOV8Detector

    keras.utils.set_random_seed(0)
    model = YOLOV8Detector.from_preset("yolov8n")
    if class_bias is not None:
        for layer in model._flatten_layers():
            if layer.name.endswith("_class_3_conv"):
                kernel, bias = layer.get_weights()
                layer.set_weights([kernel, np.full_like(bias, class_bias)])
    return model


def network_only_onnx(model, path):
    """The bare network: float32 [1, 640, 640, 3] in, raw head out."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    size = model.default_inference_config().letterbox.size
    spec = [tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")]

    @tf.function(input_signature=spec)
    def network(pixels):
        return model(pixels, training=False)

    proto, _ = tf2onnx.convert.from_function(network, input_signature=spec, opset=17)
    onnx.save(proto, str(path))
    return path


def session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def interleaved_ms(runs_by_name, runs, warmup=5):
    """Median and min latency (ms) of each `(session, feed)`, timed in turns.

    Taking turns (A, B, C, A, B, C, ...) keeps a busy machine's slow drift
    from favouring whichever model would have run last.
    """
    for sess, feed in runs_by_name.values():
        for _ in range(warmup):
            sess.run(None, feed)
    times = {name: [] for name in runs_by_name}
    for _ in range(runs):
        for name, (sess, feed) in runs_by_name.items():
            start = time.perf_counter()
            sess.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def graph_stats(path):
    import onnx

    from edgedet.exporters.onnx_export import cancelling_transposes, iter_nodes

    model = onnx.load(str(path))
    nodes = list(iter_nodes(model.graph))
    transposes = sum(n.op_type == "Transpose" for n in nodes)
    return len(nodes), transposes, len(cancelling_transposes(model))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime intra-op threads (0: its default)")
    args = parser.parse_args()

    import onnxruntime as ort

    from edgedet.export import export

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 720, 1280, 3), dtype=np.uint8)
    pixels = rng.uniform(0, 255, (1, 640, 640, 3)).astype(np.float32)
    import os

    print(f"ONNX Runtime {ort.__version__}, CPU ({os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}), threads={args.threads or 'default'}, {args.runs} runs "
          "taken in turns, median (min) ms\n")

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = build_model()
        results = export(model, "all", folder / "all")
        print("export time per target (yolov8n, 640):")
        for r in results:
            print(f"  {r.target:<11} {r.seconds:6.1f} s  {r.size_bytes / 1e6:6.1f} MB")
        end_to_end = {"worst": next(r.path for r in results if r.target == "onnx")}
        empty = export(build_model(class_bias=-8.0), ["onnx"], folder / "empty")
        end_to_end["empty"] = empty[0].path
        bare = network_only_onnx(model, folder / "network.onnx")

        nodes, transposes, cancelling = graph_stats(end_to_end["worst"])
        print(f"\nend-to-end graph: {nodes} nodes, {transposes} Transpose, "
              f"{cancelling} cancelling Transpose pairs")

        runs_by_name = {"network": (session(bare, args.threads), {"pixels": pixels})}
        for name, path in end_to_end.items():
            runs_by_name[name] = (session(path, args.threads), {"images": image})
        timings = interleaved_ms(runs_by_name, args.runs)
        base_ms, base_min = timings["network"]
        print(f"\nnetwork only  [1,640,640,3] float32: {base_ms:7.1f} ({base_min:.1f})")
        for name in end_to_end:
            sess, feed = runs_by_name[name]
            ms, fastest = timings[name]
            count = int(sess.run(["num_detections"], feed)[0][0])
            print(f"end to end    [1,720,1280,3] uint8, NMS {name:<5} ({count:3d} kept): "
                  f"{ms:7.1f} ({fastest:.1f})  ratio {ms / base_ms:.2f}x")

if __name__ == "__main__":
    main()
