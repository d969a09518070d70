"""Rect letterbox against Ultralytics' PyTorch `predict`, detection by detection.

Ultralytics' `YOLO('model.pt').predict(frame)` letterboxes a 1280x720 frame
to a 640x384 body (`LetterBox(auto=True)`: the short side padded only to a
multiple of the largest stride), where every exported model pads to
640x640. An edgedet artifact exported with `--letterbox rect` does the same
inside its graph; this script checks that it finds what Ultralytics finds on
the same frames with the same weights: detections matched (same class,
IoU >= 0.5, greedy by score; `edgedet.matching`), worst corner shift in
pixels and worst score difference, per artifact (a square artifact of the
same weights shows what the body shape alone changes).

Frames: synthetic shapes (`edgedet.data.synthetic`), WxH each, classes in the
model's order. Ultralytics runs in this process from `--side-packages` (its
own environment's site-packages, appended to `sys.path`).

    edgedet export -m m.keras -t onnx,openvino --letterbox rect --max-det 300 -o rect/
    python benchmarks/rect_vs_ultralytics.py --pt best.pt --imgsz 160 \\
        --artifacts rect/m.onnx rect/m.xml square/m.onnx \\
        --side-packages /work/sidevenv/lib/python3.11/site-packages
"""

import argparse
import json
import sys

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pt", required=True, help="Ultralytics checkpoint (.pt).")
    parser.add_argument("--artifacts", nargs="+", required=True,
                        help="edgedet artifacts of the same weights (any kind).")
    parser.add_argument("--side-packages", default=None, metavar="DIR",
                        help="site-packages with ultralytics and torch (appended to sys.path).")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--frame", default="1280x720", metavar="WxH")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=300)
    parser.add_argument("--out", default=None, metavar="JSON")
    return parser.parse_args(argv)


def frames(class_names, size, count, seed):
    """`count` uint8 RGB frames of synthetic shapes, `size = (height, width)`."""
    from edgedet.data.synthetic import SyntheticShapes

    height, width = size
    shapes = SyntheticShapes(num_images=count, image_size=(height, width), seed=seed,
                             classes=class_names, min_objects=2, max_objects=8,
                             min_object_size=min(height, width) // 8, split="val")
    return [shapes[i]["image"] for i in range(count)]


def ultralytics_detections(pt, images, args):
    """`Detections` per image from `YOLO(pt).predict` (its rect letterbox, its NMS)."""
    from ultralytics import YOLO

    from edgedet.detections import Detections

    model = YOLO(pt, task="detect")
    found = []
    for image in images:
        result = model.predict(image[..., ::-1], imgsz=args.imgsz, conf=args.conf, iou=args.iou,
                               max_det=args.max_det, verbose=False)[0]  # it takes BGR
        boxes = result.boxes
        found.append(Detections(boxes.xyxy.numpy(), boxes.conf.numpy(),
                                boxes.cls.numpy().astype(np.int32)))
    from ultralytics.data.augment import LetterBox

    # The body its predictor builds for a .pt model (rect=True, auto=True); (height, width).
    body = LetterBox(args.imgsz, auto=True, stride=int(model.model.stride.max()))(
        image=images[0]).shape[:2]
    return found, model.names, tuple(int(v) for v in body)


def compare(path, images, reference):
    """Matched detections, worst corner shift and score delta of one artifact."""
    from edgedet.matching import match_detections
    from edgedet.runtimes.registry import open_runtime

    with open_runtime(path) as runtime:
        letterbox = runtime.metadata.inference.letterbox
        found = runtime.predict(images)
    matches = [match_detections(a, r) for a, r in zip(found, reference)]
    shifts = np.concatenate([m.corner_shifts for m in matches] or [np.zeros(0)])
    deltas = np.concatenate([m.score_deltas for m in matches] or [np.zeros(0)])
    return {
        "artifact": str(path), "letterbox": letterbox.to_dict(),
        "reference_detections": sum(m.num_reference for m in matches),
        "artifact_detections": sum(m.num_artifact for m in matches),
        "matched": sum(m.num_matched for m in matches),
        "worst_corner_shift_px": round(float(shifts.max(initial=0.0)), 4),
        "worst_score_delta": round(float(np.abs(deltas).max(initial=0.0)), 5),
    }


def main(argv=None):
    args = parse_args(argv)
    if args.side_packages:
        sys.path.append(args.side_packages)
    from edgedet.runtimes.registry import read_metadata

    width, height = (int(v) for v in args.frame.lower().split("x"))
    class_names = read_metadata(args.artifacts[0]).class_names
    images = frames(class_names, (height, width), args.frames, args.seed)
    reference, names, body = ultralytics_detections(args.pt, images, args)
    if list(names.values()) != list(class_names):
        sys.exit(f"Class names differ: Ultralytics {list(names.values())}, edgedet "
                 f"{list(class_names)}: not the same weights?")
    rows = [compare(path, images, reference) for path in args.artifacts]
    record = {"frame": args.frame, "frames": args.frames, "imgsz": args.imgsz,
              "ultralytics_body_hw": body, "conf": args.conf, "iou": args.iou,
              "max_det": args.max_det, "results": rows}
    print(f"{args.frames} frames {args.frame}, imgsz {args.imgsz}; Ultralytics .pt predict "
          f"body (h, w): {body}")
    print("| artifact | letterbox | Ultralytics dets | artifact dets | matched | worst corner "
          "shift px | worst score delta |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['artifact']} | {row['letterbox'].get('shape', 'square')} | "
              f"{row['reference_detections']} | {row['artifact_detections']} | {row['matched']} "
              f"| {row['worst_corner_shift_px']} | {row['worst_score_delta']} |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
