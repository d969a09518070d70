"""Accuracy of the TensorRT-ready ONNX files, checked on the CPU before a Jetson sees them.

`edgedet export --target trt` on a machine without TensorRT writes the files
the device builds its engine from: `<stem>_trt.onnx` (FP32), `<stem>_fp16_trt.onnx`
and, for INT8, `<stem>_int8_trt.onnx` (the S8S8 Q/DQ model: the explicit
quantization TensorRT is asked to do). This script exports them with the real
exporter, runs each in ONNX Runtime (CPU) and compares it with the Keras
reference on held-out labelled images (`edgedet.parity.run_parity`): matched
reference detections, mAP50-95 with the reference as ground truth, the
mAP50-95 drop against the labels, and the parity verdict at each precision's
thresholds. It also reports the ONNX Runtime U8S8 model of the same
calibration, for comparison.

A quantization recipe TensorRT would parse but that loses accuracy shows
here, not on the device.

Usage:

    python benchmarks/trt_ready.py --model shapes --out /tmp/trt_ready
    python benchmarks/trt_ready.py --model m.keras --calib-data "synthetic:shapes?..." \\
        --eval-data "synthetic:shapes?..." --eval-split val --out /tmp/trt_ready
"""

import argparse
import json
import sys
import time
from pathlib import Path

# The built-in model's held-out set (`edgedet train --holdout 500 --seed 0`).
DEFAULT_EVAL = "synthetic:shapes?size=224&n=500&seed=1000"
STARTED = time.perf_counter()


def parse_args(argv=None):
    from edgedet.calibration.methods import DEFAULT_METHOD, METHODS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="shapes", help="A .keras file or a built-in model.")
    parser.add_argument("--out", required=True, help="Folder for the files and trt_ready.json.")
    parser.add_argument("--trt-version", default="10.3.0")
    parser.add_argument("--calib-data", default=None)
    parser.add_argument("--calib-size", type=int, default=300)
    parser.add_argument("--calib-method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--eval-data", default=DEFAULT_EVAL)
    parser.add_argument("--eval-split", default="holdout")
    parser.add_argument("--eval-size", type=int, default=200)
    parser.add_argument("--conf", type=float, default=None,
                        help="Confidence threshold baked in (0.001 for validation-style mAP).")
    parser.add_argument("--max-det", type=int, default=None)
    return parser.parse_args(argv)


def log(message):
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def export_files(model, config, args, out):
    """The TensorRT-ready files at every precision and the ONNX U8S8 model; name -> path."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    calibration = {"data": args.calib_data, "size": args.calib_size,
                   "method": args.calib_method}
    paths = {}
    for precision in ("fp32", "fp16", "int8"):
        try:
            export(model, ["trt"], out, config=config, force=True, precision=precision,
                   calibration=calibration if precision == "int8" else None,
                   target_options={"trt": {"trt_version": args.trt_version}}, progress=log)
        except ExportError as error:  # No TensorRT here: the files are written all the same.
            if "Wrote the TensorRT-ready files" not in str(error):
                raise
        stem = model.name if precision == "fp32" else f"{model.name}_{precision}"
        paths[f"trt_{precision}"] = out / f"{stem}_trt.onnx"
    (result,) = export(model, ["onnx"], out, config=config, force=True, precision="int8",
                       calibration=calibration, progress=log)
    paths["onnx_u8s8"] = result.path
    return paths


def accuracy(model, paths, args):
    from edgedet.data import load_dataset, sample
    from edgedet.parity import run_parity

    dataset = load_dataset(args.eval_data, split=args.eval_split)
    if args.eval_size and args.eval_size < len(dataset):
        dataset = sample(dataset, args.eval_size, seed=0)
    result = run_parity(model, list(paths.values()), dataset, labels=dataset)
    figures = {"reference_labels_map": result.reference_runs[0].labels_map,
               "images": len(dataset)}
    for name, artifact in zip(paths, result.artifacts):
        summary = artifact.summary or {}
        drop = summary.get("map50_95_drop")
        figures[name] = {
            "verdict": artifact.status,
            "matched_reference_detections": summary.get("recall"),
            "map50_95_vs_reference": summary.get("map50_95_vs_reference"),
            "map50_95_drop_points": None if drop is None else round(100 * drop, 2),
        }
        log(f"{name}: {figures[name]}")
    return figures


def main(argv=None):
    import dataclasses

    from edgedet.cli.common import resolve_model
    from edgedet.cpu import isa_summary

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model)
    config = model.default_inference_config()
    nms = config.nms
    if args.conf is not None:
        nms = dataclasses.replace(nms, confidence_threshold=args.conf)
    if args.max_det is not None:
        nms = dataclasses.replace(nms, max_detections=args.max_det)
    config = dataclasses.replace(config, nms=nms)
    paths = export_files(model, config, args, out)
    report = {"model": args.model, "trt_version": args.trt_version, "cpu": isa_summary(),
              "calibration": {"data": args.calib_data, "size": args.calib_size,
                              "method": args.calib_method},
              "confidence_threshold": config.nms.confidence_threshold,
              "accuracy": accuracy(model, paths, args)}
    (out / "trt_ready.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
