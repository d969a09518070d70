"""Measures ONE artifact, in a process of its own.

`edgedet.benchmark.run` starts `python -m edgedet.benchmark.measure REQUEST
RESULT` once per artifact, so the runtime library, its memory and its
thread pools never leak into the next artifact's numbers. REQUEST is a JSON
file (`artifact`, `name`, `inputs` (an `.npz` of uint8 `[H, W, 3]` images),
`batch_sizes`, `runs`, `warmup`, `threads`, and `kinds`: the artifact-kind
rows registered in the parent, `ArtifactKind.to_dict()`, registered here
before the artifact is looked up); RESULT receives one `results`
entry of `benchmark.json` (see `edgedet.benchmark.schema`).

Protocol per batch size: one first call (its latency is `first_call_ms`),
`warmup` untimed calls, then `runs` timed calls of `runtime.predict(batch)`,
cycling through the prepared batches. Batches are built before timing.
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np


def empty_result(name, artifact):
    """A `results` entry with every field present and nothing measured."""
    return {
        "name": str(name),
        "artifact": str(artifact),
        "runtime": None,
        "target": None,
        "precision": None,
        "inference_precision": None,
        "model_size": None,
        "num_classes": None,
        "size_bytes": None,
        "load_seconds": None,
        "runtime_import_seconds": None,
        "execution_provider": None,
        "execution_providers": None,
        "threads": {"requested": None, "applied_via": None},
        "memory": None,
        "batches": [],
        "stages_reason": None,
        "error": None,
    }


def rss_mb():
    """Current resident memory of this process, MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb():
    """Peak resident memory of this process so far, MiB (None if unknown).

    Linux: `VmHWM` of `/proc/self/status`, the high-water mark of this
    process's own memory. Not `getrusage().ru_maxrss`: Linux carries that
    over from the parent across fork and exec, so a child of a big process
    would report the parent's peak. macOS and BSD: `ru_maxrss`. Windows: the
    peak working set.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        peak = getattr(psutil.Process().memory_info(), "peak_wset", None)
        return None if peak is None else peak / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, the BSDs KiB.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def stats_ms(seconds):
    """`{median, p90, p99, min, max, mean}` in milliseconds of a list of seconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    median, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "median": round(float(median), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "min": round(float(values.min()), 4),
        "max": round(float(values.max()), 4),
        "mean": round(float(values.mean()), 4),
    }


def make_batches(images, batch_size):
    """Stacks `images` into uint8 `[batch_size, H, W, 3]` batches of one size each.

    Images are grouped by size (first-seen order); a group of `n` images gives
    `ceil(n / batch_size)` batches, repeating its images to fill the last one.

    Args:
        images: list of uint8 `[H, W, 3]` arrays.
        batch_size: int >= 1.

    Returns:
        A list of C-contiguous uint8 arrays.
    """
    groups = {}
    for image in images:
        groups.setdefault(image.shape, []).append(image)
    batches = []
    for group in groups.values():
        for start in range(max(1, math.ceil(len(group) / batch_size))):
            picked = [group[(start * batch_size + i) % len(group)] for i in range(batch_size)]
            batches.append(np.ascontiguousarray(np.stack(picked)))
    return batches


def artifact_size(path):
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _open(path, kind, threads):
    """The runtime for `path`, with `threads` passed the way its kind accepts (see its row)."""
    from edgedet.runtimes.registry import open_runtime, thread_options

    options = {} if threads is None else thread_options(kind, threads)
    return open_runtime(path, **options)


def _time_predict(runtime, batches, runs, warmup):
    """Times `runtime.predict` over `batches`; returns one `batches` entry (no stages)."""
    started = time.perf_counter()
    runtime.predict(batches[0])
    first_call = time.perf_counter() - started
    for index in range(warmup):
        runtime.predict(batches[(index + 1) % len(batches)])
    latencies, graph = [], []
    for index in range(runs):
        batch = batches[index % len(batches)]
        started = time.perf_counter()
        runtime.predict(batch)
        latencies.append(time.perf_counter() - started)
        graph.append(runtime.last_inference_seconds)
    batch_size = int(batches[0].shape[0])
    return {
        "batch_size": batch_size,
        "runs": runs,
        "warmup": warmup,
        "first_call_ms": round(first_call * 1000.0, 4),
        "latency_ms": stats_ms(latencies),
        "graph_ms": stats_ms(graph),
        "throughput_ips": round(batch_size * runs / sum(latencies), 4),
        "stages": None,
    }


def measure(request):
    """Measures one artifact in this process.

    Args:
        request: dict with `artifact` (path), `name` (label), `inputs` (path
            of an `.npz` of uint8 `[H, W, 3]` images), `batch_sizes` (list of
            int), `runs` (int), `warmup` (int), `threads` (int or None),
            optionally `kinds` (list of `ArtifactKind.to_dict()` to register).

    Returns:
        One `results` entry of `benchmark.json`. Errors are recorded in its
        `error` field, not raised.
    """
    result = empty_result(request["name"], request["artifact"])
    threads = request.get("threads")
    result["threads"]["requested"] = threads
    try:
        _measure(request, result, threads)
    except Exception as error:  # noqa: BLE001 - reported in the result, per artifact.
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def _measure(request, result, threads):
    from edgedet.runtimes.kinds import ArtifactKind, register_kind
    from edgedet.runtimes.registry import artifact_kind, check_installed, read_metadata

    for row in request.get("kinds", ()):  # Rows registered in the parent process.
        register_kind(ArtifactKind.from_dict(row))
    path = Path(request["artifact"])
    kind = artifact_kind(path)
    result["runtime"] = kind.name
    result["size_bytes"] = artifact_size(path)
    if threads is not None:
        result["threads"]["applied_via"] = kind.threads_via
    if kind.metadata is not None:  # A .keras model carries no artifact metadata until loaded.
        _fill_metadata(result, read_metadata(path))
    check_installed(path)

    with np.load(request["inputs"]) as archive:
        images = [archive[key] for key in sorted(archive.files, key=lambda k: int(k.split("_")[1]))]
    all_batches = {size: make_batches(images, size) for size in request["batch_sizes"]}
    del images
    memory = {"rss_before_load_mb": round(rss_mb(), 1)}

    started = time.perf_counter()
    for module in kind.imports:
        __import__(module)
    result["runtime_import_seconds"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    runtime = _open(path, kind, threads)
    with runtime:
        result["load_seconds"] = round(time.perf_counter() - started, 4)
        memory["rss_after_load_mb"] = round(rss_mb(), 1)
        _fill_metadata(result, runtime.metadata)
        result["inference_precision"] = inference_precision(runtime)
        providers = _session_providers(runtime) if kind.providers else None
        if providers is not None:
            result["execution_providers"] = providers
            result["execution_provider"] = providers[0] if providers else None

        for batches in all_batches.values():
            result["batches"].append(
                _time_predict(runtime, batches, request["runs"], request["warmup"])
            )

        if kind.stages:
            from edgedet.benchmark.stages import stage_functions, time_stages

            functions = stage_functions(runtime.end_to_end)
            for entry, batches in zip(result["batches"], all_batches.values()):
                entry["stages"] = time_stages(
                    functions, batches, request["runs"], request["warmup"], stats_ms
                )
        else:
            result["stages_reason"] = (
                f"the {kind.name} runtime runs the end-to-end graph as one call; per-stage timing "
                "needs the Keras model (benchmark a .keras file)"
            )
    peak = peak_rss_mb()
    memory["peak_rss_mb"] = None if peak is None else round(peak, 1)
    result["memory"] = memory


def inference_precision(runtime):
    """What a loaded runtime computes at: its `inference_precision` (OpenVINO: bf16 on CPUs
    with it) or, for runtimes without one, the artifact's precision."""
    return getattr(runtime, "inference_precision", None) or runtime.metadata.precision


def _session_providers(runtime):
    """The providers an ONNX Runtime session really uses (None without a session)."""
    session = getattr(runtime, "session", None)
    if session is not None and hasattr(session, "get_providers"):
        return list(session.get_providers())
    return None


def _fill_metadata(result, metadata):
    result["target"] = metadata.target
    result["precision"] = metadata.precision
    result["model_size"] = int(metadata.inference.letterbox.size)
    result["num_classes"] = int(metadata.num_classes)


def main(argv=None):
    """`python -m edgedet.benchmark.measure REQUEST.json RESULT.json`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m edgedet.benchmark.measure REQUEST.json RESULT.json",
              file=sys.stderr)
        return 2
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = measure(request)
    Path(argv[1]).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 1 if result["error"] else 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
