"""Every headline command of the README, on realistic models, asserted on its outputs.

Tiny random models hide failures that depend on the weights (an INT8 TensorRT
export once failed on every trained model while the suite was green), so the
commands run here, through the CLI as a user types them, on:

- `shapes`, the built-in trained model;
- `ultralytics_v8n`: a YOLOv8n trained by Ultralytics 8.4.190 (40 epochs on the
  synthetic shapes at 160 px, `tests/fixtures/ultralytics/README.md`), imported
  with `edgedet import ultralytics`.

Per model, one module-scoped run writes the artifacts every test reads:
import, `export --target all` (with its parity check), INT8 ONNX / TFLite,
TensorRT-ready files at FP32 / FP16 / INT8 (no TensorRT here: exit 1, the
files written), `calibrate`, `predict`, `benchmark`, `export --target
triton`, `engine` (its refusal). The TensorRT-ready ONNX files are linted for
every TensorRT version of the rule table, and run in ONNX Runtime for parity
(their explicit Q/DQ is the arithmetic TensorRT is asked to do).

`test_trt_int8_files_for_trained_like_models` exports the INT8 TensorRT-ready
files of Ultralytics' YOLOv8n and YOLOv8s layouts with trained-like statistics
(non-zero BatchNorm means and betas, varied variances; `tests/conftest.py:
trained_like_ultralytics_state`) and of the `pico` preset, for every TensorRT
version of the lint table.
"""

import json
import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow

from edgedet.cli.main import cli  # noqa: E402
from edgedet.exporters.tensorrt_plan import prepare_onnx  # noqa: E402
from edgedet.exporters.trt_lint import lint_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TRT_VERSIONS = ("8.5.2", "8.6.1", "10.3.0", "11.0.0")
# name: (how the model is made, export size, calibration and parity images, shapes' classes)
MODELS = {
    "shapes": ("builtin", None, "synthetic:shapes?n=48&size=224&seed=7"),
    "ultralytics_v8n": ("npz_trained", 160,
                        "synthetic:shapes?n=48&size=120-200&seed=7"
                        "&classes=circle,square,triangle,cross&min_object_size=12"),
}


def run(*args, expect=0):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert expect is None or result.exit_code == expect, (args, result.output[-3000:])
    return result.output


@pytest.fixture(scope="module", params=list(MODELS))
def session(request, tmp_path_factory):
    """Runs the commands once for one model; the tests read what they wrote."""
    name = request.param
    kind, imgsz, images = MODELS[name]
    work = tmp_path_factory.mktemp(name)
    outputs = {"name": name, "work": work, "images": images}
    if kind == "builtin":
        model = "shapes"
    else:
        weights = ROOT / "tests" / "fixtures" / "ultralytics" / "yolov8n_shapes160.npz"
        model = work / "m.keras"
        outputs["import"] = run("import", "ultralytics", weights, "--size", "n", "--classes",
                                "circle,square,triangle,cross", "--imgsz", imgsz, "--out", model)
    outputs["model"] = model
    art, dev = work / "art", work / "to_device"
    outputs["export_all"] = run("export", "--model", model, "--target", "all",
                                "--out", art)
    calib = ["--calib-data", images, "--calib-size", "48"]
    outputs["export_int8"] = run("export", "--model", model, "--target", "onnx,tflite",
                                 "--precision", "int8", *calib, "--out", art)
    for precision in ("fp32", "fp16", "int8"):
        extra = calib if precision == "int8" else []
        outputs[f"trt_{precision}"] = run("export", "--model", model, "--target", "trt",
                                          "--precision", precision, *extra, "--out", dev,
                                          expect=1)
    outputs["calibrate"] = run("calibrate", "--model", model, "--data", images,
                               "--size", "48", "--out", work / "calib")
    outputs["triton"] = run("export", "--model", model, "--target", "triton",
                            "--out", art)
    stem = "shapes" if kind == "builtin" else "m"
    photos = _photos(images, work / "photos", count=8)
    outputs["predict"] = run("predict", "--model", art / f"{stem}.onnx", photos,
                             "--out", work / "preds")
    return outputs


def _photos(spec, folder, count):
    """`count` images of a synthetic spec as PNG files in `folder` (what a user points at)."""
    from PIL import Image

    from edgedet.data import load_dataset

    folder.mkdir()
    dataset = load_dataset(spec, split="photos")
    for index in range(count):
        Image.fromarray(dataset.get(index)["image"]).save(folder / f"photo_{index}.png")
    return folder


def _stem(session):
    return "shapes" if session["name"] == "shapes" else "m"


def test_import_writes_a_keras_model(session):
    if session["name"] == "shapes":
        pytest.skip("the built-in model is not imported")
    assert Path(session["model"]).is_file()


def test_export_all_passes_parity(session):
    art, stem = session["work"] / "art", _stem(session)
    for name in (f"{stem}.onnx", f"{stem}.tflite", f"{stem}_saved_model"):
        assert (art / name).exists(), name
    assert "parity PASSED" in session["export_all"]


def test_int8_onnx_and_tflite_are_written(session):
    from edgedet.runtimes.onnxrt import read_metadata

    art, stem = session["work"] / "art", _stem(session)
    assert read_metadata(art / f"{stem}_int8.onnx").precision == "int8"
    assert (art / f"{stem}_int8.tflite").stat().st_size > 0


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_trt_files_are_written_and_lint_clean_for_every_version(session, precision):
    dev, stem = session["work"] / "to_device", _stem(session)
    named = stem if precision == "fp32" else f"{stem}_{precision}"
    output = session[f"trt_{precision}"]
    assert "Written: nothing" not in output and "lint" not in output.split("Written:")[0]
    ready = dev / f"{named}_trt.onnx"
    assert ready.is_file() and (dev / f"{named}_parity" / "manifest.json").is_file()
    if precision == "int8":
        assert (dev / f"{named}_fp32_trt.onnx").is_file()
        record = json.loads((dev / f"{named}.calib.json").read_text())
        assert record["tensorrt_cache"]["tensors"] > 50
        assert record["tensorrt_cache"]["file"] == f"{named}.calib.cache"
    # The file as written is for the default version; the exporter prepares the same
    # source for every other version: each must pass that version's rules.
    source = onnx.load(str(ready))
    for version in TRT_VERSIONS:
        report = lint_onnx(prepare_onnx(source, version), version, max_batch=1)
        assert report, (version, report.text())


def test_tensorrt_ready_onnx_passes_parity_against_the_bundle(session):
    """The INT8 TensorRT-ready ONNX, run by ONNX Runtime, against the float32 reference
    the bundle carries: what the Jetson will be asked to match."""
    dev, stem = session["work"] / "to_device", _stem(session)
    out = run("parity", "--reference", dev / f"{stem}_int8_parity", dev / f"{stem}_int8_trt.onnx",
              dev / f"{stem}_trt.onnx", "--out", session["work"] / "parity_bundle")
    assert "parity PASSED" in out


def test_parity_with_the_keras_model(session):
    art, stem = session["work"] / "art", _stem(session)
    dev = session["work"] / "to_device"
    artifacts = [art / f"{stem}.onnx", art / f"{stem}.tflite", art / f"{stem}_int8.onnx",
                 dev / f"{stem}_fp16_trt.onnx", dev / f"{stem}_int8_trt.onnx"]
    out = session["work"] / "parity_model"
    run("parity", "--model", session["model"], *artifacts, "--images", session["images"],
        "--out", out)
    report = json.loads((out / "parity.json").read_text())
    assert all(a["status"] == "passed" for a in report["artifacts"]), report["artifacts"]


def test_calibrate_writes_every_int8_file(session):
    calib = session["work"] / "calib"
    names = sorted(p.name for p in calib.iterdir() if not p.name.startswith("."))
    assert any(n.endswith("_int8.onnx") for n in names)
    assert any(n.endswith("_int8_trt.onnx") for n in names)
    assert any(n.endswith(".calib.cache") for n in names)
    # Its Q/DQ follow TensorRT's rules (the NMS is prepared for TensorRT at build time).
    trt = onnx.load(str(next(calib.glob("*_int8_trt.onnx"))))
    report = lint_onnx(trt, "10.3.0", run_nms_probe=False)
    assert not [f.message for f in report.errors if f.rule == "qdq"]


def test_triton_repository_is_written(session):
    art = session["work"] / "art"
    configs = list(art.glob("*_triton/*/config.pbtxt"))
    assert configs and "max_batch_size" in configs[0].read_text()


def test_predict_writes_one_json_per_image(session):
    preds = session["work"] / "preds"
    assert len(list(preds.glob("photo_*.json"))) == 8


def test_benchmark_writes_its_record(session):
    art, stem = session["work"] / "art", _stem(session)
    out = session["work"] / "bench"
    run("benchmark", art / f"{stem}.onnx", "--images", session["images"], "--runs", "2",
        "--warmup", "1", "--max-images", "4", "--out", out)
    record = json.loads((out / "benchmark.json").read_text())
    assert record["results"], record


def test_engine_refuses_clearly_without_tensorrt(session):
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine: the engine builds there (pytest -m tensorrt)")
    dev, stem = session["work"] / "to_device", _stem(session)
    out = run("engine", dev / f"{stem}_trt.onnx", "--out", dev / "x.engine", expect=1)
    assert "TensorRT" in out and "Traceback" not in out
    assert not (dev / "x.engine").exists()


@pytest.mark.parametrize("name", ["yolov8n", "yolov8s", "pico"])
def test_trt_int8_files_for_trained_like_models(name, tmp_path, trained_like_ultralytics_state):
    """INT8 TensorRT-ready files, lint-clean for every version, whatever the weights."""
    from edgedet.export import export
    from edgedet.exporters.base import ExportError

    if name == "pico":
        from edgedet.config import LetterboxConfig
        from edgedet.models import YOLOV8Detector

        model = YOLOV8Detector.from_preset("pico", class_names=["a", "b"],
                                           letterbox=LetterboxConfig(size=160))
    else:
        from edgedet.models.ultralytics_import import from_ultralytics

        model = from_ultralytics(trained_like_ultralytics_state(name), size=name[-1],
                                 image_size=160)
    calibration = {"data": "synthetic:shapes?n=16&size=160&seed=3", "size": 16}
    with pytest.raises(ExportError, match="Wrote the TensorRT-ready files"):
        export(model, ["trt"], tmp_path, precision="int8", calibration=calibration,
               stem="m", target_options={"trt": {"trt_version": "8.5.2"}})
    written = onnx.load(str(tmp_path / "m_int8_trt.onnx"))
    for version in TRT_VERSIONS:
        report = lint_onnx(prepare_onnx(written, version), version, max_batch=1)
        assert report, (name, version, report.text())
