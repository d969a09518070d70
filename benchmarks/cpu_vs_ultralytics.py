"""x86 CPU side by side: edgedet's artifacts against Ultralytics' OpenVINO export.

Same weights (an Ultralytics checkpoint, imported into edgedet with
`edgedet import ultralytics`), one uint8 frame (1280x720 by default), one
process, the contenders taking turns `--runs` times (so load on the machine
hits them all alike); the median and p90 per contender, in milliseconds.

Contenders (each given path is one row; leave a path out to skip it):

- `edgedet openvino <precision>`: the edgedet IR (`--target openvino`), frame
  in, detections in original pixels out, at OpenVINO's default inference
  precision (bf16 on CPUs with it) and at forced f32;
- `edgedet onnxrt`: the edgedet ONNX with ONNX Runtime (its FP32 or INT8);
- `ultralytics predict`: `YOLO(openvino_dir).predict(frame)` (its letterbox,
  its OpenVINO body, its NMS), at OpenVINO's default precision;
- `ultralytics body`: its compiled OpenVINO model alone on a float
  `[1, 3, 640, 640]` tensor (no pre- or post-processing).

Prepare (no downloads; Ultralytics in its own environment, e.g. /work/sidevenv):

    python -c "from ultralytics import YOLO; m = YOLO('yolov8n.yaml'); m.save('v8n.pt')"
    python -c "from ultralytics import YOLO; YOLO('v8n.pt').export(format='openvino')"
    # its INT8 (NNCF) export calibrates on a dataset YAML's images (an absolute `path:`)
    python -c "from ultralytics import YOLO; YOLO('v8n.pt').export(format='openvino', \
        int8=True, data='DATA/data.yaml')"
    edgedet import ultralytics v8n.pt --trust-pickle --out v8n.keras
    edgedet export -m v8n.keras -t openvino,onnx -o out/ --no-parity

Run (Ultralytics' packages appended to this environment's path with
`--side-packages`, so edgedet, OpenVINO and ONNX Runtime are this one's):

    python benchmarks/cpu_vs_ultralytics.py --edgedet out/v8n.xml --onnx out/v8n.onnx \
        --ultralytics v8n_openvino_model --side-packages /work/sidevenv/lib/python3.11/site-packages
"""

import argparse
import json
import sys
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edgedet", nargs="*", default=[], metavar="XML",
                        help="edgedet OpenVINO IRs (FP32 and/or INT8).")
    parser.add_argument("--onnx", nargs="*", default=[], metavar="ONNX",
                        help="edgedet ONNX artifacts, run with ONNX Runtime.")
    parser.add_argument("--tflite", nargs="*", default=[], metavar="TFLITE",
                        help="edgedet TFLite artifacts, run with LiteRT.")
    parser.add_argument("--ultralytics", nargs="*", default=[], metavar="DIR",
                        help="Ultralytics OpenVINO export folders (FP32 and/or int8=True).")
    parser.add_argument("--side-packages", default=None, metavar="DIR",
                        help="site-packages with ultralytics (appended to sys.path).")
    parser.add_argument("--frame", default="1280x720", metavar="WxH")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time. cpu: this process's CPU time, with "
                             "--threads 1 the work done, little moved by other processes "
                             "sharing the machine (before/after comparisons on a busy box).")
    parser.add_argument("--out", default=None, metavar="JSON")
    return parser.parse_args(argv)


def edgedet_contenders(paths, onnx_paths, threads, tflite_paths=()):
    """`{label: callable(frame)}` for the edgedet artifacts."""
    from edgedet.runtimes.onnxrt import OnnxRuntime, thread_options
    from edgedet.runtimes.openvino_rt import OpenVINORuntime

    contenders = {}
    for path in paths:
        for precision in (None, "f32"):
            runtime = OpenVINORuntime(path, precision=precision, threads=threads).__enter__()
            label = (f"edgedet openvino {runtime.metadata.precision} "
                     f"(runs {runtime.compute_precision}) {path}")
            contenders[label] = runtime.predict
    for path in onnx_paths:
        options = thread_options(threads) if threads else {}
        runtime = OnnxRuntime(path, providers=["CPUExecutionProvider"], **options).__enter__()
        contenders[f"edgedet onnxrt {runtime.metadata.precision} {path}"] = runtime.predict
    for path in tflite_paths:
        from edgedet.runtimes.litert import LiteRTRuntime

        options = {"num_threads": threads} if threads else {}
        runtime = LiteRTRuntime(path, **options).__enter__()
        contenders[f"edgedet litert {runtime.metadata.precision} {path}"] = runtime.predict
    return contenders


def ultralytics_contenders(folders, threads):
    """`{label: callable(frame)}`: Ultralytics' predict and its body alone."""
    if not folders:
        return {}
    import openvino as ov
    from ultralytics import YOLO

    if threads:
        _limit_ultralytics_threads(ov, threads)

    contenders = {}
    for folder in folders:
        model = YOLO(folder, task="detect")

        def predict(frame, model=model):
            return model.predict(frame[..., ::-1], imgsz=640, verbose=False)  # it takes BGR

        contenders[f"ultralytics predict {folder}"] = predict
        core = ov.Core()
        xml = next(p for p in __import__("pathlib").Path(folder).glob("*.xml"))
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(core.read_model(str(xml)), "CPU", config)
        request = compiled.create_infer_request()
        body_input = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)

        def body(frame, request=request, body_input=body_input):
            return request.infer({0: body_input})

        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        contenders[f"ultralytics body (runs {precision}) {folder}"] = body
    return contenders


def _limit_ultralytics_threads(ov, threads):
    """`--threads` for Ultralytics too: torch's threads, and every OpenVINO model it compiles."""
    import torch

    torch.set_num_threads(threads)

    class Core(ov.Core):
        def compile_model(self, model, device_name=None, config=None, **kwargs):
            config = {**(config or {}), "INFERENCE_NUM_THREADS": threads}
            return super().compile_model(model, device_name, config, **kwargs)

    ov.Core = Core  # Ultralytics' AutoBackend calls `ov.Core()` when it loads the model.


def alternate(contenders, frame, runs, warmup, clock="wall"):
    """Median and p90 ms per contender, the contenders taking turns."""
    now = time.perf_counter if clock == "wall" else time.process_time
    times = {label: [] for label in contenders}
    for index in range(warmup + runs):
        for label, run in contenders.items():
            started = now()
            run([frame] if label.startswith("edgedet") else frame)
            if index >= warmup:
                times[label].append(1000 * (now() - started))
    return {label: {"median_ms": round(float(np.median(t)), 2),
                    "p90_ms": round(float(np.percentile(t, 90)), 2), "runs": len(t)}
            for label, t in times.items()}


def machine():
    import onnxruntime
    import openvino

    from edgedet.benchmark.machine import cpu_model
    from edgedet.cpu import cpu_flags, isa_summary

    flags = cpu_flags()
    return {"cpu": cpu_model(), **isa_summary(),
            "flags": sorted(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                        "amx_bf16", "amx_int8", "avx_vnni") if f in flags),
            "openvino": openvino.__version__, "onnxruntime": onnxruntime.__version__}


def main(argv=None):
    args = parse_args(argv)
    if args.side_packages:
        sys.path.append(args.side_packages)
    width, height = (int(v) for v in args.frame.lower().split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    contenders = edgedet_contenders(args.edgedet, args.onnx, args.threads, args.tflite)
    contenders.update(ultralytics_contenders(args.ultralytics, args.threads))
    if not contenders:
        sys.exit("Nothing to measure: give --edgedet, --onnx and/or --ultralytics.")
    results = alternate(contenders, frame, args.runs, args.warmup, args.clock)
    record = {"machine": machine(), "frame": args.frame, "threads": args.threads,
              "clock": args.clock, "results": results}
    print(f"{record['machine']}, frame {args.frame}, {args.runs} alternating runs, "
          f"{args.clock} clock, threads {args.threads or 'default'}")
    print("| contender | median ms | p90 ms |\n|---|---|---|")
    for label, row in results.items():
        print(f"| {label} | {row['median_ms']} | {row['p90_ms']} |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
