"""`--letterbox rect` artifacts: the body shape follows the image in ONNX Runtime and
OpenVINO, parity holds against the Keras reference built the same way, and the
targets whose network input shape is fixed at build time refuse it before any work."""

import dataclasses
import importlib.util

import numpy as np
import pytest

from edgedet.exporters.registry import TARGETS, check_letterbox_shape, get_target

SIZE = 64
# Frames of several aspect ratios; at 64 px, stride 32, their bodies are 32x64, 64x32,
# 64x64 and 32x64 (60x160 resizes to 24x64, padded to 32x64).
IMAGES = [(60, 160), (160, 60), (100, 100), (37, 301)]


@pytest.fixture(scope="module")
def model(make_decisive_tiny_model):
    import keras

    keras.utils.set_random_seed(5)
    return make_decisive_tiny_model("tiny", class_names=["a", "b", "c"])


def rect_config(model):
    config = model.default_inference_config()
    assert config.letterbox.size == SIZE
    return config.replace(letterbox=dataclasses.replace(config.letterbox, shape="rect"))


def frames():
    from edgedet.data.synthetic import SyntheticShapes

    return [SyntheticShapes(num_images=1, image_size=hw, seed=i, min_objects=2)[0]["image"]
            for i, hw in enumerate(IMAGES)]


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    from edgedet.export import export

    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    targets = ["onnx"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    out = tmp_path_factory.mktemp("rect")
    return export(model, targets, out, config=rect_config(model), stem="m")


@pytest.mark.slow  # Two exports (ONNX, OpenVINO): about a minute.
def test_rect_parity_and_metadata(exported, model):
    from edgedet.parity import run_parity
    from edgedet.runtimes.registry import read_metadata

    paths = [str(r.path) for r in exported]
    for path in paths:
        assert read_metadata(path).inference.letterbox.shape == "rect"
    artifacts = [_f32(path) for path in paths]
    result = run_parity(model, artifacts, frames())
    assert result, result.summary_text()
    assert all(sum(m.num_matched for m in a.matches) > 5 for a in result.artifacts)  # not vacuous


def _f32(path):
    """OpenVINO at f32: this random tiny model is too close to its thresholds for bf16."""
    if not path.endswith(".xml"):
        return path
    from edgedet.runtimes.openvino_rt import OpenVINORuntime

    return OpenVINORuntime(path, precision="f32")


@pytest.mark.slow
def test_rect_onnx_runs_a_smaller_body(exported):
    # The network runs on the rect body: its first convolution's output follows the frame.
    import onnx
    import onnxruntime as ort

    path = next(r.path for r in exported if r.target == "onnx")
    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    model.graph.output.append(onnx.helper.make_tensor_value_info(conv.output[0], 1, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for hw, body in [((60, 160), (32, 64)), ((160, 60), (64, 32)), ((100, 100), (64, 64))]:
        out = session.run(None, {"images": np.zeros((1, *hw, 3), np.uint8)})
        stem = out[names.index(conv.output[0])]
        assert stem.shape[2:] == (body[0] // 2, body[1] // 2), (hw, stem.shape)


@pytest.mark.parametrize("name", [t.name for t in TARGETS if t.static_body])
def test_static_body_targets_refuse_rect_before_any_work(model, tmp_path, name):
    from edgedet.export import export

    with pytest.raises(ValueError, match=f"'{name}' cannot take a rect letterbox"):
        export(model, [name], tmp_path / "out", config=rect_config(model))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_rect_targets_in_the_table():
    assert {t.name for t in TARGETS if not t.static_body} >= {"onnx", "openvino", "savedmodel"}
    assert {t.name for t in TARGETS if t.static_body} >= {"tflite", "trt"}
    check_letterbox_shape(get_target("tflite"), "square")  # square fits every target
    with pytest.raises(ValueError, match="XNNPACK"):
        check_letterbox_shape(get_target("tflite"), "rect")


def test_cli_letterbox_option_refuses_tflite(tmp_path):
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    result = CliRunner().invoke(cli, ["export", "-m", "tiny", "-t", "tflite", "--letterbox",
                                      "rect", "-o", str(tmp_path / "o"), "--no-parity"])
    assert result.exit_code != 0
    assert "cannot take a rect letterbox" in result.output


@pytest.mark.slow
def test_rect_int8_calibrates_bodies_of_several_shapes(model, tmp_path):
    # Calibration images of several sizes give rect bodies of several shapes: ONNX Runtime's
    # range collectors stack a pass's activations, so a rect export calibrates image by image;
    # NNCF (OpenVINO INT8, the openvino target's default rect) takes them one by one.
    from edgedet.export import export
    from edgedet.runtimes.registry import open_runtime

    pytest.importorskip("onnxruntime")
    targets = ["onnx"] + (["openvino"] if importlib.util.find_spec("nncf") else [])
    calibration = {"data": "synthetic:shapes?n=6&seed=1&size=40-160x40-160", "size": 6}
    results = export(model, targets, tmp_path, config=rect_config(model), stem="m",
                     precision="int8", calibration=calibration)
    assert [r.target for r in results] == targets
    for result in results:
        with open_runtime(str(result.path)) as runtime:
            assert runtime.metadata.precision == "int8"
            assert runtime.metadata.inference.letterbox.shape == "rect"
            assert len(runtime.predict(frames())) == len(IMAGES)


def test_default_letterbox_is_rect_only_when_every_target_defaults_to_it():
    from edgedet.exporters.registry import default_letterbox

    ov, onnx = get_target("openvino"), get_target("onnx")
    assert ov.letterbox == "rect" and all(t.letterbox == "square" for t in TARGETS if t != ov)
    assert default_letterbox([ov]) == "rect"
    assert default_letterbox([onnx, ov]) == default_letterbox([ov, onnx]) == "square"
    assert default_letterbox(list(TARGETS)) == "square"  # `--target all`: one graph for all
    assert default_letterbox([]) == "square"


def test_a_static_body_target_cannot_default_to_rect():
    from edgedet.exporters.registry import Target

    row = {"name": "toy", "aliases": (), "suffix": ".toy", "is_folder": False,
           "exporter": "toy:export"}
    with pytest.raises(ValueError, match="'toy' cannot default to a rect letterbox"):
        Target(**row, static_body="fixed shapes", letterbox="rect")
    with pytest.raises(ValueError, match="invalid letterbox 'round'"):
        Target(**row, letterbox="round")


def test_letterbox_help_comes_from_the_table():
    from edgedet.exporters.registry import (
        Target,
        letterbox_help,
        register_target,
        unregister_target,
    )

    assert "rect when every target defaults to it (openvino)" in letterbox_help()
    register_target(Target(name="toyrect", aliases=(), suffix=".toy", is_folder=False,
                           exporter="toy:export", letterbox="rect"))
    try:
        assert "(openvino, toyrect)" in letterbox_help()
        assert "toyrect" in letterbox_help().split("Default")[0]  # takes a rect body
    finally:
        unregister_target("toyrect")


@pytest.mark.parametrize("args, shape, says", [
    (["-t", "openvino"], "rect", "letterbox: rect (the openvino target's default"),
    (["-t", "ov", "--letterbox", "square"], "square", None),
    (["-t", "onnx,openvino"], "square", "letterbox: square (one graph for every target"),
    (["-t", "onnx", "-t", "openvino", "--letterbox", "rect"], "rect", None),
    (["-t", "onnx"], "square", None),
])
def test_cli_resolves_the_letterbox_from_the_targets(tmp_path, monkeypatch, args, shape, says):
    # The export itself is stubbed: this is the CLI's choice of the one graph's config.
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    pytest.importorskip("openvino", reason="the openvino target needs OpenVINO")
    seen = {}
    monkeypatch.setattr("edgedet.export.export",
                        lambda model, names, out, config, **kw: seen.update(config=config) or [])
    result = CliRunner().invoke(cli, ["export", "-m", "tiny", "-o", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert seen["config"].letterbox.shape == shape
    assert (says in result.output) if says else "letterbox:" not in result.output


@pytest.mark.slow  # A 320 px export and its parity: about 25 s (busy machine: more).
def test_cli_openvino_export_defaults_to_rect_and_passes_parity(tmp_path):
    # The built-in trained model, bf16 where the CPU has it: what a user's plain
    # `edgedet export -t openvino` writes and checks.
    from click.testing import CliRunner

    from edgedet.cli.main import cli
    from edgedet.runtimes.registry import read_metadata

    pytest.importorskip("openvino", reason="the openvino target needs OpenVINO")
    result = CliRunner().invoke(cli, ["export", "-m", "shapes", "-t", "openvino", "-o",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "letterbox: rect (the openvino target's default" in result.output
    assert "parity PASSED" in result.output
    assert read_metadata(str(tmp_path / "shapes.xml")).inference.letterbox.shape == "rect"
