"""The one-to-one (NMS-free) head through export, parity, metadata and the refusals.

A stand-in two-head family (`two_head_toy`), written from this file into
`tmp_path` and registered with `heads=("one2many", "one2one")`: three strided
convs and two Detect-shaped heads of `reg_max` 4, the one-to-one head a second
set of output convolutions (as YOLO26's `one2one_cv2` / `one2one_cv3`). Its
model returns `boxes` / `classes` and `one2one_boxes` / `one2one_classes`, the
contract of a family with a one-to-one head. Size 64, so it is fast.
"""

import json
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tf2onnx")

from edgedet.models import families  # noqa: E402

MODULE = "edgedet_two_head_toy"
SOURCE = textwrap.dedent('''
    """A stand-in family with a one-to-many and a one-to-one head (reg_max 4)."""

    import keras

    from edgedet.config import InferenceConfig, LetterboxConfig

    REG_MAX = 4
    PRESETS = {"two_head_p": {"width": 8}}


    def preset_names():
        return list(PRESETS)


    def get_preset(name):
        return dict(PRESETS[name])


    @keras.saving.register_keras_serializable(package="edgedet_two_head_toy")
    class TwoHeadToy(keras.Model):
        def __init__(self, num_classes, width=8, class_names=None, letterbox=None,
                     preset=None, **kwargs):
            images = keras.Input((None, None, 3), name="images")
            x = keras.layers.Rescaling(1 / 255.0, name="rescaling")(images)
            seeds = iter(range(7, 100))  # one seed per layer: the heads differ

            def init(stddev=0.3):
                return keras.initializers.RandomNormal(stddev=stddev, seed=next(seeds))

            outputs = {key: [] for key in ("boxes", "classes", "one2one_boxes",
                                           "one2one_classes")}
            for level, stride in enumerate((8, 2, 2)):
                x = keras.layers.Conv2D(width, stride, strides=stride, activation="relu",
                                        kernel_initializer=init(),
                                        name=f"toy2_down_{level + 1}")(x)
                for prefix, head in (("", "toy2_head"), ("one2one_", "toy2_one2one")):
                    box = keras.layers.Conv2D(4 * REG_MAX, 1, kernel_initializer=init(),
                                              name=f"{head}_{level + 1}_box_3_conv")(x)
                    cls = keras.layers.Conv2D(num_classes, 1, kernel_initializer=init(0.6),
                                              bias_initializer=keras.initializers.Constant(-3.0),
                                              name=f"{head}_{level + 1}_class_3_conv")(x)
                    outputs[prefix + "boxes"].append(
                        keras.layers.Reshape((-1, 4 * REG_MAX))(box))
                    outputs[prefix + "classes"].append(
                        keras.layers.Reshape((-1, num_classes))(cls))
            outputs = {key: keras.layers.Concatenate(axis=1, name=key)(value)
                       for key, value in outputs.items()}
            super().__init__(inputs=images, outputs=outputs, **kwargs)
            self.num_classes = num_classes
            self.width = width
            self.class_names = tuple(class_names or [f"c{i}" for i in range(num_classes)])
            self.letterbox = LetterboxConfig.from_dict(
                letterbox or {"size": 64, "pad_position": "center", "pad_value": 114})
            self.bounding_box_format = "xyxy"
            self.preset = preset
            self.strides = (8, 16, 32)
            self.reg_max = REG_MAX

        def default_inference_config(self):
            return InferenceConfig(letterbox=self.letterbox)

        @classmethod
        def from_preset(cls, name, num_classes=None, class_names=None):
            # Export and parity only: no get_config (no .keras round trip here).
            num_classes = num_classes or len(class_names or ()) or 80
            return cls(num_classes, class_names=class_names, preset=name, **get_preset(name))
''')

# Square images: no letterbox padding, whose anchors a random-weight model scores high and
# whose boxes, clipped to the image, have no area (no IoU, so no match, in any runtime).
PARITY_IMAGES = "synthetic:shapes?n=3&size=96&seed=5"
BUNDLE_IMAGES = "synthetic:shapes?n=12&size=96&seed=5"


def _row(module):
    heads = tuple(f"{head}_{level}_{branch}_3_conv" for head in ("toy2_head", "toy2_one2one")
                  for level in (1, 2, 3) for branch in ("box", "class"))
    return families.ModelFamily(
        name="two_head_toy", title="TwoHeadToy", model_class_path=f"{MODULE}:TwoHeadToy",
        registered_names=("edgedet_two_head_toy>TwoHeadToy",),
        preset_names=module.preset_names, get_preset=module.get_preset,
        head_output_layers=heads, input_layers=("rescaling",), heads=("one2many", "one2one"))


@pytest.fixture(scope="module")
def toy(plug_in_family):
    with plug_in_family(MODULE, SOURCE, _row) as module:
        yield module


@pytest.fixture(scope="module")
def model(toy):
    from edgedet.models import from_preset

    return from_preset("two_head_p", class_names=["a", "b", "c"])


def _config(model, head, **nms):
    from edgedet.config import NMSConfig

    return model.default_inference_config().replace(head=head, nms=NMSConfig(**nms))


def test_the_heads_differ_and_keep_the_contract(model):
    from edgedet.end_to_end import OUTPUT_NAMES, build_end_to_end

    images = np.random.default_rng(0).integers(0, 255, (2, 48, 80, 3), dtype=np.uint8)
    outs = {}
    for head in ("one2many", "one2one"):
        e2e = build_end_to_end(model, _config(model, head, max_detections=30))
        outs[head] = {k: v.numpy() for k, v in e2e.serve(images).items()}
        assert tuple(outs[head]) == OUTPUT_NAMES
    for name in OUTPUT_NAMES:
        assert outs["one2one"][name].shape == outs["one2many"][name].shape
        assert outs["one2one"][name].dtype == outs["one2many"][name].dtype
    o2o = outs["one2one"]
    assert o2o["num_detections"].min() > 0  # random weights: scores ~0.5 pass 0.25
    assert not np.array_equal(o2o["confidence"], outs["one2many"]["confidence"])
    for b, n in enumerate(o2o["num_detections"]):  # original pixels, clipped, padded rows
        assert np.all(o2o["boxes"][b, :n, 2] <= 80) and np.all(o2o["boxes"][b, :n, 3] <= 48)
        assert np.all(o2o["classes"][b, n:] == -1) and np.all(o2o["confidence"][b, n:] == 0)


def test_one2one_exports_and_passes_parity(model, tmp_path):
    import onnx

    from edgedet.export import export
    from edgedet.parity import run_parity
    from edgedet.runtimes.registry import read_metadata

    # k = 84, all anchors at 64 px: the confidence threshold, not k, cuts the list, so
    # anchors of equal score (flat image areas) are all in or all out in every runtime.
    config = _config(model, "one2one", max_detections=100, confidence_threshold=0.5)
    results = export(model, ["saved_model", "onnx", "tflite"], tmp_path, config=config,
                     stem="toy2")
    paths = [str(r.path) for r in results]
    graph = onnx.load(str(tmp_path / "toy2.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "TopK" in ops and "Mod" not in ops and "NonMaxSuppression" not in ops
    convs = [node.name for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 9 and not [c for c in convs if "toy2_head" in c]  # one head computed
    for path in paths:
        assert read_metadata(path).inference.head == "one2one", path
    result = run_parity(model, paths, PARITY_IMAGES)
    assert result, result.summary_text()
    for artifact in result.artifacts:
        assert artifact.summary["recall"] == 1.0, (artifact.name, artifact.summary)


def test_metadata_says_the_head(model):
    from edgedet.metadata import ArtifactMetadata, artifact_metadata

    meta = artifact_metadata(model, _config(model, "one2one"), target="onnx")
    data = json.loads(meta.to_json())
    assert data["inference"]["head"] == "one2one"
    del data["inference"]["head"]  # metadata written before heads existed: one2many
    assert ArtifactMetadata.from_dict(data).inference.head == "one2many"


def test_a_family_without_the_head_is_refused(tmp_path):
    from edgedet.end_to_end import build_end_to_end
    from edgedet.export import export
    from edgedet.models import from_preset

    pico = from_preset("pico", num_classes=2)
    config = pico.default_inference_config().replace(head="one2one")
    with pytest.raises(ValueError, match=r"YOLOv8.*\['one2many'\].*--head one2many"):
        build_end_to_end(pico, config)
    with pytest.raises(ValueError, match="no 'one2one' head"):
        export(pico, ["onnx"], tmp_path, config=config)
    assert not list(tmp_path.iterdir())


def test_refusals_come_before_any_work(model, tmp_path):
    from edgedet.export import export

    notes = []
    with pytest.raises(ValueError, match="10.3.*int8-mode explicit"):
        export(model, ["trt"], tmp_path, config=_config(model, "one2one"), precision="int8",
               target_options={"trt": {"int8_mode": "implicit", "trt_version": "10.3.0"}},
               progress=notes.append)
    assert not any("building the end-to-end graph" in n for n in notes)
    assert not list(tmp_path.iterdir())


def test_one2one_tflite_int8_keeps_the_class_index(model, tmp_path):
    # Not refused (exporters/head_support.py): edgedet quantizes the body only, so the
    # top-k selection's class index stays int32 (Ultralytics' LiteRT INT8 collapses it).
    from edgedet.export import export
    from edgedet.exporters.head_support import refusal
    from edgedet.parity import run_parity

    assert refusal("one2one", "tflite", "int8") is None
    config = _config(model, "one2one", max_detections=100, confidence_threshold=0.5)
    (result,) = export(model, ["tflite"], tmp_path, config=config, stem="m", precision="int8",
                       calibration={"data": BUNDLE_IMAGES, "size": 12})
    parity = run_parity(model, [result.path], BUNDLE_IMAGES)
    (artifact,) = parity.artifacts
    reference = parity.reference_runs[artifact.reference_run or 0].detections
    assert artifact.summary["recall"] >= 0.9, artifact.summary  # a match needs the same class
    counts = [np.bincount(np.concatenate([d.classes for d in side]), minlength=2)
              for side in (reference, artifact.detections)]
    assert counts[0].min() > 0 and np.abs(counts[0] - counts[1]).max() <= 0.1 * counts[0].sum()


def test_cli_head_option(model, toy, tmp_path):
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["export", "--model", "pico", "--target", "onnx",
                                 "--head", "one2one", "--out", str(tmp_path / "a")])
    assert result.exit_code != 0
    assert "YOLOv8" in result.output and "one2many" in result.output
    result = runner.invoke(cli, ["export", "--model", "two_head_p", "--target", "trt",
                                 "--head", "one2one", "--precision", "int8", "--int8-mode",
                                 "implicit", "--trt-version", "10.3.0",
                                 "--out", str(tmp_path / "b")])
    assert result.exit_code != 0 and "--head one2many" in result.output


def test_one2one_openvino_triton_and_tensorrt_ready_onnx(model, tmp_path, monkeypatch):
    import onnx

    from edgedet.export import export
    from edgedet.exporters.base import ExportError
    from edgedet.exporters.onnx_export import head_of
    from edgedet.exporters.tensorrt_plan import prepare_onnx
    from edgedet.exporters.trt_lint import lint_onnx
    from edgedet.parity import run_parity
    from edgedet.runtimes.bundle import BundleRuntime

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    targets = ["trt", "triton"]
    try:
        import openvino  # noqa: F401

        targets.append("openvino")
    except ImportError:
        pass
    # k = 84, all anchors at 64 px: the confidence threshold, not k, cuts the list, so
    # anchors of equal score (flat image areas) are all in or all out in every runtime.
    config = _config(model, "one2one", max_detections=100, confidence_threshold=0.5)
    with pytest.raises(ExportError, match="cannot build a TensorRT engine here") as error:
        export(model, targets, tmp_path, config=config, stem="m",
               calibration={"data": BUNDLE_IMAGES},
               target_options={"trt": {"trt_version": "10.3.0"}})
    assert "Written:" in str(error.value)
    ready = onnx.load(str(tmp_path / "m_trt.onnx"))
    ops = {node.op_type for node in ready.graph.node}
    assert "TopK" in ops and not ops & {"Mod", "NonMaxSuppression"}
    for version in ("8.5.2", "8.6.1", "10.3.0", "11.0.0"):  # the lint table's versions
        report = lint_onnx(prepare_onnx(ready, version), version, max_batch=8)
        assert report and report.findings == [], report.text()
    bundle = tmp_path / "m_parity"
    result = run_parity(BundleRuntime(bundle), [tmp_path / "m_trt.onnx"], bundle / "images")
    assert result, result.summary_text()
    assert head_of(onnx.load(str(tmp_path / "m_triton" / "m" / "1" / "model.onnx"))) == "one2one"
    if "openvino" in targets:
        result = run_parity(model, [tmp_path / "m.xml"], PARITY_IMAGES)
        assert result, result.summary_text()


@pytest.mark.slow
def test_one2one_tensorrt_int8_on_10_3_offers_explicit_only(model, tmp_path, monkeypatch):
    import onnx

    from edgedet.export import export
    from edgedet.exporters.base import ExportError
    from edgedet.exporters.trt_lint import lint_onnx

    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    config = _config(model, "one2one", max_detections=100, confidence_threshold=0.5)
    with pytest.raises(ExportError, match="explicit INT8") as error:
        export(model, ["trt"], tmp_path, config=config, stem="m", precision="int8",
               calibration={"data": BUNDLE_IMAGES, "size": 12},
               target_options={"trt": {"trt_version": "10.3.0", "int8_mode": "explicit"}})
    assert "implicit INT8" not in str(error.value)  # ultralytics#23841: not offered on 10.3
    assert not (tmp_path / "m_int8.calib.cache").exists()
    report = lint_onnx(onnx.load(str(tmp_path / "m_int8_trt.onnx")), "10.3.0", max_batch=8)
    assert report and report.findings == [], report.text()
