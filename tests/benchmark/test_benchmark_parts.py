"""The pieces of `edgedet.benchmark`, with hand-computed answers (no child processes)."""

import copy

import numpy as np
import pytest

from edgedet.benchmark import measure, report, run
from edgedet.benchmark.chart import render_chart
from edgedet.benchmark.machine import library_versions, machine_info
from edgedet.benchmark.schema import validate


@pytest.mark.parametrize("text, expected", [
    ("1", [1]), ("1,4", [1, 4]), (" 8 , 2 ,8", [8, 2]),
])
def test_parse_batch_sizes(text, expected):
    assert run.parse_batch_sizes(text) == expected


@pytest.mark.parametrize("text", ["0", "a", "1,,2", "-1", "1.5", ""])
def test_parse_batch_sizes_rejects(text):
    with pytest.raises(ValueError, match="Invalid batch size"):
        run.parse_batch_sizes(text)


def test_stats_known_answer():
    stats = measure.stats_ms([0.001 * i for i in range(1, 11)])  # 1..10 ms
    assert stats == {"median": 5.5, "p90": 9.1, "p99": 9.91, "min": 1.0, "max": 10.0,
                     "mean": 5.5}


def test_peak_rss_sees_a_freed_allocation():
    before = measure.rss_mb()
    block = np.ones(200 * 2**20, np.uint8)  # 200 MiB, touched
    del block
    assert measure.peak_rss_mb() >= before + 190
    assert measure.rss_mb() < before + 100


def _image(height, width, value):
    return np.full((height, width, 3), value, np.uint8)


def test_make_batches_groups_sizes_and_repeats_to_fill():
    images = [_image(4, 6, 1), _image(5, 5, 2), _image(4, 6, 3), _image(4, 6, 4)]
    batches = measure.make_batches(images, 2)
    assert [b.shape for b in batches] == [(2, 4, 6, 3), (2, 4, 6, 3), (2, 5, 5, 3)]
    assert [list(b[:, 0, 0, 0]) for b in batches] == [[1, 3], [4, 1], [2, 2]]
    assert all(b.flags["C_CONTIGUOUS"] and b.dtype == np.uint8 for b in batches)
    assert [b.shape[0] for b in measure.make_batches(images, 1)] == [1, 1, 1, 1]


class FakeRuntime:
    """Records the first pixel of each batch it is given."""

    def __init__(self):
        self.seen = []
        self.last_inference_seconds = None

    def predict(self, batch):
        self.seen.append(int(batch[0, 0, 0, 0]))
        self.last_inference_seconds = 0.0
        return [None] * len(batch)


def test_time_predict_makes_first_warmup_and_timed_calls():
    runtime = FakeRuntime()
    batches = [np.full((3, 2, 2, 3), v, np.uint8) for v in (7, 8)]
    entry = measure._time_predict(runtime, batches, runs=5, warmup=2)
    assert runtime.seen == [7, 8, 7] + [7, 8, 7, 8, 7]
    assert entry["batch_size"] == 3 and entry["runs"] == 5 and entry["warmup"] == 2
    assert entry["graph_ms"]["max"] == 0.0
    assert entry["throughput_ips"] > 0 and entry["stages"] is None


def test_unique_names():
    names = run.unique_names(["a/model.onnx", "b/model.onnx", "a/model.tflite", "model.onnx"])
    assert names == ["model.onnx", "b/model.onnx", "model.tflite", "model.onnx#3"]


def test_machine_info_and_versions():
    info = machine_info()
    assert info["cpu"] and info["python"].count(".") == 2
    assert info["logical_cores"] >= info["usable_cores"] >= 1
    versions = library_versions(("numpy", "surely-not-installed-package"))
    assert versions["numpy"] == np.__version__
    assert versions["surely-not-installed-package"] is None


def _document():
    stats = measure.stats_ms([0.010, 0.012, 0.020])
    ok = measure.empty_result("m.onnx", "out/m.onnx")
    ok.update(runtime="onnx", target="onnx", precision="fp32", model_size=640, num_classes=3,
              size_bytes=10, load_seconds=0.5, runtime_import_seconds=0.1,
              execution_provider="CPUExecutionProvider",
              execution_providers=["CPUExecutionProvider"],
              memory={"rss_before_load_mb": 50.0, "rss_after_load_mb": 90.0,
                      "peak_rss_mb": 120.0},
              stages_reason="one call")
    ok["batches"] = [{"batch_size": 1, "runs": 3, "warmup": 1, "first_call_ms": 30.0,
                      "latency_ms": stats, "graph_ms": stats, "throughput_ips": 71.4,
                      "stages": None}]
    keras = copy.deepcopy(ok)
    keras.update(name="m.keras", artifact="m.keras", runtime="keras", target="keras",
                 execution_provider=None, execution_providers=None, stages_reason=None)
    keras["batches"][0]["stages"] = {n: stats for n in ("letterbox", "network", "decode", "nms")}
    failed = measure.empty_result("bad.tflite", "bad.tflite")
    failed["error"] = "ValueError: corrupt"
    return {
        "schema_version": 2, "edgedet_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
        "command": "edgedet benchmark out/m.onnx",
        "settings": {"batch_sizes": [1], "runs": 3, "warmup": 1, "threads": None,
                     "images": {"source": "imgs", "count": 2, "sizes": [[720, 1280]],
                                "unreadable": [{"image": "imgs/x.jpg", "reason": "truncated"}]}},
        "machine": machine_info(),
        "results": [ok, keras, failed],
    }


def test_hand_made_document_validates_and_a_broken_one_does_not():
    import jsonschema

    document = _document()
    validate(document)
    del document["results"][0]["memory"]["peak_rss_mb"]
    with pytest.raises(jsonschema.ValidationError, match="peak_rss_mb"):
        validate(document)


def test_table_and_markdown():
    document = _document()
    table = report.format_table(document)
    assert "m.onnx" in table and "CPU " in table and "12.00" in table  # median 12 ms
    assert "bad.tflite" in table and "FAILED" in table and "ValueError: corrupt" in table
    markdown = report.to_markdown(document, title="CPU", notes=["random weights"])
    assert markdown.startswith("## CPU\n")
    assert "| m.onnx | onnx | fp32 | CPU | 1 | 0.500 | 12.00 |" in markdown
    assert "| m.keras | 1 | 12.00 | 12.00 | 12.00 | 12.00 |" in markdown
    assert "1280x720 (W x H)" in markdown and "- random weights" in markdown
    assert "```\nedgedet benchmark out/m.onnx\n```" in markdown


def test_chart_renders_png_bytes_with_a_failed_artifact():
    png = render_chart(_document())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_cli_default_images_match_the_library():
    from edgedet.cli import benchmark as cli_benchmark

    assert cli_benchmark.DEFAULT_IMAGES == run.DEFAULT_IMAGES


def test_run_benchmark_checks_settings_before_measuring(tmp_path):
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"x")
    for kwargs, word in [({"runs": 0}, "runs"), ({"warmup": -1}, "warmup"),
                         ({"threads": 0}, "threads"), ({"batch_sizes": [0]}, "batch")]:
        with pytest.raises(ValueError, match=word):
            run.run_benchmark([artifact], **kwargs)
    with pytest.raises(ValueError, match="Supported artifacts"):
        run.run_benchmark([tmp_path])
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        run.run_benchmark([tmp_path / "nope.onnx"])


def test_batch_memory_known_answer():
    # Two 10x20 images and one 30x40; batch sizes 1 and 4 are both built.
    shapes = [(10, 20), (10, 20), (30, 40)]
    need = run.batch_memory(shapes, [1, 4], model_size=64)
    host_1 = 2 * 600 + 1 * 3600  # one batch per image
    host_4 = 4 * 600 + 4 * 3600  # each size group fills one batch of 4 (repeating images)
    assert need["host"] == host_1 + host_4
    assert need["runtime"] == 4 * (1200 * 3 + 64 * 64 * 3 * 4)
    assert need["total"] == need["host"] + need["runtime"]


def test_check_batch_memory_refuses_with_the_numbers():
    shapes = [(720, 1280)] * 8
    need = run.check_batch_memory(shapes, [1, 4], model_size=640, available=10**9)
    assert need["total"] < 10**9
    with pytest.raises(ValueError) as info:
        run.check_batch_memory(shapes, [100000], model_size=640, available=16 * 10**9)
    message = str(info.value)
    assert "--batch 100000 cannot fit in memory" in message
    assert "276.5 GB of uint8 input batches" in message  # 100000 x 720 x 1280 x 3
    assert "16.0 GB available" in message and "at 640 px" in message
