"""`edgedet parity` exit codes and output, with fake runtimes behind artifact paths."""

import json

import pytest
from click.testing import CliRunner

from edgedet.cli import parity as parity_cli
from edgedet.cli.parity import parity_command


@pytest.fixture
def setup(monkeypatch, tmp_path, case, image_dir, fakes):
    """Artifacts `good.onnx`, `bad.onnx` (shifts img_01 and img_03) on disk; a fake reference."""
    from edgedet.runtimes import registry

    _, table = case
    runtimes = {
        "good.onnx": lambda: fakes.FakeRuntime(table, target="onnx"),
        "bad.onnx": lambda: fakes.FakeRuntime(
            table, target="onnx", precision="int8",
            transform=fakes.shift_boxes({"img_01.png", "img_03.png"}, 15)),
        "other.onnx": lambda: fakes.FakeRuntime(table, target="onnx", class_names=("a", "b")),
    }
    real_open = registry.open_runtime
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in runtimes:
        (folder / name).write_bytes(b"")

    def fake_open(path, **options):
        name = str(path).rsplit("/", 1)[-1]
        return runtimes[name]() if name in runtimes else real_open(path, **options)

    monkeypatch.setattr(registry, "open_runtime", fake_open)
    monkeypatch.setattr(parity_cli, "load_reference", lambda spec: fakes.FakeRuntime(table))
    return folder


def invoke(*args):
    return CliRunner().invoke(parity_command, [str(a) for a in args], catch_exceptions=False)


def test_all_pass_exit_0(setup, image_dir, tmp_path):
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert "| good.onnx | onnx | fp32 | pass |" in result.output
    assert str((out / "report.html").resolve()) in result.output
    assert json.loads((out / "parity.json").read_text())["passed"] is True


def test_broken_artifact_exit_1_names_images(setup, image_dir, tmp_path):
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", setup / "bad.onnx",
                    "--images", image_dir, "--out", out)
    assert result.exit_code == 1, result.output
    assert "FAILED bad.onnx" in result.output
    assert "img_03.png" in result.output and "img_01.png" in result.output
    junit = (out / "junit.xml").read_text()
    assert "img_03.png" in junit and "img_02.png" not in junit
    # A looser threshold for that artifact (from the command line or a file) passes it.
    result = invoke("--model", "ref.keras", setup / "bad.onnx", "--images", image_dir,
                    "--out", out, "--force", "--threshold", "bad.onnx:min_recall=0",
                    "-t", "int8:min_precision=0", "-t", "min_map_vs_reference=none")
    assert result.exit_code == 0, result.output
    config = tmp_path / "t.yaml"
    config.write_text("int8: {min_recall: 0, min_precision: 0, min_map_vs_reference: none}\n")
    result = invoke("--model", "ref.keras", setup / "bad.onnx", "--images", image_dir,
                    "--out", out, "--force", "--config", config)
    assert result.exit_code == 0, result.output


def _truncated_onnx(path):
    """A real ONNX file cut in half, as an interrupted copy leaves it."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["boxes"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.UINT8, [1, 8, 8, 3])])
    data = helper.make_model(graph, producer_name="x" * 200).SerializeToString()
    onnx.load_from_string(data)  # Whole, it loads.
    path.write_bytes(data[: len(data) // 2])
    return path


def _reports(out):
    return {name: (out / name).read_text(encoding="utf-8")
            for name in ("parity.md", "junit.xml", "report.html", "parity.json")}


def test_truncated_artifact_fails_the_run(setup, image_dir, tmp_path):
    truncated = _truncated_onnx(setup / "truncated.onnx")
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", truncated, "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 1, result.output
    assert "FAILED truncated.onnx: cannot load" in result.output
    assert "parity FAILED" in result.output and "PASSED" not in result.output
    for name, text in _reports(out).items():
        assert "truncated.onnx" in text and "cannot load" in text, name
    document = json.loads((out / "parity.json").read_text())
    assert document["passed"] is False
    assert document["counts"] == {"artifacts": 2, "passed": 1, "failed": 1, "skipped": 0}
    # Even --skip-missing-runtimes does not skip it: its runtime is installed.
    result = invoke("--model", "ref.keras", setup / "good.onnx", truncated, "--images", image_dir,
                    "--out", out, "--force", "--skip-missing-runtimes")
    assert result.exit_code == 1 and "FAILED truncated.onnx" in result.output


def test_missing_runtime_is_skipped_only_when_asked(setup, image_dir, tmp_path, monkeypatch):
    from edgedet.runtimes import registry

    engine = setup / "model.tflite"
    engine.write_bytes(b"")
    patched = registry.open_runtime

    def without_litert(path, **options):
        if str(path).endswith(".tflite"):
            raise ImportError("No module named 'ai_edge_litert'")
        return patched(path, **options)

    monkeypatch.setattr(registry, "open_runtime", without_litert)
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", engine, "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 1, result.output
    assert "FAILED model.tflite: runtime not installed" in result.output
    assert "--skip-missing-runtimes" in result.output
    result = invoke("--model", "ref.keras", setup / "good.onnx", engine, "--images", image_dir,
                    "--out", out, "--force", "--skip-missing-runtimes")
    assert result.exit_code == 0, result.output
    assert "skipped model.tflite: runtime not installed" in result.output
    for name, text in _reports(out).items():
        assert "model.tflite" in text, name
    result = invoke("--model", "ref.keras", engine, "--images", image_dir, "--out", out,
                    "--force", "--skip-missing-runtimes")
    assert result.exit_code == 1 and "no artifact could be compared" in result.output


def test_help_documents_the_skip_flag_and_exit_codes():
    result = invoke("--help")
    assert "--skip-missing-runtimes" in result.output
    assert "cannot be loaded" in result.output and "fails the run" in result.output


def test_odd_image_names_keep_every_report_valid(setup, image_dir, tmp_path):
    import os
    import xml.etree.ElementTree as ET

    # Control characters, a non-UTF-8 byte sequence and markup-like text in names.
    renames = {"img_01.png": "esc\x1b[31mred\x07.png", "img_03.png": "amp &lt;b&gt; <i>.png"}
    for old, new in renames.items():
        (image_dir / old).rename(image_dir / new)
    os.rename(os.fsencode(image_dir / "img_02.png"),
              os.fsencode(image_dir) + b"/latin1_\xff\xfe.png")
    out = tmp_path / "report"
    # bad.onnx shifts img_01 and img_03 (matched by content), so both names are listed.
    result = invoke("--model", "ref.keras", setup / "good.onnx", setup / "bad.onnx",
                    "--images", image_dir, "--out", out)
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output
    reports = _reports(out)
    root = ET.fromstring((out / "junit.xml").read_bytes())  # Well-formed, whatever the names.
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"good.onnx", "bad.onnx"}
    failure = cases["bad.onnx"].find("failure").text
    assert "esc\\x1b[31mred\\x07.png" in failure and "amp &lt;b&gt; <i>.png" in failure
    for name, text in reports.items():
        assert "\x1b" not in text and "\x07" not in text, name
    document = json.loads(reports["parity.json"])
    assert "latin1_\\xff\\xfe.png" in document["images"]["names"]
    assert "esc\\x1b[31mred\\x07.png" in document["artifacts"][1]["failing_images"]
    md = reports["parity.md"]
    # `&` is escaped, so `&lt;` is shown as written rather than rendered as `<`.
    assert "amp \\&lt;b\\&gt; \\<i\\>.png" in md
    assert "esc\\\\x1b\\[31mred\\\\x07.png" in md
    html = reports["report.html"]
    assert "amp &amp;lt;b&amp;gt; &lt;i&gt;.png" in html


def test_unreadable_image_is_reported_and_fails_the_run(setup, image_dir, tmp_path):
    (image_dir / "img_04.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 1, result.output
    assert "FAILED input img_04.png: Cannot read" in result.output
    assert "| good.onnx | onnx | fp32 | pass |" in result.output  # The rest were compared.
    document = json.loads((out / "parity.json").read_text())
    assert document["passed"] is False and document["images"]["count"] == 5
    assert [u["image"] for u in document["images"]["unreadable"]] == ["img_04.png"]
    from edgedet.parity.report_json import validate

    validate(document)
    for name, text in _reports(out).items():
        assert "img_04.png" in text.replace("\\_", "_"), name  # Markdown escapes `_`.
    import xml.etree.ElementTree as ET

    root = ET.fromstring((out / "junit.xml").read_bytes())
    inputs = [c for c in root.iter("testcase") if c.get("name") == "inputs"]
    assert inputs and "img_04.png" in inputs[0].find("failure").text


def test_force_never_replaces_the_artifacts_under_test(setup, image_dir, tmp_path):
    # `--out` is the folder holding the artifacts: refused even with --force.
    before = sorted(p.name for p in setup.iterdir())
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", setup, "--force")
    assert result.exit_code == 2, result.output
    assert "Refusing to replace" in result.output and "good.onnx" in result.output
    assert sorted(p.name for p in setup.iterdir()) == before
    # The image folder, likewise.
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", image_dir, "--force")
    assert result.exit_code == 2 and "an input of this command" in result.output
    assert len(list(image_dir.iterdir())) == 6


@pytest.mark.parametrize("extra, message", [
    (["--threshold", "min_recal=0.9"], "Did you mean 'min_recall'"),
    (["--threshold", "tensorrt:min_recall=0.9"], "match no artifact"),
    (["--threshold", "min_recall"], "KEY=VALUE"),
    (["--match-iou", "0"], "match-iou"),
])
def test_usage_errors_exit_2(setup, image_dir, tmp_path, extra, message):
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", tmp_path / "report", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "report").exists()


def test_bad_inputs_exit_2(setup, image_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "report"
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", empty, "--out", out)
    assert result.exit_code == 2 and "No images found" in result.output
    result = invoke("--model", "ref.keras", setup / "other.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "other.onnx: class names differ" in result.output
    result = invoke("--model", "ref.keras", setup / "nope.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "does not exist" in result.output
    out.mkdir()
    result = invoke("--model", "ref.keras", setup / "good.onnx", "--images", image_dir,
                    "--out", out)
    assert result.exit_code == 2 and "--force" in result.output


def test_unknown_preset_exit_2(image_dir, tmp_path):
    result = invoke("--model", "yolov8q", "--images", image_dir, "--out", tmp_path / "r",
                    tmp_path)
    assert result.exit_code == 2, result.output
    assert "is neither an existing file" in result.output


def test_no_artifacts_exports_every_target_first(setup, image_dir, tmp_path, monkeypatch):
    calls = []

    def fake_export(model, out_dir):
        calls.append(out_dir)
        return [str(setup / "good.onnx")]

    monkeypatch.setattr(parity_cli, "_export_all", fake_export)
    result = invoke("--model", "ref.keras", "--images", image_dir, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and "good.onnx" in result.output


def test_reference_artifact_instead_of_a_keras_model(setup, image_dir, tmp_path):
    """`--reference ARTIFACT`: parity with no Keras model (a device without TensorFlow)."""
    result = invoke("--reference", setup / "good.onnx", setup / "good.onnx", "--images",
                    image_dir, "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    result = invoke("--reference", setup / "good.onnx", setup / "bad.onnx", "--images",
                    image_dir, "--out", tmp_path / "bad")
    assert result.exit_code == 1 and "FAILED bad.onnx" in result.output
    for args, message in [
        (("--model", "ref.keras", "--reference", setup / "good.onnx"), "exactly one of"),
        ((), "exactly one of"),
        (("--reference", setup / "good.onnx"), "Missing option '--images'"),
    ]:
        result = invoke(*args, setup / "good.onnx", "--out", tmp_path / "x")
        assert result.exit_code == 2 and message in result.output, result.output
    result = invoke("--reference", setup / "good.onnx", "--images", image_dir,
                    "--out", tmp_path / "x")
    assert result.exit_code == 2 and "none were given" in result.output
