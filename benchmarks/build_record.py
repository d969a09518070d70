"""Builds a model in every CPU target and precision, benchmarks it, writes Markdown.

The record for `docs/benchmarks.md`: a YOLOv8 preset (random weights until a
trained model ships: the network costs the same, the NMS may see more or
fewer candidates than with trained weights) is exported to every target this
machine can build (SavedModel, ONNX, TFLite today) in every precision the
exporters offer, saved as `.keras` for the reference (with per-stage
timing), and benchmarked on synthetic 1280x720 frames with
`edgedet.benchmark`. The Markdown (machine, versions, command, tables) goes
to `--out` or stdout; progress goes to stderr.

Usage:

```
python benchmarks/build_record.py --update docs/benchmarks.md  # yolov8n at 640
python benchmarks/build_record.py --out record.md              # the record alone
python benchmarks/build_record.py --preset tiny --runs 3       # a quick check
```

`--update FILE` replaces the part of FILE between the lines `<!-- record:start -->`
and `<!-- record:end -->` (the rest of the file is kept).

Run it on a quiet machine: other processes make the latencies noisy (the
record states the load average at the start).
"""

import argparse
import dataclasses
import inspect
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_IMAGES = "synthetic:shapes?n=8&seed=0&size=720x1280"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Export a YOLOv8 preset to every CPU target, benchmark it, print Markdown.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown file to write (default: print to stdout).")
    parser.add_argument("--update", type=Path, default=None,
                        help="Replace the record between the '<!-- record:start -->' and "
                             "'<!-- record:end -->' lines of this Markdown file.")
    parser.add_argument("--json", type=Path, default=None,
                        help="Also write the benchmark.json document here.")
    parser.add_argument("--preset", default="yolov8n", help="Model preset (default: yolov8n).")
    parser.add_argument("--imgsz", type=int, default=640,
                        help="Model input size, a multiple of 32 (default: 640).")
    parser.add_argument("--images", default=DEFAULT_IMAGES,
                        help="Benchmark images: folder or synthetic spec "
                             f"(default: {DEFAULT_IMAGES}).")
    parser.add_argument("--batch", default="1", help="Batch sizes, e.g. 1,4 (default: 1).")
    parser.add_argument("--runs", type=int, default=30, help="Timed calls (default: 30).")
    parser.add_argument("--warmup", type=int, default=5, help="Warm-up calls (default: 5).")
    parser.add_argument("--calib-size", type=int, default=100,
                        help="Calibration images for the INT8 artifacts (default: 100; the "
                             "record measures speed, benchmarks/int8.py measures accuracy).")
    parser.add_argument("--threads", type=int, default=None,
                        help="Intra-op threads per runtime (default: each runtime's own).")
    parser.add_argument("--work", type=Path, default=None,
                        help="Keep the artifacts in this folder (default: a temporary one).")
    parser.add_argument("--reuse", action="store_true",
                        help="Keep the artifacts already in --work (export only the missing "
                             "ones): export on a busy machine, benchmark later on a quiet one.")
    parser.add_argument("--force", action="store_true",
                        help="Replace existing artifacts in --work and an existing --out.")
    args = parser.parse_args(argv)
    from edgedet.benchmark.run import parse_batch_sizes

    try:
        args.batch = parse_batch_sizes(args.batch)
    except ValueError as error:
        parser.error(str(error))
    if (args.runs < 1 or args.warmup < 0 or args.calib_size < 1
            or (args.threads is not None and args.threads < 1)):
        parser.error("--runs, --calib-size and --threads must be >= 1, --warmup >= 0.")
    if args.update is not None:
        try:
            splice(args.update.read_text(), "")
        except (OSError, ValueError) as error:
            parser.error(f"--update {args.update}: {error}")
    if args.reuse and args.work is None:
        parser.error("--reuse needs --work (the folder holding the artifacts).")
    if args.imgsz < 32 or args.imgsz % 32:
        parser.error(f"--imgsz {args.imgsz} is not a positive multiple of 32.")
    for path in (args.out, args.json):
        if path is not None and path.exists() and not args.force:
            parser.error(f"'{path}' already exists; pass --force to replace it.")
    return args


START, END = "<!-- record:start -->", "<!-- record:end -->"


def splice(document, record):
    """`document` with the text between its START and END marker lines replaced by `record`."""
    lines = document.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"expected one '{START}' line followed by one '{END}' line.")
    body = record if record.endswith("\n") or not record else record + "\n"
    return "".join(lines[: starts[0] + 1]) + body + "".join(lines[ends[0]:])


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_model(preset, imgsz):
    """The preset with random weights, its letterbox set to `imgsz`."""
    from edgedet.models import YOLOV8Detector

    model = YOLOV8Detector.from_preset(preset)
    if model.letterbox.size != imgsz:
        letterbox = dataclasses.replace(model.letterbox, size=imgsz)
        model = YOLOV8Detector.from_preset(preset, letterbox=letterbox)
    return model


def build_artifacts(model, work, stem, force, calib_size, reuse=False):
    """Exports every buildable (target, precision); returns `(paths, notes)`.

    `export` names each artifact `<stem>_<precision>` (bare `<stem>` for fp32).
    With `reuse`, artifacts already in `work` are kept, and so is the `.keras`
    reference they were exported from (the preset's weights are random).
    """
    from edgedet.export import export
    from edgedet.exporters.registry import buildable_targets, skipped_targets
    from edgedet.files import atomic_write_text

    accepts_precision = "precision" in inspect.signature(export).parameters
    paths, notes = [], []
    # Export notes survive for a later `--reuse` run.
    notes_path = work / "export_notes.json"
    earlier = json.loads(notes_path.read_text()) if reuse and notes_path.exists() else {}
    keras_path = work / f"{stem}.keras"
    if reuse and keras_path.exists():
        from edgedet.models import load_model

        model = load_model(keras_path)
        notes.append(f"keras: {keras_path.name} reused from an earlier run.")
    elif keras_path.exists() and not force:
        raise FileExistsError(f"'{keras_path}' already exists; pass --force to replace it.")
    else:
        model.save(keras_path)
    paths.append(keras_path)
    for target in buildable_targets():
        for precision in target.precisions:
            if precision != "fp32" and not accepts_precision:
                notes.append(f"{target.name} {precision}: not built, this edgedet's export() "
                             "has no precision option yet.")
                continue
            existing = work / target.artifact_name(stem if precision == "fp32"
                                                   else f"{stem}_{precision}")
            if reuse and existing.exists():
                log(f"reusing {existing}")
                paths.append(existing)
                notes.append(earlier.get(existing.name, f"{target.name} {precision}: "
                                         f"{existing.name}, reused."))
                continue
            options = {"precision": precision} if accepts_precision else {}
            if precision == "int8":
                options["calibration"] = {"size": calib_size}
            log(f"exporting {target.name} {precision}")
            (result,) = export(model, [target.name], work, stem=stem, force=force,
                               progress=log, **options)
            paths.append(result.path)
            notes.append(f"{target.name} {precision}: {result.path.name}, "
                         f"{result.size_bytes / 2**20:.1f} MiB, "
                         f"exported in {result.seconds:.0f} s.")
            earlier[result.path.name] = notes[-1]
            atomic_write_text(notes_path, json.dumps(earlier, indent=1))
    for target, reason in skipped_targets():
        notes.append(f"{target.name}: not built, it {reason}.")
    return paths, notes


def main(argv=None):
    args = parse_args(argv)
    from edgedet.benchmark import run_benchmark, to_markdown
    from edgedet.files import atomic_write_text

    command = shlex.join(["python", "benchmarks/build_record.py",
                          *(sys.argv[1:] if argv is None else argv)])
    stem = f"{args.preset}_{args.imgsz}"
    with tempfile.TemporaryDirectory(prefix="edgedet-record-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        log(f"building {args.preset} at {args.imgsz} (random weights) in {work}")
        model = build_model(args.preset, args.imgsz)
        paths, notes = build_artifacts(model, work, stem, args.force, args.calib_size,
                                       reuse=args.reuse)
        del model
        document = run_benchmark(
            paths, images=args.images, batch_sizes=args.batch, runs=args.runs,
            warmup=args.warmup, threads=args.threads, progress=log, command=command,
        )
    notes = [f"Model: `{args.preset}` preset at {args.imgsz}, random weights (edgedet ships no "
             "trained model of this size; the network costs the same, the NMS may see a "
             "different number of candidates)."] + notes
    markdown = to_markdown(document, title=f"{args.preset} at {args.imgsz}, CPU", notes=notes,
                           level=3 if args.update is not None else 2)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(document, indent=2) + "\n")
    if args.update is not None:
        atomic_write_text(args.update, splice(args.update.read_text(), markdown))
        log(f"updated the record in {args.update}")
    if args.out is not None:
        atomic_write_text(args.out, markdown)
        log(f"wrote {args.out}")
    elif args.update is None:
        sys.stdout.write(markdown)
    return 1 if any(r["error"] for r in document["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
