"""Training throughput and accuracy: edgedet vs Ultralytics, side by side.

Writes one synthetic shapes dataset in YOLO format (`data.yaml`,
`images/{train,val}`, `labels/{train,val}`), then trains YOLOv8 of the same
scale from scratch on it with both tools, with the same image size, batch,
epochs and defaults otherwise (`edgedet.train.train(...)` vs
`YOLO("yolov8n.yaml").train(..., device="cpu", workers=2, amp=False)`), each
in its own process, one after the other. For each it prints:

- steady images/s: over the training steps, leaving out the first
  `--warmup-steps` steps of the first epoch (graph tracing, first allocations)
  and the first step of every later epoch (dataloader restart);
- epoch images/s: images trained / time in the training loops of all epochs
  (first steps included, per-epoch validation and checkpoints excluded);
- wall images/s: images trained / the whole `train` call (model building,
  validation every epoch, checkpoints included);
- mAP50-95 and mAP50 of the final (EMA) weights on the `val` images, both
  scored by the same evaluator: edgedet's `edgedet.train.evaluate.evaluate`
  (end-to-end graph, NMS confidence 0.001, IoU 0.7, 300 detections, COCO mAP
  by pycocotools). Ultralytics' `last.pt` is converted with edgedet's
  Ultralytics import (`from_ultralytics`, which keeps Ultralytics' centred
  letterbox with pad 114), so both models go through the same letterbox,
  decode, NMS and scorer. Ultralytics' own validator figure is printed
  beside it as a cross-check.

Step times come from callbacks (`keras.callbacks.Callback.on_train_batch_end`
and Ultralytics' `on_train_batch_end`): the time between two step ends
includes waiting for the input pipeline in both.

Install the Ultralytics side (CPU build of torch first, so pip does not pull
a CUDA build of several GB):

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    pip install -e ".[benchmark]"

If pip then replaces the CPU torch by a CUDA build (the torchvision it
resolves pins its own torch), reinstall the CPU build with `--no-deps
--force-reinstall`: torchvision's compiled ops will not load against it, and
this script stands in for them (see `torchvision_stand_in`).

Usage:

    python benchmarks/train_vs_ultralytics.py [--images 320] [--val-images 64]
        [--imgsz 320] [--batch 16] [--epochs 3] [--model yolov8n]
        [--sides edgedet,ultralytics] [--out DIR] [--json results.json]

Not a test: it trains for minutes and its numbers depend on the machine and
its load (the load average is printed with every figure).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SIDES = ("edgedet", "ultralytics")
CLASSES = ("circle", "square", "triangle", "cross")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train edgedet and Ultralytics side by side on one synthetic dataset."
    )
    parser.add_argument("--images", type=int, default=320, help="training images")
    parser.add_argument("--val-images", type=int, default=64, help="validation images")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="yolov8n", help="yolov8n, yolo11n, yolo26n, ...")
    parser.add_argument("--workers", type=int, default=2, help="Ultralytics dataloader workers")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    sides = [s for s in args.sides.split(",") if s]
    if not sides or any(s not in SIDES for s in sides):
        parser.error(f"--sides {args.sides!r}: expected a comma list of {list(SIDES)}")
    args.sides = sides
    if args.imgsz < 32 or args.imgsz % 32:
        parser.error(f"--imgsz {args.imgsz}: expected a multiple of 32")
    for name in ("images", "val_images", "batch", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: expected >= 1")
    if args.images % args.batch:
        parser.error(f"--images {args.images} is not a multiple of --batch {args.batch}: both "
                     "tools must train the same number of full batches per epoch")
    if args.warmup_steps < 0 or args.warmup_steps >= args.images // args.batch:
        parser.error(f"--warmup-steps {args.warmup_steps}: expected 0 <= n < the steps per "
                     f"epoch ({args.images // args.batch})")
    if not re.fullmatch(r"yolov8[nsmlx]|yolo11[nsmlx]|yolo26[nsmlx]", args.model):
        parser.error(f"--model {args.model!r}: expected yolov8n ... yolov8x, yolo11n ... "
                     "yolo11x or yolo26n ... yolo26x")
    return args


def dataset_spec(count, size, seed):
    """The synthetic spec of one split (4 shape classes, 0-6 objects, sizes around `size`)."""
    low, high = max(size * 3 // 4, 32), size * 5 // 4
    return (f"synthetic:shapes?n={count}&size={low}-{high}&seed={seed}"
            f"&classes={','.join(CLASSES)}&min_object_size=12")


def write_data(folder, images, val_images, size, seed):
    """Writes the train and val splits once in YOLO format; returns `data.yaml`'s path."""
    from edgedet.data import load_dataset

    for split, count in (("train", images), ("val", val_images)):
        load_dataset(dataset_spec(count, size, seed), split=split).write(
            folder, format="yolo", split=split, force=True)
    return os.path.join(folder, "data.yaml")


class StepClock:
    """Collects the time of every step end, per epoch."""

    def __init__(self):
        self.epochs = []  # [(epoch start, [step end, ...]), ...]

    def epoch_start(self):
        self.epochs.append((time.perf_counter(), []))

    def step_end(self):
        self.epochs[-1][1].append(time.perf_counter())


def throughput(clock, batch, warmup_steps, wall_seconds):
    """images/s figures from a `StepClock` (see the module docstring)."""
    steady_time, steady_steps, loop_time, steps = 0.0, 0, 0.0, 0
    for number, (start, ends) in enumerate(clock.epochs):
        if not ends:
            continue
        gaps = [b - a for a, b in zip([start, *ends], ends)]
        skip = warmup_steps if number == 0 else 1
        steady_time += sum(gaps[skip:])
        steady_steps += len(gaps[skip:])
        loop_time += ends[-1] - start
        steps += len(ends)
    return {
        "steps": steps,
        "steady_images_per_second": batch * steady_steps / steady_time if steady_time else None,
        "epoch_images_per_second": batch * steps / loop_time if loop_time else None,
        "wall_images_per_second": batch * steps / wall_seconds if wall_seconds else None,
        "wall_seconds": wall_seconds,
        "step_seconds_first": [round(b - a, 3) for a, b in
                               zip([clock.epochs[0][0], *clock.epochs[0][1]],
                                   clock.epochs[0][1])][: warmup_steps + 2]
        if clock.epochs and clock.epochs[0][1] else [],
    }


def val_dataset(data_yaml):
    from edgedet.data import load_dataset

    return load_dataset(data_yaml, split="val")


def run_edgedet(args, data_yaml, folder):
    """Trains with `edgedet.train.train`; returns the side's results."""
    from edgedet.backend import keras as _keras
    from edgedet.train import train
    from edgedet.train.evaluate import evaluate

    keras = _keras()
    clock = StepClock()

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.epoch_start()

        def on_train_batch_end(self, batch, logs=None):
            clock.step_end()

    start = time.perf_counter()
    result = train(data_yaml, model=args.model, imgsz=args.imgsz, epochs=args.epochs,
                   batch=args.batch, out=os.path.join(folder, "edgedet_run"), seed=args.seed,
                   callbacks=[Clock()], verbose=0, plot=False)
    wall = time.perf_counter() - start
    figures = throughput(clock, args.batch, args.warmup_steps, wall)
    figures.update(evaluate(result.model, val_dataset(data_yaml)))
    figures["own_map50_95"] = result.history[-1].get("map50_95") if result.history else None
    return figures


def torchvision_stand_in():
    """Makes `import torchvision` work where its compiled ops cannot load.

    PyPI's Linux torchvision wheels link against a CUDA build of torch; next
    to a CPU-only torch (the only kind this benchmark installs) their `_C`
    library fails to load and `import torchvision` raises. Ultralytics only
    needs `import torchvision` to succeed and `torchvision.ops.nms`, which
    it uses in validation (never in a training step). The stand-in routes
    that to Ultralytics' own pure-torch NMS (`TorchNMS.nms`, documented to
    match torchvision's), so training throughput is unaffected.

    Returns:
        None when the real torchvision imports, else the reason it did not.
    """
    import types

    try:
        import torchvision  # noqa: F401
        return None
    except (ImportError, OSError, RuntimeError) as error:
        reason = f"{type(error).__name__}: {error}"
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    from ultralytics.utils.nms import TorchNMS

    module = types.ModuleType("torchvision")
    module.ops = types.SimpleNamespace(nms=TorchNMS.nms)
    sys.modules["torchvision"] = module
    return reason


def run_ultralytics(args, data_yaml, folder):
    """Trains with Ultralytics on the CPU; scores `last.pt` with edgedet's evaluator."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(folder, "ultralytics_config"))
    stand_in = torchvision_stand_in()
    if stand_in:
        print(f"torchvision does not import ({stand_in[:120]}); validation NMS uses "
              "Ultralytics' TorchNMS instead", file=sys.stderr, flush=True)
    from ultralytics import YOLO

    from edgedet.models.ultralytics_import import from_ultralytics
    from edgedet.train.evaluate import evaluate

    clock = StepClock()
    model = YOLO(f"{args.model}.yaml")
    model.add_callback("on_train_epoch_start", lambda trainer: clock.epoch_start())
    model.add_callback("on_train_batch_end", lambda trainer: clock.step_end())
    start = time.perf_counter()
    model.train(data=data_yaml, imgsz=args.imgsz, batch=args.batch, epochs=args.epochs,
                device="cpu", workers=args.workers, amp=False, seed=args.seed, plots=False,
                project=os.path.join(folder, "ultralytics_run"), name="train", exist_ok=True,
                verbose=False)
    wall = time.perf_counter() - start
    figures = throughput(clock, args.batch, args.warmup_steps, wall)
    trainer = model.trainer
    # `last.pt` is a full (pickled) checkpoint this process has just written itself.
    converted = from_ultralytics(str(trainer.last), class_names=list(CLASSES),
                                 image_size=args.imgsz, trust_pickle=True)
    figures.update(evaluate(converted, val_dataset(data_yaml)))
    own = getattr(trainer, "metrics", None) or {}
    figures["own_map50_95"] = own.get("metrics/mAP50-95(B)")
    figures["torchvision_stand_in"] = bool(stand_in)
    return figures


def run_side(args):
    """Child process: trains one side and prints its results as one JSON line."""
    folder = args.out
    data_yaml = os.path.join(folder, "data", "data.yaml")
    load = os.getloadavg()[0]
    runner = run_edgedet if args.side == "edgedet" else run_ultralytics
    figures = runner(args, data_yaml, folder)
    figures.update(side=args.side, load_before=load, load_after=os.getloadavg()[0])
    print("RESULT " + json.dumps(figures), flush=True)


def versions():
    import platform
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "torch", "ultralytics-opencv-headless", "ultralytics"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
            f.seek(0)
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return {"cpu": "unknown", "cores": os.cpu_count(), "isa": []}
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "avx_vnni")
    return {"cpu": names[0] if names else "unknown", "cores": os.cpu_count(),
            "isa": [f for f in wanted if f in flags]}


def report(results, args):
    lines = [f"{args.model} from scratch, {args.imgsz} px, batch {args.batch}, "
             f"{args.epochs} epochs, {args.images} training / {args.val_images} val images",
             f"{'side':12s} {'steady':>8s} {'epoch':>8s} {'wall':>8s} {'mAP50-95':>9s} "
             f"{'mAP50':>7s} {'own':>6s}  load"]
    for side in args.sides:
        r = results.get(side)
        if r is None:
            lines.append(f"{side:12s} (failed)")
            continue

        def num(value, digits=2):
            return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"

        lines.append(
            f"{side:12s} {num(r['steady_images_per_second']):>8s} "
            f"{num(r['epoch_images_per_second']):>8s} {num(r['wall_images_per_second']):>8s} "
            f"{num(r['map50_95'], 3):>9s} {num(r['map50'], 3):>7s} "
            f"{num(r.get('own_map50_95'), 3):>6s}  {r['load_before']:.2f}->{r['load_after']:.2f}"
        )
    if all(s in results for s in SIDES):
        e, u = results["edgedet"], results["ultralytics"]
        lines.append(
            "edgedet/ultralytics: steady "
            f"{e['steady_images_per_second'] / u['steady_images_per_second']:.2f}x, "
            f"epoch {e['epoch_images_per_second'] / u['epoch_images_per_second']:.2f}x, "
            f"mAP50-95 {e['map50_95'] - u['map50_95']:+.3f}"
        )
    lines.append("images/s: steady (warm steps), epoch (training loops), wall (whole call); "
                 "mAP: edgedet's evaluator on the val split; own: each tool's last validation")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.side is not None:
        return run_side(args)
    folder = args.out or tempfile.mkdtemp(prefix="train_vs_ultralytics_")
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    write_data(os.path.join(folder, "data"), args.images, args.val_images, args.imgsz,
               args.seed)
    print(f"dataset written to {folder}/data in {time.perf_counter() - start:.0f} s", flush=True)
    results = {}
    passed = list(argv if argv is not None else sys.argv[1:])
    for side in args.sides:
        command = [sys.executable, os.path.abspath(__file__), *passed, "--out", folder,
                   "--side", side]
        print(f"training {side} ...", flush=True)
        process = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode or not lines:
            print(f"{side} failed (exit code {process.returncode}); its output:\n"
                  + process.stdout[-3000:], flush=True)
            continue
        results[side] = json.loads(lines[-1][len("RESULT "):])
    summary = {"args": {k: v for k, v in vars(args).items() if k != "side"},
               "machine": cpu_model(), "versions": versions(), "results": results}
    print(report(results, args))
    print(json.dumps(summary["machine"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
