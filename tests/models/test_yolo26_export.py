"""YOLO26's one-to-many head through the same end-to-end graph and every target.

The one-to-many head (`boxes`/`classes`, decoded by `decode_distances`, then
the in-graph NMS) is what every exporter builds for a YOLO26, with no
exporter naming the family. Two models: a decisive `yolo26_tiny` at 64 px
(random BatchNorm statistics, sharp class heads: `tests/conftest.py`) for the
default run and every precision, and a yolo26n at 160 px with trained-like
Ultralytics weights (`trained_like_ultralytics_state`) for the FP32 targets.
An artifact carries one head: tf2onnx and the TFLite converter prune the
other, as the ONNX check shows for both.
"""

import json

import pytest

keras = pytest.importorskip("keras")

TINY_IMAGES = "synthetic:shapes?n=12&size=64&seed=3"
IMAGES_160 = "synthetic:shapes?n=8&size=160&seed=3"
CALIBRATION = {"data": "synthetic:shapes?n=32&size=64&seed=5", "size": 32}
TRT_VERSIONS = ("8.5.2", "8.6.1", "10.3.0", "11.0.0")


@pytest.fixture(scope="module")
def tiny(make_decisive_tiny_model):
    return make_decisive_tiny_model("yolo26_tiny", num_classes=3)


def _recalls(result):
    return {a.name: a.summary["recall"] for a in result.artifacts}


def _export_with_trt(model, targets, out, **kwargs):
    """Exports `targets` and `trt`: without TensorRT the trt export writes and lints its
    ONNX, then says why no engine (the other targets are written all the same)."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    try:
        export(model, [*targets, "trt"], out, stem="y26", **kwargs)
    except ExportError as error:
        assert "Wrote the TensorRT-ready files" in str(error), str(error)


@pytest.mark.parametrize("head", ["one2many", "one2one"])
def test_onnx_fp32_has_parity_with_keras_and_only_its_head(tiny, tmp_path, head):
    import onnx

    from edgedet.export import export
    from edgedet.parity import run_parity

    config = tiny.default_inference_config().replace(head=head)
    (onnx_result,) = export(tiny, ["onnx"], tmp_path, stem="y26", config=config)
    names = [n.name for n in onnx.load(str(onnx_result.path)).graph.node]
    one2one = any("one2one" in name for name in names)
    assert one2one == (head == "one2one")  # the other head is pruned
    assert any("yolo26_head" in name for name in names) != one2one
    result = run_parity(tiny, [str(onnx_result.path)], TINY_IMAGES)
    assert result, result.summary_text()
    assert set(_recalls(result).values()) == {1.0}
    assert sum(a.summary["matched"] for a in result.artifacts) > 0


@pytest.mark.slow
def test_yolo26n_fp32_targets_have_parity(trained_like_ultralytics_state, tmp_path):
    from edgedet.export import export
    from edgedet.models.ultralytics_import import from_ultralytics
    from edgedet.parity import run_parity

    model = from_ultralytics(trained_like_ultralytics_state("yolo26n"), image_size=160)
    assert model.preset == "yolo26n" and model.letterbox.size == 160
    results = export(model, ["saved_model", "onnx", "tflite"], tmp_path, stem="y26n")
    result = run_parity(model, [str(r.path) for r in results], IMAGES_160)
    assert result, result.summary_text()
    assert set(_recalls(result).values()) == {1.0}
    assert sum(a.summary["matched"] for a in result.artifacts) > 0


@pytest.mark.slow
def test_every_other_target_and_precision(tiny, tmp_path, monkeypatch):
    import onnx

    from edgedet.exporters.tensorrt_plan import prepare_onnx
    from edgedet.exporters.trt_lint import lint_onnx
    from edgedet.parity import run_parity
    from edgedet.runtimes import openvino_rt

    # FP32 OpenVINO (computed in float32 here: bf16 is judged by its own thresholds)
    # and the FP32 / FP16 TensorRT-ready ONNX.
    monkeypatch.setenv(openvino_rt.PRECISION_ENV, "f32")
    _export_with_trt(tiny, ["openvino"], tmp_path)
    _export_with_trt(tiny, [], tmp_path, precision="fp16", calibration=CALIBRATION)
    result = run_parity(tiny, [str(tmp_path / "y26.xml")], TINY_IMAGES)
    assert result and set(_recalls(result).values()) == {1.0}, result.summary_text()

    # INT8: one calibration for ONNX Runtime U8S8, LiteRT and TensorRT's Q/DQ.
    _export_with_trt(tiny, ["onnx", "tflite"], tmp_path, precision="int8",
                     calibration=dict(CALIBRATION, cpu="avx2"))
    int8 = [str(tmp_path / name) for name in ("y26_int8.onnx", "y26_int8.tflite")]
    result = run_parity(tiny, int8, TINY_IMAGES)
    # A random tiny model's scores move more under INT8 than a trained one's; its
    # detections must still match.
    assert all(recall >= 0.9 for recall in _recalls(result).values()), result.summary_text()

    trt_onnx = sorted(tmp_path.glob("*trt*.onnx"))
    names = {p.name for p in trt_onnx}
    assert {"y26_trt.onnx", "y26_fp16_trt.onnx", "y26_int8_trt.onnx"} <= names, names
    for path in trt_onnx:
        for version in TRT_VERSIONS:
            report = lint_onnx(prepare_onnx(onnx.load(str(path)), version), version)
            assert report, (path.name, version, report.text())


def test_cli_info_and_help_list_yolo26():
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "yolo26n/s/m/l/x" in result.output
    result = CliRunner().invoke(cli, ["info", "yolo26n", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["model"] == "YOLO26Detector" and data["family"] == "yolo26"
    assert data["layout"]["heads"] == ["one2many", "one2one"] and data["num_anchors"] == 8400
