"""INT8 benchmark: speed and accuracy of the Q/DQ (U8S8, S8S8), TFLite and OpenVINO INT8 artifacts.

Exports the FP32 ONNX of a model, calibrates once (`edgedet.calibration`),
writes the S8S8 Q/DQ model, the U8S8 Q/DQ model twice (8-bit weights, for
VNNI / ARM CPUs, and 7-bit weights, `--calib-cpu avx2`, for x86 without VNNI,
where ONNX Runtime's U8S8 kernels saturate with 8 bits), the TFLite INT8
model and the OpenVINO INT8 IR (NNCF, `--no-openvino` to skip), then:

- latency: `edgedet.benchmark.run_benchmark` (each artifact in its own
  process, ONNX Runtime CPU / LiteRT, `--threads`) on the same images;
  speed-up = FP32 median / INT8 median;
- accuracy: `edgedet.parity.run_parity` against the FP32 Keras reference on a
  held-out labelled set (synthetic validation split by default): share of
  reference detections matched (same class, IoU >= 0.5), mAP50-95 with the
  reference as ground truth, and the mAP50-95 drop against the labels.

The report names the CPU and its INT8 class and flags (`edgedet.cpu`): INT8
accuracy and speed depend on them.

With a random-weight preset (`yolov8n` before the built-in model exists) only
the speed figures mean anything: say so when you report them.
`--model synthetic-yolov8n` is a YOLOv8n (80 classes) with the trained-like
weights of `tools/make_ultralytics_fixture.py` (`synthetic_weights`: non-zero
BatchNorm statistics, activations with a useful range) imported through
`edgedet.models.ultralytics_import`: its INT8 agreement with the FP32 model
means something (labels do not).

Usage:

    python benchmarks/int8.py --model yolov8n --threads 2 --out /tmp/int8
    python benchmarks/int8.py --model model.keras --calib-data calib/ --eval-data val/
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

# None: `edgedet.calibration.data.DEFAULT_SOURCE`, the built-in model's training stream.
DEFAULT_CALIB = None
# The built-in model's held-out set (`edgedet train --holdout 500 --seed 0`).
DEFAULT_EVAL = "synthetic:shapes?size=224&n=500&seed=1000"
DEFAULT_SPEED_IMAGES = "synthetic:shapes?n=8&seed=2&size=480x640"
# The two U8S8 builds: 8-bit weights (exact with VNNI) and 7-bit (exact on any x86).
U8S8_CPUS = {"onnx_u8s8_w8": "vnni", "onnx_u8s8_w7": "avx2"}
# File name of each artifact in --out.
ARTIFACTS = {
    "onnx_fp32": "fp32.onnx",
    "tflite_fp32": "fp32.tflite",
    "onnx_u8s8_w8": "model_int8_w8.onnx",
    "onnx_u8s8_w7": "model_int8_w7.onnx",
    "onnx_s8s8": "model_int8_trt.onnx",
    "tflite_int8": "model_int8.tflite",
    "openvino_int8": "model_int8.xml",
}


def parse_args(argv=None):
    from edgedet.calibration.methods import DEFAULT_METHOD, METHODS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolov8n", help="A .keras file or a preset name.")
    parser.add_argument("--out", required=True, help="Folder for the artifacts and int8.json.")
    parser.add_argument("--calib-data", default=DEFAULT_CALIB)
    parser.add_argument("--calib-size", type=int, default=300)
    parser.add_argument("--calib-method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--sensitivity-size", type=int, default=0,
                        help="Run the sensitivity search (S8S8) on this many images of the "
                             "calibration source's 'val' split (not the eval images); its float "
                             "blocks apply to every INT8 artifact. 0: off.")
    parser.add_argument("--sensitivity-recall", type=float, default=0.97,
                        help="Matched-detection share the search must reach (default: 0.97).")
    parser.add_argument("--sensitivity-data", default=None,
                        help="Held-out images for the search (a dataset spec; default: the "
                             "calibration source's --sensitivity-split).")
    parser.add_argument("--sensitivity-split", default="val")
    parser.add_argument("--family-float", choices=("on", "off"), default="on",
                        help="off: quantize the conv blocks the model family table keeps float "
                             "(`int8_float_layers`) too, to measure what keeping them costs.")
    parser.add_argument("--eval-data", default=DEFAULT_EVAL,
                        help="Held-out labelled images (a dataset spec: labels give the mAP drop).")
    parser.add_argument("--eval-split", default="holdout",
                        help="Split of --eval-data (synthetic streams differ per split).")
    parser.add_argument("--eval-size", type=int, default=100)
    parser.add_argument("--speed-images", default=DEFAULT_SPEED_IMAGES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--conf", type=float, default=None,
                        help="Confidence threshold baked in (random weights: use a low one; "
                             "0.001 with --max-det 300 gives the validation-style mAP).")
    parser.add_argument("--max-det", type=int, default=None,
                        help="Most detections per image baked in (default: the model's).")
    parser.add_argument("--imgsz", type=int, default=None,
                        help="Letterbox size baked in (default: the model's).")
    parser.add_argument("--head", choices=("one2many", "one2one"), default=None,
                        help="Detection head (one2one: families with a one-to-one head, "
                             "YOLO26). Default: the model's.")
    parser.add_argument("--lift-head-refusals", action="store_true",
                        help="Build the combinations `edgedet.exporters.head_support` refuses "
                             "(e.g. one2one TFLite INT8), to measure whether a refusal is "
                             "still needed.")
    parser.add_argument("--tflite-ranges", default=None,
                        choices=["min_max", "mean_min_max", "p90_min_max", "p99_min_max"],
                        help="TFLite INT8 activation ranges (default: the exporter's rule for "
                             "--calib-method, `edgedet.exporters.tflite_int8.RANGES`).")
    parser.add_argument("--only-tflite", action="store_true",
                        help="Build and measure only the TFLite FP32 and INT8 models.")
    parser.add_argument("--no-tflite", action="store_true", help="Skip the TFLite INT8 model.")
    parser.add_argument("--no-openvino", action="store_true",
                        help="Skip the OpenVINO INT8 model (NNCF).")
    parser.add_argument("--reuse", action="store_true",
                        help="Reuse the artifacts already in --out (skip export and calibration).")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    return parser.parse_args(argv)


STARTED = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_YOLOV8N = "synthetic-yolov8n"


def synthetic_yolov8n(image_size=None, seed=0):
    """A YOLOv8n with `synthetic_weights` (see the module docstring), imported as edgedet does."""
    import gzip
    import importlib.util

    import numpy as np

    from edgedet.models.ultralytics_import import from_ultralytics

    spec = importlib.util.spec_from_file_location(
        "make_ultralytics_fixture", ROOT / "tools" / "make_ultralytics_fixture.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with gzip.open(ROOT / "tests" / "fixtures" / "ultralytics" / "state_dict_shapes.json.gz") as f:
        shapes = json.loads(f.read())["yolov8n"]["shapes"]
    drawn = tool.synthetic_weights([(k, s) for k, s in shapes if tool.is_random(k)], seed)
    state = {k: drawn[k] if k in drawn else np.zeros(s, np.float32) for k, s in shapes}
    for key in state:
        if key.endswith("dfl.conv.weight"):
            state[key] = np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)
    return from_ultralytics(state, size="n", num_classes=80, image_size=image_size)


def build_artifacts(model, config, args, out):
    """FP32 ONNX + TFLite, then the INT8 models from one calibration. Returns name -> path."""
    from edgedet.calibration.calibrate import calibrate
    from edgedet.calibration.data import calibration_data
    from edgedet.calibration.qdq import quantize
    from edgedet.export import export

    targets = ["onnx"] if args.no_tflite else ["tflite"] if args.only_tflite else ["onnx", "tflite"]
    paths = {}
    for result in export(model, targets, out, config=config, stem="fp32", force=True,
                         progress=log):
        paths[f"{result.target}_fp32"] = result.path
    data = calibration_data(args.calib_data, size=args.calib_size)
    if args.only_tflite:
        timings = {}
        paths["tflite_int8"] = _tflite_int8(model, config, args, out, data, (), timings)
        return paths, timings
    held_out, thresholds = None, None
    if args.sensitivity_size:
        from edgedet.thresholds import DEFAULTS

        source = calibration_data(args.sensitivity_data or args.calib_data,
                                  size=args.sensitivity_size, seed=1,
                                  split=args.sensitivity_split, min_images=1)
        held_out = source.images()
        thresholds = DEFAULTS["int8"].replace(min_recall=args.sensitivity_recall)
    started = time.perf_counter()
    calibrated = calibrate(paths["onnx_fp32"], data, out, method=args.calib_method, stem="model",
                           flavours=("s8s8",), sensitivity_images=held_out,
                           sensitivity_thresholds=thresholds, force=True, progress=log)
    paths["onnx_s8s8"] = calibrated.paths["s8s8"]
    kept = calibrated.sensitivity.kept if calibrated.sensitivity is not None else []
    float_nodes = calibrated.sensitivity.float_nodes if calibrated.sensitivity is not None else ()
    for name, cpu in U8S8_CPUS.items():
        log(f"writing {name} (--calib-cpu {cpu})")
        paths[name] = out / ARTIFACTS[name]
        quantize(paths["onnx_fp32"], calibrated.ranges, paths[name], flavour="u8s8",
                 exclude=float_nodes, cpu=cpu)
    timings = {"calibrate_onnx_seconds": round(time.perf_counter() - started, 1)}
    if calibrated.sensitivity is not None:
        log(f"sensitivity: kept {kept} float")
        timings["sensitivity_kept_float"] = kept
    if not args.no_tflite:
        paths["tflite_int8"] = _tflite_int8(model, config, args, out, data, kept, timings)
    if not args.no_openvino:
        started = time.perf_counter()
        (result,) = export(model, ["openvino"], out, config=config, stem="model", force=True,
                           precision="int8", progress=log,
                           calibration={"data": data, "method": args.calib_method,
                                        "float_blocks": kept})
        paths["openvino_int8"] = result.path
        timings["openvino_int8_seconds"] = round(time.perf_counter() - started, 1)
    return paths, timings


def _tflite_int8(model, config, args, out, data, kept, timings):
    """Exports the TFLite INT8 model; returns its path and adds its time to `timings`."""
    from edgedet.export import export
    from edgedet.exporters import tflite_int8

    if args.tflite_ranges:
        tflite_int8.RANGES[args.calib_method] = args.tflite_ranges
    started = time.perf_counter()
    (result,) = export(model, ["tflite"], out, config=config, stem="model", force=True,
                       precision="int8", progress=log,
                       calibration={"data": data, "method": args.calib_method,
                                    "float_blocks": kept})
    timings["tflite_int8_seconds"] = round(time.perf_counter() - started, 1)
    return result.path


def speed(paths, args):
    from edgedet.benchmark.run import run_benchmark

    document = run_benchmark(list(paths.values()), images=args.speed_images, runs=args.runs,
                             threads=args.threads, progress=log)
    medians = {}
    for name, result in zip(paths, document["results"]):
        medians[name] = (None if result["error"]
                         else result["batches"][0]["latency_ms"]["median"])
    figures = {"median_ms": medians, "threads": args.threads, "images": args.speed_images,
               "machine": document.get("machine")}
    for name in (*U8S8_CPUS, "onnx_s8s8"):
        if medians.get(name) and medians.get("onnx_fp32"):
            figures[f"{name}_speedup"] = round(medians["onnx_fp32"] / medians[name], 2)
    if medians.get("tflite_int8") and medians.get("tflite_fp32"):
        figures["tflite_int8_speedup"] = round(medians["tflite_fp32"] / medians["tflite_int8"], 2)
    return figures


def cpu_time(paths, args):
    """Median single-thread CPU time (ms) of one `predict` per artifact, in this process.

    CPU time of one thread does not depend on what else runs on the machine, so
    the speed-up it gives is stable on a shared box (wall-clock numbers are not).
    """
    import numpy as np
    import onnxruntime as ort

    from edgedet.data import load_dataset
    from edgedet.runtimes.litert import LiteRTRuntime
    from edgedet.runtimes.onnxrt import OnnxRuntime
    from edgedet.runtimes.openvino_rt import OpenVINORuntime

    dataset = load_dataset(args.speed_images)
    images = [dataset[i]["image"] for i in range(len(dataset))]
    medians = {}
    for name, path in paths.items():
        if str(path).endswith(".onnx"):
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            runtime = OnnxRuntime(path, providers=["CPUExecutionProvider"],
                                  session_options=options)
        elif str(path).endswith(".xml"):
            runtime = OpenVINORuntime(path, threads=1)
        else:
            runtime = LiteRTRuntime(path, num_threads=1)
        with runtime:
            for image in images[:2]:
                runtime.predict([image])
            times = []
            for run in range(args.runs):
                image = images[run % len(images)]
                started = time.process_time()
                runtime.predict([image])
                times.append(time.process_time() - started)
        medians[name] = round(1000 * float(np.median(times)), 2)
        log(f"{name}: {medians[name]} ms CPU (1 thread)")
    figures = {"cpu_ms_1_thread": medians}
    for name, base in (*((n, "onnx_fp32") for n in U8S8_CPUS), ("onnx_s8s8", "onnx_fp32"),
                       ("tflite_int8", "tflite_fp32")):
        if medians.get(name) and medians.get(base):
            figures[f"{name}_speedup"] = round(medians[base] / medians[name], 2)
    return figures


def accuracy(model, paths, args):
    from edgedet.data import load_dataset, sample
    from edgedet.parity import run_parity

    dataset = load_dataset(args.eval_data, split=args.eval_split)
    if args.eval_size and args.eval_size < len(dataset):
        dataset = sample(dataset, args.eval_size, seed=0)
    names = [n for n in paths if not n.endswith("_fp32")] + [
        n for n in ("onnx_fp32", "tflite_fp32") if n in paths]
    # Labels only mean something for a model trained on these classes.
    labelled = set(dataset.class_names) <= set(getattr(model, "class_names", ()) or ())
    result = run_parity(model, [paths[n] for n in names], dataset,
                        labels=dataset if labelled else None)
    figures = {"labels": bool(labelled), "clear_margin": clear_margin()}
    for name, artifact in zip(names, result.artifacts):
        summary = artifact.summary or {}
        figures[name] = {
            "status": artifact.status,
            "matched_reference_detections": summary.get("recall"),
            "matched_clear_of_threshold": _matched_clear(result, artifact),
            "map50_95_vs_reference": summary.get("map50_95_vs_reference"),
            "map50_95_drop_points": (None if summary.get("map50_95_drop") is None
                                     else round(100 * summary["map50_95_drop"], 2)),
            "reference_detections": summary.get("reference_detections"),
            "labels_map50_95": summary.get("labels_map50_95"),
            "score_delta_p95": summary.get("score_delta_p95"),
            "worst_score_delta": summary.get("worst_score_delta"),
            "failed_checks": [c["threshold"] for c in artifact.failed_checks],
        }
    figures["reference_labels_map"] = result.reference_runs[0].labels_map
    figures["labels_note"] = result.labels_note()
    return figures


def clear_margin():
    """The INT8 parity tolerance on the 95th percentile of |score delta|.

    "Matched, clear of the threshold" leaves out the reference detections
    scoring below conf + this margin: a score change within the tolerance can
    push them across the threshold either way.
    """
    from edgedet.thresholds import DEFAULTS

    return DEFAULTS["int8"].max_score_delta_p95


def _matched_clear(result, artifact):
    """Matched share of the reference detections scoring >= conf + `clear_margin()`."""
    from edgedet.matching import matched_share
    from edgedet.parity.compare import labels_settings

    if not artifact.matches:  # It did not run.
        return None
    reference = result.reference_runs[artifact.reference_run or 0]
    conf = labels_settings(reference.inference)["confidence_threshold"] or 0.0
    return matched_share(artifact.matches, reference.detections, conf + clear_margin())


def markdown(report):
    machine = report["machine"]
    lines = [f"### INT8 ({report['model']}, {report['calibration']})", "",
             f"Machine: {machine['cpu']}, INT8 class {machine['cpu_class']} (flags: "
             f"{', '.join(machine['int8_flags']) or 'unknown'}).", ""]
    if report.get("speed"):
        speed_, cpu = report["speed"], report["cpu"]
        lines += [f"| artifact | wall ms ({speed_['threads']} threads) | speed-up | "
                  "CPU ms (1 thread) | speed-up |", "|---|---|---|---|---|"]
        for name, ms in speed_["median_ms"].items():
            lines.append(
                f"| {name} | {ms if ms is None else round(ms, 1)} | "
                f"{speed_.get(f'{name}_speedup', '')} | {cpu['cpu_ms_1_thread'].get(name)} | "
                f"{cpu.get(f'{name}_speedup', '')} |")
        lines.append("")
    if report.get("accuracy"):
        margin = report["accuracy"].get("clear_margin") or clear_margin()
        lines += ["| artifact | matched ref. detections | matched, score >= conf + "
                  f"{margin:g} | mAP50-95 vs ref. | mAP drop (pts) | score delta p95 / worst | "
                  "parity |", "|---|---|---|---|---|---|---|"]
        for name, row in report["accuracy"].items():
            if isinstance(row, dict) and "status" in row:
                verdict = row["status"] + (f" ({', '.join(row['failed_checks'])})"
                                           if row.get("failed_checks") else "")
                lines.append(f"| {name} | {_pct(row['matched_reference_detections'])} | "
                             f"{_pct(row.get('matched_clear_of_threshold'))} | "
                             f"{_num(row['map50_95_vs_reference'])} | "
                             f"{_num(row['map50_95_drop_points'])} | "
                             f"{_num(row.get('score_delta_p95'))} / "
                             f"{_num(row.get('worst_score_delta'))} | {verdict} |")
        if report["accuracy"].get("labels_note"):
            lines += ["", report["accuracy"]["labels_note"]]
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines)


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value):
    return "-" if value is None else f"{value:.3f}"


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    from edgedet.cli.common import inference_config, resolve_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = (synthetic_yolov8n(args.imgsz) if args.model == SYNTHETIC_YOLOV8N
             else resolve_model(args.model))
    config = inference_config(model, imgsz=args.imgsz, conf=args.conf, max_det=args.max_det,
                              head=args.head)
    existing = {name: out / file_name for name, file_name in ARTIFACTS.items()}
    if args.no_tflite:
        existing = {k: v for k, v in existing.items() if not k.startswith("tflite")}
    if args.no_openvino or args.only_tflite:
        existing = {k: v for k, v in existing.items() if not k.startswith("openvino")}
    if args.only_tflite:
        existing = {k: v for k, v in existing.items() if k.startswith("tflite")}
    if args.lift_head_refusals:
        from unittest import mock

        # What `edgedet.export` checks before any work (`check_head_support`).
        mock.patch("edgedet.exporters.head_support.REFUSALS", ()).start()
    if args.reuse and all(p.exists() for p in existing.values()):
        paths, timings = existing, {}
        log("reusing the artifacts in " + str(out))
    elif args.family_float == "off":
        from unittest import mock

        # What every INT8 path reads (`edgedet.calibration.body.family_float_blocks`).
        with mock.patch("edgedet.models.families.int8_float_layers", return_value=()):
            paths, timings = build_artifacts(model, config, args, out)
    else:
        paths, timings = build_artifacts(model, config, args, out)
    from edgedet.calibration.data import DEFAULT_SOURCE

    source = args.calib_data or DEFAULT_SOURCE
    from edgedet.benchmark.machine import cpu_model
    from edgedet.cpu import isa_summary
    from edgedet.exporters.tflite_int8 import RANGES

    ranges = args.tflite_ranges or RANGES[args.calib_method]
    report = {"model": args.model, "machine": {"cpu": cpu_model(), **isa_summary()},
              "head": config.head, "head_refusals_lifted": args.lift_head_refusals,
              "calibration": f"{args.calib_method} (TFLite ranges {ranges}), {args.calib_size} "
              f"images from {source}", "timings": timings, "family_float": args.family_float,
              "command": " ".join(["python", "benchmarks/int8.py", *(argv or sys.argv[1:])]),
              "artifacts": {k: str(v) for k, v in paths.items()}}
    if not args.skip_speed:
        report["cpu"] = cpu_time(paths, args)
        report["speed"] = speed(paths, args)
    if not args.skip_accuracy:
        report["accuracy"] = accuracy(model, paths, args)
    (out / "int8.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(report)
    (out / "int8.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
