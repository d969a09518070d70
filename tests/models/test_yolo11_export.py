"""YOLO11 through the same end-to-end graph as YOLOv8: every target, parity, the CLI.

The model is a decisive `yolo11_tiny` (random BatchNorm statistics, a sharp
class head: see `tests/conftest.py`), so agreement between runtimes means
what it does for a trained model; the attention block runs at every level
of the pipeline (the C2PSA on the stride-32 map).
"""

import json

import pytest

keras = pytest.importorskip("keras")

IMAGES = "synthetic:shapes?n=12&size=64&seed=3"
CALIBRATION = {"data": "synthetic:shapes?n=32&size=64&seed=5", "size": 32}


@pytest.fixture(scope="module")
def model(make_decisive_tiny_model):
    return make_decisive_tiny_model("yolo11_tiny", num_classes=3)


def _recalls(result):
    return {a.name: a.summary["recall"] for a in result.artifacts}


def test_onnx_fp32_has_parity_with_keras(model, tmp_path):
    from edgedet.export import export
    from edgedet.parity import run_parity

    (onnx_result,) = export(model, ["onnx"], tmp_path, stem="y11")
    result = run_parity(model, [str(onnx_result.path)], IMAGES)
    assert result, result.summary_text()
    assert set(_recalls(result).values()) == {1.0}
    assert sum(a.summary["matched"] for a in result.artifacts) > 0


@pytest.mark.slow
def test_every_target_and_precision(model, tmp_path):
    import onnx

    from edgedet.export import export
    from edgedet.exporters.trt_lint import lint_onnx
    from edgedet.parity import run_parity

    fp32 = export(model, ["saved_model", "tflite"], tmp_path, stem="y11")
    result = run_parity(model, [str(r.path) for r in fp32], IMAGES)
    assert result, result.summary_text()
    assert set(_recalls(result).values()) == {1.0}

    int8 = export(model, ["onnx", "tflite"], tmp_path, stem="y11", precision="int8",
                  calibration=dict(CALIBRATION, cpu="avx2"))
    result = run_parity(model, [str(r.path) for r in int8], IMAGES)
    # A random tiny model's scores move more under INT8 than a trained one's (the
    # score-delta limit is for trained models); its detections must still match.
    assert all(recall >= 0.9 for recall in _recalls(result).values()), result.summary_text()

    # TensorRT-ready ONNX (no TensorRT here: the export writes them and lints them), built
    # for the default TensorRT 10 and prepared again for every version of the lint table.
    from edgedet.exporters.base import ExportError
    from edgedet.exporters.tensorrt_plan import prepare_onnx

    for precision in ("fp32", "fp16", "int8"):
        try:  # Without TensorRT the export lints and writes the ONNX, then says why no engine.
            export(model, ["trt"], tmp_path, stem="y11", precision=precision,
                   calibration=CALIBRATION)
        except ExportError as error:
            assert "Wrote the TensorRT-ready files" in str(error), str(error)
    trt_onnx = sorted(tmp_path.glob("*trt*.onnx"))
    assert trt_onnx, sorted(p.name for p in tmp_path.iterdir())
    assert any(p.name.endswith("_int8_trt.onnx") for p in trt_onnx)
    for path in trt_onnx:
        for version in ("8.5.2", "8.6.1", "10.3.0", "11.0.0"):
            report = lint_onnx(prepare_onnx(onnx.load(str(path)), version), version)
            assert report, (path.name, version, report.text())


def test_cli_info_and_help_list_yolo11(tmp_path):
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "yolo11n/s/m/l/x" in result.output
    result = CliRunner().invoke(cli, ["info", "yolo11_tiny", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["model"] == "YOLO11Detector" and data["family"] == "yolo11"
