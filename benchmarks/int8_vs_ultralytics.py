"""INT8 accuracy side by side with Ultralytics' own INT8 exports of the same weights.

Two steps, in two environments, one evaluator:

1. `ultralytics` (an environment with torch + Ultralytics + OpenVINO/NNCF,
   imports nothing from edgedet): copies the checkpoint into `--out`, exports
   it with Ultralytics (ONNX FP32, OpenVINO FP32, OpenVINO INT8 (`int8=True`,
   NNCF) and TFLite INT8 (`format="tflite", int8=True`: Ultralytics 8.4.190
   exports it through `litert_torch`, which needs `litert-torch` and
   `ai-edge-quantizer`; without them that row is listed as failed, with the
   reason, and `--only-tflite` can add it later from another environment),
   calibrating on 300 images of the dataset's train split like edgedet, runs
   each (and the `.pt`) through Ultralytics' own `predict` on the evaluation
   split at every setting, and writes the boxes to `ultralytics_detections.json`.
2. `edgedet` (edgedet's environment): for every setting, exports the edgedet
   model (imported from the same checkpoint) to ONNX FP32 and, from one
   calibration, the INT8 artifacts: ONNX Runtime U8S8 (`_int8.onnx`), TFLite
   INT8, OpenVINO INT8 (NNCF) and the TensorRT-ready S8S8 ONNX (`_int8_trt.onnx`,
   run in ONNX Runtime); runs them with `edgedet.parity.run.collect`
   against the labels, and scores every detection list, Ultralytics' included,
   with `edgedet.metrics.coco_map` (pycocotools) against the same label boxes.
   Each INT8 artifact's drop is against its own side's FP32 (edgedet: the ONNX
   FP32 export; Ultralytics: its ONNX FP32 export, the `.pt` is listed too).

A setting is `CONF:MAX_DET`: `0.25:300` (the default threshold) and
`0.001:300` (validation style). The NMS IoU is 0.7 on both sides.

Usage (the YOLOv8n of `benchmarks/train_vs_ultralytics.py`, trained by Ultralytics):

    # 1. in a venv with torch, ultralytics, openvino, nncf, litert-torch, ai-edge-quantizer
    #    (YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false: Ultralytics installs nothing)
    python benchmarks/int8_vs_ultralytics.py ultralytics --weights run/train/weights/last.pt \\
        --data data/data.yaml --imgsz 160 --out out/ul
    # 2. in edgedet's venv, from the same weights (reading the .pt needs torch; without it,
    #    `python tools/ultralytics_to_npz.py last.pt y8.npz --dtype float32` where torch is,
    #    then import y8.npz with --size n)
    edgedet import ultralytics run/train/weights/last.pt --trust-pickle \\
        --classes circle,square,triangle,cross --imgsz 160 --out out/y8.keras
    python benchmarks/int8_vs_ultralytics.py edgedet --model out/y8.keras --data data/data.yaml \\
        --calib-data data/images/train --ultralytics out/ul/ultralytics_detections.json \\
        --out out/ed
    # (several step-1 files are merged: --ultralytics out/ul/FILE out/ul_tflite/FILE)
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

DEFAULT_SETTINGS = "0.25:300,0.001:300"
IOU = 0.7
# Agreement with the side's own FP32 is counted on the detections a deployed
# model keeps (score >= 0.25, edgedet's default threshold), at every setting.
DEPLOYED_CONF = 0.25
# The noise of a drop: the images are cut into this many disjoint chunks.
CHUNKS = 10
DETECTIONS_FILE = "ultralytics_detections.json"
STARTED = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def parse_settings(text):
    """`"0.25:300,0.001:300"` -> `[(0.25, 300), (0.001, 300)]` (a missing MAX_DET is 300)."""
    settings = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        conf, _, max_det = item.partition(":")
        try:
            setting = (float(conf), int(max_det or 300))
        except ValueError:
            raise ValueError(f"Invalid setting {item!r}: expected CONF:MAX_DET, "
                             "e.g. 0.001:300.") from None
        if not 0 <= setting[0] < 1 or setting[1] < 1:
            raise ValueError(f"Invalid setting {item!r}: CONF must be in [0, 1) and "
                             "MAX_DET >= 1.")
        settings.append(setting)
    if not settings:
        raise ValueError(f"No setting in {text!r}: expected e.g. {DEFAULT_SETTINGS}.")
    return settings


def setting_key(conf, max_det):
    return f"conf={conf:g},max_det={max_det}"


def drop_points(base, value):
    """mAP drop from `base` to `value` in points (100 x), or None if either is missing."""
    return None if base is None or value is None else round(100 * (base - value), 2)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sides = parser.add_subparsers(dest="side", required=True)
    ul = sides.add_parser("ultralytics", help="Export and predict with Ultralytics.")
    ul.add_argument("--weights", required=True, help="The Ultralytics checkpoint (.pt).")
    ul.add_argument("--data", required=True, help="YOLO data.yaml (train: calibration).")
    ul.add_argument("--imgsz", type=int, required=True)
    ul.add_argument("--calib-images", type=int, default=300,
                    help="Calibration images from the train split (default: 300, as edgedet).")
    ul.add_argument("--eval-split", default="val")
    ul.add_argument("--settings", default=DEFAULT_SETTINGS)
    tflite = ul.add_mutually_exclusive_group()
    tflite.add_argument("--no-tflite", action="store_true", help="Skip Ultralytics' TFLite INT8.")
    tflite.add_argument("--only-tflite", action="store_true",
                        help="Only Ultralytics' TFLite INT8 (e.g. from an environment with "
                             "TensorFlow <= 2.19 and onnx2tf; merge its file in step 2).")
    ul.add_argument("--reuse", action="store_true",
                    help="Predict with the exports already in --out (e.g. on a larger "
                         "evaluation set) instead of exporting again.")
    ul.add_argument("--out", required=True)
    ed = sides.add_parser("edgedet", help="Export with edgedet, score everything.")
    ed.add_argument("--model", required=True, help="The edgedet .keras of the same weights.")
    ed.add_argument("--data", required=True, help="Labelled evaluation set (data.yaml).")
    ed.add_argument("--eval-split", default="val")
    ed.add_argument("--calib-data", required=True, help="Calibration images (train split).")
    ed.add_argument("--calib-size", type=int, default=300)
    ed.add_argument("--calib-method", default=None,
                    help="edgedet's --calib-method (default: edgedet's default). This side "
                         "parses it where edgedet is installed.")
    ed.add_argument("--ultralytics", required=True, nargs="+",
                    help=f"The {DETECTIONS_FILE} of step 1 (several: merged, e.g. a TFLite run "
                         "from another environment).")
    ed.add_argument("--settings", default=DEFAULT_SETTINGS)
    ed.add_argument("--reuse", action="store_true", help="Reuse the artifacts in --out.")
    ed.add_argument("--out", required=True)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- Ultralytics side


def ultralytics_side(args):
    """Exports with Ultralytics and writes its predictions; imports no edgedet code."""
    from ultralytics import YOLO
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "ul.pt"  # Exports land beside the weights: keep them in --out.
    if not (args.reuse and weights.exists()):
        shutil.copyfile(args.weights, weights)
    data_yaml = str(Path(args.data).resolve())
    data = check_det_dataset(data_yaml)
    train = sorted(p for p in Path(data["train"]).rglob("*") if p.suffix[1:].lower()
                   in IMG_FORMATS)
    fraction = min(1.0, args.calib_images / max(1, len(train)))
    calib = {"data": data_yaml, "split": "train", "fraction": fraction}
    models = {"ul_pytorch_fp32": str(weights)}
    reasons = {}
    plan = [("ul_onnx_fp32", {"format": "onnx"}),
            ("ul_openvino_fp32", {"format": "openvino"}),
            ("ul_openvino_int8", {"format": "openvino", "int8": True, **calib})]
    if not args.no_tflite:
        plan.append(("ul_tflite_int8", {"format": "tflite", "int8": True, **calib}))
    if args.only_tflite:
        plan, models = plan[-1:], {}
    reused = {"ul_onnx_fp32": out / "ul.onnx", "ul_openvino_fp32": out / "ul_openvino_model",
              "ul_openvino_int8": out / "ul_int8_openvino_model"}
    for name, options in plan:
        if args.reuse and name in reused and reused[name].exists():
            log(f"reusing {reused[name]}")
            models[name] = str(reused[name])
            continue
        log(f"exporting {name}: {options}")
        try:
            models[name] = str(YOLO(str(weights)).export(imgsz=args.imgsz, **options))
        except Exception as error:  # noqa: BLE001 - e.g. no TFLite converter: say why.
            reasons[name] = f"{type(error).__name__}: {error}"[:500]
            log(f"{name} failed: {reasons[name]}")
    images = sorted(str(p) for p in Path(data[args.eval_split]).rglob("*")
                    if p.suffix[1:].lower() in IMG_FORMATS)
    predictions = {}
    for conf, max_det in parse_settings(args.settings):
        key = setting_key(conf, max_det)
        predictions[key] = {}
        for name, path in models.items():
            log(f"predicting {name} at {key}")
            model = YOLO(path, task="detect")
            per_image = {}
            for result in model.predict(images, conf=conf, iou=IOU, max_det=max_det,
                                        imgsz=args.imgsz, verbose=False, stream=True):
                boxes = result.boxes
                rows = [[*map(float, box), float(score), int(cls)] for box, score, cls in zip(
                    boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())]
                per_image[Path(result.path).name] = rows
            predictions[key][name] = per_image
    import ultralytics

    document = {"ultralytics": ultralytics.__version__, "models": models, "failed": reasons,
                "calibration": calib, "imgsz": args.imgsz, "iou": IOU,
                "images": [Path(p).name for p in images], "predictions": predictions}
    (out / DETECTIONS_FILE).write_text(json.dumps(document))
    log(f"wrote {out / DETECTIONS_FILE}")


# ---------------------------------------------------------------- edgedet side


def edgedet_artifacts(model, config, args, out):
    """ONNX FP32 and, from one calibration, the four INT8 artifacts; name -> path."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    (fp32,) = export(model, ["onnx"], out, config=config, stem="model", force=True,
                     progress=log)
    calibration = {"data": args.calib_data, "size": args.calib_size,
                   "method": args.calib_method}
    try:
        export(model, ["onnx", "tflite", "openvino", "trt"], out, config=config, stem="model",
               force=True, precision="int8", calibration=calibration, progress=log)
    except ExportError as error:  # No TensorRT here: its ONNX is written all the same.
        if "Wrote the TensorRT-ready files" not in str(error):
            raise
    return {"edgedet_onnx_fp32": fp32.path, "edgedet_onnx_u8s8": out / "model_int8.onnx",
            "edgedet_tflite_int8": out / "model_int8.tflite",
            "edgedet_openvino_int8": out / "model_int8.xml",
            "edgedet_trt_s8s8_ort": out / "model_int8_trt.onnx"}


def ultralytics_detections(per_image, image_names):
    """Ultralytics' rows `[x1, y1, x2, y2, score, class]` per file name -> `Detections`."""
    import numpy as np

    from edgedet.detections import Detections

    detections = []
    for name in image_names:
        rows = per_image.get(Path(name).name)
        if rows is None:
            raise ValueError(f"Ultralytics predicted nothing for image {name!r}: run step 1 "
                             "on the same evaluation split.")
        rows = np.asarray(rows, np.float32).reshape(-1, 6)
        detections.append(Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int32)))
    return detections


def score_setting(model, conf, max_det, args, ultralytics):
    """mAP50-95 / mAP50 of every artifact at one setting, all by `coco_map`."""
    from edgedet.cli.common import inference_config
    from edgedet.data import load_dataset
    from edgedet.metrics import coco_map
    from edgedet.parity.run import collect

    key = setting_key(conf, max_det)
    out = Path(args.out) / key.replace(",", "_").replace("=", "")
    out.mkdir(parents=True, exist_ok=True)
    config = inference_config(model, conf=conf, iou=IOU, max_det=max_det)
    names = ["edgedet_onnx_fp32", "edgedet_onnx_u8s8", "edgedet_tflite_int8",
             "edgedet_openvino_int8", "edgedet_trt_s8s8_ort"]
    paths = {n: out / f for n, f in zip(names, ["model.onnx", "model_int8.onnx",
                                              "model_int8.tflite", "model_int8.xml",
                                              "model_int8_trt.onnx"])}
    if not (args.reuse and all(p.exists() for p in paths.values())):
        paths = edgedet_artifacts(model, config, args, out)
    dataset = load_dataset(args.data, split=args.eval_split)
    log(f"running edgedet's artifacts at {key}")
    record = collect(model, [str(p) for p in paths.values()], dataset, labels=dataset)
    runs = {"edgedet_keras_fp32": record.reference_runs[0].detections}
    for name, artifact in zip(paths, record.artifacts):
        if artifact.status != "ran":
            raise RuntimeError(f"{name} did not run: {artifact.reason}")
        runs[name] = artifact.detections
    for name, per_image in ultralytics["predictions"][key].items():
        runs[name] = ultralytics_detections(per_image, record.image_names)
    scores = {name: coco_map(record.truth, detections, record.image_shapes)
              for name, detections in runs.items()}
    base = {"edgedet": "edgedet_onnx_fp32", "ul": "ul_onnx_fp32"}
    rows = {}
    for name, score in scores.items():
        side = base["edgedet" if name.startswith("edgedet") else "ul"]
        rows[name] = {"map50_95": round(score["map50_95"], 4), "map50": round(score["map50"], 4),
                      "drop_points": drop_points(scores.get(side, {}).get("map50_95"),
                                                 score["map50_95"]),
                      "detections": int(sum(len(d) for d in runs[name]))}
        if side in runs:
            rows[name].update(agreement(runs[name], runs[side]))
        log(f"{key} {name}: {rows[name]}")
    log(f"{key}: the noise of each drop difference ({CHUNKS} chunks)")
    noise = chunk_noise(record.truth, runs, record.image_shapes, base)
    return {"images": len(record.image_names), "rows": rows, "noise": noise}


def agreement(detections, fp32):
    """Matched share of the side's FP32 detections (deployed threshold), all and clear of it.

    Both lists are cut at `DEPLOYED_CONF`; "clear" counts only the FP32
    detections scoring at least the INT8 score tolerance above it
    (`edgedet.matching.matched_share`).
    """
    from edgedet.matching import match_detections, matched_share
    from edgedet.thresholds import DEFAULTS

    kept = [[d.at_least(DEPLOYED_CONF) for d in side] for side in (detections, fp32)]
    matches = [match_detections(a, r) for a, r in zip(*kept)]
    margin = DEFAULTS["int8"].max_score_delta_p95
    share, clear = matched_share(matches, kept[1]), matched_share(
        matches, kept[1], DEPLOYED_CONF + margin)
    return {"matched": None if share is None else round(share, 4),
            "matched_clear": None if clear is None else round(clear, 4)}


def chunk_noise(truth, runs, shapes, base, chunks=CHUNKS):
    """Mean and standard error of each INT8 drop, and of each edgedet drop minus Ultralytics'.

    The images are cut into `chunks` disjoint parts; each part gives one drop
    per artifact (against its side's FP32 on the same part), so the standard
    error of the mean over the parts says how far a difference of drops is
    from noise. Differences are against each Ultralytics INT8 row.
    """
    import numpy as np

    from edgedet.metrics import coco_map

    # Only the INT8 rows with their side's FP32 present, and those FP32s, are scored.
    side = {n: base["edgedet" if n.startswith("edgedet") else "ul"] for n in runs}
    quantized = [n for n in runs if "fp32" not in n and side[n] in runs]
    scored = quantized + sorted({side[n] for n in quantized})
    per_part = {name: [] for name in quantized}
    for part in np.array_split(np.arange(len(truth)), chunks):
        maps = {name: coco_map([truth[i] for i in part], [runs[name][i] for i in part],
                               [shapes[i] for i in part])["map50_95"] for name in scored}
        for name in quantized:
            per_part[name].append(100 * (maps[side[name]] - maps[name]))
    drops = {n: np.asarray(v) for n, v in per_part.items()}

    def mean_se(values):
        return {"mean": round(float(values.mean()), 3),
                "se": round(float(values.std(ddof=1) / np.sqrt(len(values))), 3)}

    noise = {"chunks": chunks, "drops": {n: mean_se(v) for n, v in drops.items()},
             "differences": {}}
    for ul in (n for n in drops if n.startswith("ul_")):
        for ours in (n for n in drops if n.startswith("edgedet_")):
            noise["differences"][f"{ours} - {ul}"] = mean_se(drops[ours] - drops[ul])
    return noise


def verdict(rows):
    """Whether every edgedet INT8 artifact lost no more than the Ultralytics INT8 that lost least.

    A loss is the drop clipped at zero: an INT8 model that scored above its
    FP32 lost nothing (on ~100 images a few tenths of a point either way is
    noise), so a gain on one side does not make the other side's no-loss fail.
    """
    ul = [max(0.0, r["drop_points"]) for n, r in rows.items()
          if n.startswith("ul_") and "int8" in n]
    ours = {n: max(0.0, r["drop_points"]) for n, r in rows.items()
            if n.startswith("edgedet_") and "fp32" not in n}
    if not ul:
        return None
    limit = min(ul)  # The stricter reading of the goal.
    return {"ultralytics_best_loss": limit,
            "worse": sorted(n for n, d in ours.items() if d > limit),
            "holds": all(d <= limit for d in ours.values())}


def markdown(report):
    lines = [f"Machine: {report['machine']['cpu']}, INT8 class {report['machine']['cpu_class']} "
             f"(flags: {', '.join(report['machine']['int8_flags'])}); Ultralytics "
             f"{report['ultralytics']}.", ""]
    for key, setting in report["settings"].items():
        noise = setting.get("noise") or {}
        lines += [f"**{key}** ({setting['images']} images; drop vs the side's own ONNX FP32; "
                  f"matched: share of the side's FP32 detections scoring >= {DEPLOYED_CONF} "
                  "found, all / clear of the threshold by the INT8 score tolerance)", "",
                  "| artifact | mAP50-95 | mAP50 | drop (pts) | drop over "
                  f"{noise.get('chunks', '-')} chunks, mean ± SE | matched | matched, clear | "
                  "detections |", "|---|---|---|---|---|---|---|---|"]
        for name, row in setting["rows"].items():
            drop = "-" if row["drop_points"] is None else f"{row['drop_points']:.2f}"
            lines.append(f"| {name} | {row['map50_95']:.3f} | {row['map50']:.3f} | {drop} | "
                         f"{_mean_se(noise.get('drops', {}).get(name))} | "
                         f"{_pct(row.get('matched'))} | {_pct(row.get('matched_clear'))} | "
                         f"{row['detections']} |")
        judged = setting.get("verdict")
        if judged:
            met = "holds" if judged["holds"] else "NOT met: " + ", ".join(judged["worse"])
            lines += ["", "Goal (each edgedet INT8 loses no more than Ultralytics' INT8, "
                          f"which lost {judged['ultralytics_best_loss']:.2f} pt): {met}."]
        if noise.get("differences"):
            lines += ["", "edgedet's drop minus Ultralytics' (points, mean ± SE over the "
                          "chunks; more than 2 SE above 0 = measurably worse): " + "; ".join(
                              f"{pair} {_mean_se(d)}{' (worse)' if measurably_worse(d) else ''}"
                              for pair, d in noise["differences"].items())]
        lines.append("")
    if report["ultralytics_failed"]:
        lines += ["Ultralytics exports that failed: " + "; ".join(
            f"{k}: {v}" for k, v in report["ultralytics_failed"].items()), ""]
    return "\n".join(lines)


def measurably_worse(difference):
    """True when a drop difference (mean ± SE) is more than two standard errors above 0."""
    return difference["mean"] > 2 * difference["se"]


def _mean_se(value):
    return "-" if not value else f"{value['mean']:.2f} ± {value['se']:.2f}"


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def merge_detections(documents):
    """One step-1 document from several (models, failures and predictions merged, in order)."""
    merged = {**documents[0], "models": {}, "failed": {}, "predictions": {}}
    for document in documents:
        merged["models"].update(document["models"])
        merged["failed"].update(document["failed"])
        for key, per_model in document["predictions"].items():
            merged["predictions"].setdefault(key, {}).update(per_model)
    for name in merged["models"]:  # A model that exported in one run did not fail.
        merged["failed"].pop(name, None)
    return merged


def edgedet_side(args):
    from edgedet.benchmark.machine import cpu_model
    from edgedet.calibration.methods import DEFAULT_METHOD
    from edgedet.cli.common import resolve_model
    from edgedet.cpu import isa_summary

    args.calib_method = args.calib_method or DEFAULT_METHOD
    ultralytics = merge_detections([json.loads(Path(p).read_text()) for p in args.ultralytics])
    model = resolve_model(args.model)
    report = {"machine": {"cpu": cpu_model(), **isa_summary()},
              "ultralytics": ultralytics["ultralytics"],
              "ultralytics_failed": ultralytics["failed"],
              "ultralytics_calibration": ultralytics["calibration"],
              "calibration": {"data": args.calib_data, "size": args.calib_size,
                              "method": args.calib_method},
              "command": " ".join(["python", "benchmarks/int8_vs_ultralytics.py",
                                   *sys.argv[1:]]),
              "settings": {}}
    for conf, max_det in parse_settings(args.settings):
        key = setting_key(conf, max_det)
        if key not in ultralytics["predictions"]:
            raise ValueError(f"{' '.join(args.ultralytics)} has no predictions at {key}: run "
                             f"step 1 with --settings including {conf:g}:{max_det}.")
        setting = score_setting(model, conf, max_det, args, ultralytics)
        setting["verdict"] = verdict(setting["rows"])
        report["settings"][key] = setting
    out = Path(args.out)
    (out / "int8_vs_ultralytics.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(report)
    (out / "int8_vs_ultralytics.md").write_text(text + "\n")
    print(text)


def main(argv=None):
    args = parse_args(argv)
    if args.side == "ultralytics":
        ultralytics_side(args)
    else:
        edgedet_side(args)


if __name__ == "__main__":
    main()
