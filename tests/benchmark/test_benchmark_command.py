"""`edgedet benchmark` end to end on tiny artifacts, and its usage errors.

The command runs once (module fixture) on an ONNX, a TFLite and a `.keras`
tiny model; the tests read what it wrote. No test asserts a time.
"""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from edgedet.benchmark import schema, validate
from edgedet.cli.benchmark import benchmark_command

CLASS_NAMES = ["circle", "square", "triangle"]
IMAGES = "synthetic:shapes?n=3&seed=1&size=48x80"


def invoke(*args):
    return CliRunner().invoke(benchmark_command, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from edgedet.export import export
    from edgedet.models import YOLOV8Detector

    folder = tmp_path_factory.mktemp("artifacts")
    model = YOLOV8Detector.from_preset("tiny", class_names=CLASS_NAMES)
    results = export(model, ["onnx", "tflite"], folder, stem="tiny")
    model.save(folder / "tiny.keras")
    paths = {r.target: r.path for r in results}
    paths["keras"] = folder / "tiny.keras"
    paths["size"] = model.default_inference_config().letterbox.size
    return paths


@pytest.fixture(scope="module")
def benchmarked(artifacts, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = invoke(artifacts["onnx"], artifacts["tflite"], artifacts["keras"],
                    "--images", IMAGES, "--batch", "1,2", "--runs", "3", "--warmup", "1",
                    "--threads", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return result, out


def _documented_objects(node, path="$"):
    """Every object schema (with properties) inside the schema, with its path."""
    if isinstance(node, dict):
        if "properties" in node:
            yield path, node
            for name, child in node["properties"].items():
                yield from _documented_objects(child, f"{path}.{name}")
        if "items" in node:
            yield from _documented_objects(node["items"], f"{path}[]")


def test_every_documented_field_is_described_and_required():
    for path, node in _documented_objects(schema()):
        assert node["required"] == list(node["properties"]), path
        for name, child in node["properties"].items():
            assert child.get("description"), f"{path}.{name} has no description"


def _missing_fields(value, node, path="$"):
    """Documented fields absent from `value` (walking non-null objects and arrays)."""
    missing = []
    if isinstance(value, dict) and "properties" in node:
        for name, child in node["properties"].items():
            if name not in value:
                missing.append(f"{path}.{name}")
            else:
                missing += _missing_fields(value[name], child, f"{path}.{name}")
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            missing += _missing_fields(item, node["items"], f"{path}[{index}]")
    return missing


def test_json_has_every_documented_field(benchmarked):
    _, out = benchmarked
    document = json.loads((out / "benchmark.json").read_text())
    validate(document)
    assert _missing_fields(document, schema()) == []
    assert document["settings"]["batch_sizes"] == [1, 2]
    assert document["settings"]["images"] == {"source": IMAGES, "count": 3, "sizes": [[48, 80]],
                                                  "unreadable": []}
    assert document["command"].startswith("edgedet benchmark ")
    assert "--batch 1,2" in document["command"]
    assert document["machine"]["libraries"]["onnxruntime"]


def test_results_are_consistent(benchmarked, artifacts):
    _, out = benchmarked
    results = json.loads((out / "benchmark.json").read_text())["results"]
    assert [r["runtime"] for r in results] == ["onnx", "tflite", "keras"]
    assert [r["target"] for r in results] == ["onnx", "tflite", "keras"]
    for result in results:
        assert result["error"] is None
        assert result["num_classes"] == len(CLASS_NAMES)
        assert result["model_size"] == artifacts["size"]
        assert result["threads"]["requested"] == 1 and result["threads"]["applied_via"]
        assert result["size_bytes"] > 0 and result["load_seconds"] >= 0
        memory = result["memory"]
        assert memory["peak_rss_mb"] >= memory["rss_after_load_mb"] * 0.99 > 0
        assert [b["batch_size"] for b in result["batches"]] == [1, 2]
        for entry in result["batches"]:
            assert entry["runs"] == 3 and entry["warmup"] == 1
            latency = entry["latency_ms"]
            assert 0 < latency["min"] <= latency["median"] <= latency["p90"] <= latency["p99"]
            assert latency["p99"] <= latency["max"]
            assert entry["graph_ms"]["median"] <= latency["median"] * 1.0001 + 1e-6
            expected = entry["batch_size"] * 1000.0 / latency["mean"]
            assert entry["throughput_ips"] == pytest.approx(expected, rel=1e-3)
    onnx, tflite, keras = results
    assert onnx["execution_provider"] == onnx["execution_providers"][0]
    assert "CPUExecutionProvider" in onnx["execution_providers"]
    assert tflite["execution_provider"] is None and tflite["execution_providers"] is None
    for result in (onnx, tflite):
        assert result["stages_reason"] and all(b["stages"] is None for b in result["batches"])
    assert keras["stages_reason"] is None
    for entry in keras["batches"]:
        assert list(entry["stages"]) == ["letterbox", "network", "decode", "nms"]
        assert all(s["median"] > 0 for s in entry["stages"].values())


def test_peak_memory_is_the_child_s_own(benchmarked):
    # Linux hands a parent's peak RSS to its children through fork + exec
    # (ru_maxrss); the ONNX child must report its own, far below this process
    # which holds TensorFlow and Keras.
    from edgedet.benchmark.measure import rss_mb

    _, out = benchmarked
    onnx = json.loads((out / "benchmark.json").read_text())["results"][0]
    parent = rss_mb()
    if parent < 400:
        pytest.skip(f"this test process is too small ({parent:.0f} MiB) to tell them apart")
    assert onnx["memory"]["peak_rss_mb"] < parent


def test_chart_is_a_valid_png(benchmarked):
    _, out = benchmarked
    path = out / "benchmark.png"
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200


def test_table_lists_every_artifact_and_batch(benchmarked):
    result, _ = benchmarked
    for name in ("tiny.onnx", "tiny.tflite", "tiny.keras", "median ms", "letterbox ms"):
        assert name in result.output
    table_rows = [line for line in result.output.splitlines() if line.startswith("tiny.")]
    assert len(table_rows) == 3 * 2 + 2  # 3 artifacts x 2 batches, + 2 stage rows


def test_existing_outputs_need_force(benchmarked, artifacts):
    _, out = benchmarked
    result = CliRunner().invoke(benchmark_command, [str(artifacts["onnx"]), "--out", str(out)])
    assert result.exit_code == 1
    assert "benchmark.json" in result.output and "--force" in result.output


def test_a_failing_artifact_is_reported_and_the_others_still_run(artifacts, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    out = tmp_path / "bench"
    result = CliRunner().invoke(benchmark_command, [
        str(broken), str(artifacts["tflite"]), "--images", IMAGES, "--runs", "1",
        "--warmup", "0", "--out", str(out)])
    assert result.exit_code == 1
    assert "broken.onnx" in result.output and "FAILED" in result.output
    document = json.loads((out / "benchmark.json").read_text())
    validate(document)
    failed, measured = document["results"]
    assert "broken.onnx" in failed["error"] and failed["batches"] == []
    assert measured["error"] is None and measured["batches"][0]["runs"] == 1
    with Image.open(out / "benchmark.png") as image:
        image.verify()


def test_one_unreadable_image_is_listed_and_the_others_measured(artifacts, tmp_path):
    import numpy as np

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    out = tmp_path / "bench"
    result = invoke(artifacts["onnx"], "--images", folder, "--batch", "2", "--runs", "1",
                    "--warmup", "0", "--out", out)
    assert result.exit_code == 3, result.output  # Documented in --help: some inputs failed.
    assert "broken.jpg" in result.output and "could not be read" in result.output
    document = json.loads((out / "benchmark.json").read_text())
    validate(document)
    images = document["settings"]["images"]
    assert images["count"] == 2 and images["sizes"] == [[40, 56]]
    assert [u["image"] for u in images["unreadable"]] == [str(folder / "broken.jpg")]
    assert "truncated or corrupt" in images["unreadable"][0]["reason"]
    (measured,) = document["results"]
    assert measured["error"] is None and measured["batches"][0]["batch_size"] == 2
    assert "Exit code" in invoke("--help").output


def test_an_oversized_batch_is_refused_before_anything_is_built(artifacts, tmp_path):
    import psutil

    out = tmp_path / "bench"
    result = invoke(artifacts["onnx"], "--images", IMAGES, "--batch", "1,10000000",
                    "--out", out)
    assert result.exit_code == 1, result.output
    available = psutil.virtual_memory().available
    assert "--batch 1,10000000 cannot fit in memory" in result.output
    assert "GB available" in result.output and "Use a smaller --batch" in result.output
    # 10**7 images of 48x80: 115.2 GB of uint8 batches, and the letterbox tensor on top.
    assert "115.2 GB of uint8 input batches" in result.output
    assert 115.2e9 > available  # (what makes this machine refuse it)
    assert "measuring" not in result.output and not out.exists()


@pytest.fixture
def empty_folder(tmp_path):
    folder = tmp_path / "no_images"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("args, words", [
    (["missing.onnx"], ["missing.onnx", "does not exist"]),
    (["{txt}"], ["notes.txt", "Supported artifacts"]),
    (["{onnx}", "--batch", "0"], ["'0'", "batch"]),
    (["{onnx}", "--batch", "a"], ["'a'", "batch"]),
    (["{onnx}", "--batch", "1,,4"], ["''", "1,,4"]),
    (["{onnx}", "--runs", "0"], ["--runs", "0"]),
    (["{onnx}", "--threads", "0"], ["--threads", "0"]),
    (["{onnx}", "--images", "{empty}"], ["no_images", "No images found"]),
    (["{onnx}", "--images", "synthetic:shapez"], ["synthetic:shapez"]),
    ([], ["ARTIFACT"]),
])
def test_bad_arguments_are_usage_errors(args, words, artifacts, empty_folder):
    values = {"onnx": artifacts["onnx"], "empty": empty_folder,
              "txt": empty_folder / "notes.txt"}
    args = [a.format(**values) for a in args]
    result = CliRunner().invoke(benchmark_command, args)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output, (word, result.output)
