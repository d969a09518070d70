"""`edgedet benchmark` as a library: every artifact measured in its own process.

Example:

```python
from edgedet.benchmark import run_benchmark, write_outputs

document = run_benchmark(
    ["out/model.onnx", "out/model.tflite"], images="synthetic:shapes?n=8&size=720x1280",
    batch_sizes=[1, 4], runs=50, warmup=5, threads=2,
)
write_outputs(document, "bench/")  # bench/benchmark.json, bench/benchmark.png
```
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import edgedet
from edgedet.benchmark.machine import machine_info
from edgedet.benchmark.measure import empty_result
from edgedet.benchmark.schema import SCHEMA_VERSION

#: Images used when none are given: 8 synthetic 1280x720 frames.
DEFAULT_IMAGES = "synthetic:shapes?n=8&seed=0&size=720x1280"
#: At most this many images are read from a folder (the first, sorted by path).
DEFAULT_MAX_IMAGES = 16
JSON_NAME = "benchmark.json"
CHART_NAME = "benchmark.png"


def parse_batch_sizes(text):
    """Parses `"1,4"` into `[1, 4]` (order kept, duplicates dropped).

    Raises:
        ValueError: an entry is not a whole number >= 1, naming it.
    """
    sizes = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(
                f"Invalid batch size {part!r} in {text!r}. Expected whole numbers >= 1, "
                "comma-separated, e.g. '1,4'."
            )
        if int(part) not in sizes:
            sizes.append(int(part))
    return sizes


def check_artifact(path):
    """Checks that `path` exists and is an artifact edgedet can run.

    Returns:
        The runtime kind (`"onnx"`, `"tflite"`, ...).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported artifact kind (listing the supported kinds).
    """
    from edgedet.runtimes.registry import runtime_kind

    return runtime_kind(path)


def list_inputs(source, max_images=DEFAULT_MAX_IMAGES):
    """Checks an image source without decoding the images.

    Args:
        source: str or path. A folder of images, one image file, a glob, or a
            `synthetic:shapes?...` spec (see `edgedet.sources.ImageSource`).
        max_images: int. At most this many images from files (the first).

    Returns:
        An `edgedet.sources.ImageSource`, files named by their path.

    Raises:
        ValueError: an empty folder, a missing path or a malformed spec.
    """
    from edgedet.sources import ImageSource

    text = os.fspath(source)
    images = ImageSource(text, naming="path")
    if images.dataset is not None:
        if len(images) < 1:
            raise ValueError(f"Synthetic spec {text!r} yields no images; use n >= 1.")
        return images
    return images.subset(range(min(len(images), max_images)))


def load_inputs(source, max_images=DEFAULT_MAX_IMAGES, failures=None):
    """Decodes the benchmark images of `source` (see `list_inputs`).

    An image that cannot be read is left out and, when `failures` is a
    list, recorded there as `{"image", "reason"}`.

    Returns:
        A list of uint8 `[H, W, 3]` RGB arrays.

    Raises:
        ValueError: no image could be read.
    """
    from edgedet.files import printable

    images = list_inputs(source, max_images)
    arrays = [image for _, image in images]
    if failures is not None:
        failures.extend(images.failures)
    if not arrays:
        raise ValueError(f"None of the {len(images)} image(s) of {printable(source)} could be "
                         "read: " + "; ".join(f["reason"] for f in images.failures[:3]))
    return arrays


def batch_memory(shapes, batch_sizes, model_size=0):
    """The least memory (bytes) a benchmark of these images and batch sizes needs.

    Counted: the uint8 batches the measuring process builds before timing
    (every batch size at once, see `measure.make_batches`), and for the
    largest batch the runtime's copy of it plus its letterboxed float32
    tensor at `model_size`. The network's own activations come on top, so
    this is a lower bound: a batch above it cannot fit.

    Args:
        shapes: list of `(height, width)`, one per image.
        batch_sizes: list of int.
        model_size: int. The model's input side (0 if unknown). Defaults to 0.

    Returns:
        A dict `{"host", "runtime", "total"}` of bytes.
    """
    groups = {}
    for height, width in shapes:
        groups[(int(height), int(width))] = groups.get((int(height), int(width)), 0) + 1
    host = 0
    for batch in batch_sizes:
        for (height, width), count in groups.items():
            host += -(-count // batch) * batch * height * width * 3
    largest = max(batch_sizes)
    pixels = max(height * width for height, width in groups)
    runtime = largest * (pixels * 3 + int(model_size) ** 2 * 3 * 4)
    return {"host": host, "runtime": runtime, "total": host + runtime}


def _gb(num_bytes):
    return f"{num_bytes / 1e9:.1f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:.1f} MB"


def check_batch_memory(shapes, batch_sizes, model_size=0, available=None):
    """Refuses batch sizes whose least memory need exceeds the memory available.

    Args:
        shapes, batch_sizes, model_size: see `batch_memory`.
        available: int or None. Bytes available. Defaults to None (psutil's
            `virtual_memory().available`).

    Raises:
        ValueError: with the estimate and the available memory, naming the
            batch size.
    """
    import psutil

    available = psutil.virtual_memory().available if available is None else available
    need = batch_memory(shapes, batch_sizes, model_size)
    if need["total"] > available:
        size = f" at {model_size} px" if model_size else ""
        raise ValueError(
            f"--batch {','.join(map(str, batch_sizes))} cannot fit in memory: it needs at least "
            f"{_gb(need['total'])} ({_gb(need['host'])} of uint8 input batches built before "
            f"timing, plus {_gb(need['runtime'])} in the runtime for batch {max(batch_sizes)}: "
            f"its copy of the input and the letterboxed float32 tensor{size}; the network's "
            f"activations come on top), and this machine has {_gb(available)} available. "
            "Use a smaller --batch.")
    return need


def _model_size(artifacts):
    """The largest model input side among the artifacts' metadata (0 if none is readable)."""
    from edgedet.runtimes.registry import artifact_kind, read_metadata

    sizes = [0]
    for path in artifacts:
        try:
            if artifact_kind(path).metadata is not None:  # A .keras model has none.
                sizes.append(int(read_metadata(path).inference.letterbox.size))
        except Exception:  # noqa: BLE001 - the estimate is a lower bound either way.
            continue
    return max(sizes)


def unique_names(paths):
    """Short, distinct labels for artifacts: the file or folder name, else more of the path."""
    names = []
    for path in paths:
        path = Path(path)
        name, parts = path.name or str(path), 1
        while name in names and parts < len(path.parts):
            parts += 1
            name = str(Path(*path.parts[-parts:]))
        while name in names:
            name = f"{name}#{len(names)}"
        names.append(name)
    return names


def run_benchmark(artifacts, images=DEFAULT_IMAGES, batch_sizes=(1,), runs=20, warmup=3,
                  threads=None, max_images=DEFAULT_MAX_IMAGES, timeout=None, progress=None,
                  command=None):
    """Measures every artifact, each in a fresh Python process.

    Args:
        artifacts: list of str or path. SavedModel folders, `.onnx`,
            `.tflite` or `.keras` files.
        images: str or path. A folder, an image file, or a `synthetic:` spec.
            Defaults to `DEFAULT_IMAGES` (8 synthetic 1280x720 frames).
        batch_sizes: sequence of int >= 1. Defaults to `(1,)`.
        runs: int >= 1. Timed calls per batch size. Defaults to 20.
        warmup: int >= 0. Untimed calls per batch size before the timed
            ones (after one first call). Defaults to 3.
        threads: int >= 1 or None. Intra-op threads of each runtime (see
            each kind's `threads_via` in `edgedet.runtimes.kinds`). Defaults to None
            (each runtime's default).
        max_images: int. Images read from a folder at most. Defaults to 16.
        timeout: float or None. Seconds each artifact may take before its
            process is stopped (recorded as an error). Defaults to None.
        progress: callable or None. Called with one message per step.
        command: str or None. Recorded as `command` in the document.

    Returns:
        The `benchmark.json` document (a dict; see `edgedet.benchmark.schema`).
        An artifact that fails has its `error` set; the others still run.

    Raises:
        ValueError: bad settings, an unsupported artifact, unusable images,
            or batches that cannot fit in memory (all checked before any
            measurement). Single unreadable images are left out and listed
            in `settings.images.unreadable`.
        FileNotFoundError: an artifact does not exist.
    """
    notify = progress or (lambda message: None)
    artifacts = [Path(a) for a in ([artifacts] if isinstance(artifacts, (str, os.PathLike))
                                   else artifacts)]
    if not artifacts:
        raise ValueError("Expected at least one artifact to benchmark, received none.")
    batch_sizes = [int(b) for b in batch_sizes]
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ValueError(f"Invalid batch sizes {batch_sizes}. Expected integers >= 1.")
    if int(runs) < 1:
        raise ValueError(f"Invalid runs: {runs}. Expected an integer >= 1.")
    if int(warmup) < 0:
        raise ValueError(f"Invalid warmup: {warmup}. Expected an integer >= 0.")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"Invalid threads: {threads}. Expected an integer >= 1 or None.")
    for path in artifacts:
        check_artifact(path)

    notify(f"loading images from {images}")
    unreadable = []
    arrays = load_inputs(images, max_images, failures=unreadable)
    for failure in unreadable:
        notify(f"FAILED input {failure['image']}: {failure['reason']}")
    need = check_batch_memory([a.shape[:2] for a in arrays], batch_sizes, _model_size(artifacts))
    notify(f"batches need at least {_gb(need['total'])} of memory")
    sizes = []
    for array in arrays:
        if list(array.shape[:2]) not in sizes:
            sizes.append([int(array.shape[0]), int(array.shape[1])])
    document = {
        "schema_version": SCHEMA_VERSION,
        "edgedet_version": edgedet.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "settings": {
            "batch_sizes": batch_sizes,
            "runs": int(runs),
            "warmup": int(warmup),
            "threads": None if threads is None else int(threads),
            "images": {"source": os.fspath(images), "count": len(arrays), "sizes": sizes,
                       "unreadable": unreadable},
        },
        "machine": machine_info(),
        "results": [],
    }
    from edgedet.runtimes.kinds import added_kinds

    with tempfile.TemporaryDirectory(prefix="edgedet-benchmark-") as work:
        work = Path(work)
        inputs = work / "inputs.npz"
        np.savez(inputs, **{f"image_{i}": array for i, array in enumerate(arrays)})
        del arrays
        names = unique_names(artifacts)
        for index, (path, name) in enumerate(zip(artifacts, names)):
            notify(f"[{index + 1}/{len(artifacts)}] {name}: measuring in a new process")
            request = {
                "artifact": str(path), "name": name, "inputs": str(inputs),
                "batch_sizes": batch_sizes, "runs": int(runs), "warmup": int(warmup),
                "threads": document["settings"]["threads"],
                "kinds": [kind.to_dict() for kind in added_kinds()],
            }
            result = _run_child(request, work / f"result_{index}.json", timeout)
            if result["error"]:
                notify(f"[{index + 1}/{len(artifacts)}] {name}: FAILED: {result['error']}")
            document["results"].append(result)
    return document


def _run_child(request, result_path, timeout):
    """Runs `edgedet.benchmark.measure` in a child process; returns its result entry."""
    request_path = result_path.with_suffix(".request.json")
    request_path.write_text(json.dumps(request), encoding="utf-8")
    command = [sys.executable, "-m", "edgedet.benchmark.measure", str(request_path),
               str(result_path)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   env=env, check=False)
    except subprocess.TimeoutExpired:
        result = empty_result(request["name"], request["artifact"])
        result["error"] = f"Timed out after {timeout} s (the process was stopped)."
        return result
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    result = empty_result(request["name"], request["artifact"])
    tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
    result["error"] = (
        f"The measuring process exited with code {completed.returncode} without a result"
        + (f":\n{tail}" if tail else ".")
    )
    return result


def output_paths(out_dir):
    """`(json_path, chart_path)` inside `out_dir`."""
    out_dir = Path(out_dir)
    return out_dir / JSON_NAME, out_dir / CHART_NAME


def check_outputs(out_dir, force=False, protected=()):
    """Fails early if `benchmark.json` or `benchmark.png` exist in `out_dir` and not `force`.

    Args:
        protected: iterable of paths. Inputs the outputs may not replace.
            Defaults to `()`.

    Raises:
        OutputExistsError: naming the existing file.
        NotADirectoryError: `out_dir` is a file.
        PermissionError: `out_dir` cannot be written (naming it).
    """
    from edgedet.files import check_writable_output

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"Output folder '{out_dir}' is a file.")
    for path in output_paths(out_dir):
        check_writable_output(path, force, protected)


def write_outputs(document, out_dir, force=False):
    """Writes `benchmark.json` and the `benchmark.png` bar chart into `out_dir`.

    Args:
        document: the dict `run_benchmark` returns.
        out_dir: str or path. Created if missing.
        force: bool. Replace existing files. Defaults to False.

    Returns:
        `(json_path, chart_path)`.
    """
    from edgedet.benchmark.chart import render_chart
    from edgedet.files import atomic_write_bytes, atomic_write_text

    check_outputs(out_dir, force)
    json_path, chart_path = output_paths(out_dir)
    atomic_write_text(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    atomic_write_bytes(chart_path, render_chart(document))
    return json_path, chart_path
