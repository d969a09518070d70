"""An artifact a runtime refuses to load is one sentence naming the file, from every command.

The artifacts are tiny hand-made ONNX files carrying edgedet metadata (no
TensorFlow): one whose graph ONNX Runtime refuses, one whose weights live
outside its folder ("External data path validation failed").
"""

import numpy as np
import pytest
from click.testing import CliRunner

from edgedet.config import InferenceConfig
from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.base import ArtifactLoadError, Runtime

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


class _Refusing(Runtime):
    """A runtime whose library raises `error` when it loads."""

    kind = "refusing"

    def __init__(self, path, error):
        super().__init__(path)
        self.error = error

    def _load(self):
        raise self.error


def test_a_load_failure_names_the_artifact_and_the_runtime():
    error = RuntimeError("flatbuffer verification failed\nat offset 12\n")
    with pytest.raises(ArtifactLoadError) as caught:
        with _Refusing("out/m.tflite", error):
            pass
    assert str(caught.value) == ("Cannot load 'out/m.tflite' (refusing runtime): RuntimeError: "
                                 "flatbuffer verification failed")
    assert caught.value.__cause__ is error and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("error", [
    ImportError("No module named 'tensorrt'"),  # The CLI names the missing packages.
    ConnectionError("Cannot reach Triton at 127.0.0.1:1"),  # A server, not the artifact.
    MetadataError("TFLite model 'out/m.tflite' has no 'serving_default' signature"),
])
def test_errors_that_already_say_what_happened_pass_through(error):
    with pytest.raises(type(error)) as caught:
        with _Refusing("out/m.tflite", error):
            pass
    assert caught.value is error
    with pytest.raises(RuntimeError):  # A live model (no file) keeps its own error.
        with _Refusing(None, RuntimeError("boom")):
            pass


def test_the_edgedet_group_says_it_for_any_command():
    """A command that lets the error through (no `user_errors` of its own) still prints one line."""
    import click

    from edgedet.cli.main import EdgedetGroup

    @click.group(cls=EdgedetGroup)
    def group():
        pass

    @group.command()
    def load():
        with _Refusing("out/m.onnx", RuntimeError("bad graph")):
            pass

    result = CliRunner().invoke(group, ["load"])
    assert result.exit_code == 1
    assert result.output == ("Error: Cannot load 'out/m.onnx' (refusing runtime): "
                             "RuntimeError: bad graph\n")


def _onnx_artifact(path, op_type="Add", external=None):
    """A one-node ONNX with edgedet metadata; `external`: where its weight's data is saved."""
    from onnx import TensorProto, helper, numpy_helper

    from edgedet.metadata import METADATA_KEY

    weight = numpy_helper.from_array(np.ones((4,), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node(op_type, ["images", "w"], ["boxes"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [4])], [weight])
    model = helper.make_model(graph)
    metadata = ArtifactMetadata(("a",), InferenceConfig(), target="onnx", precision="fp32")
    model.metadata_props.add(key=METADATA_KEY, value=metadata.to_json())
    path.parent.mkdir(parents=True, exist_ok=True)
    if external is None:
        onnx.save_model(model, str(path))
        return path
    onnx.save_model(model, str(path), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    (path.parent / external).write_bytes((path.parent / "w.bin").read_bytes())
    (path.parent / "w.bin").unlink()
    saved = onnx.load(str(path), load_external_data=False)
    for entry in saved.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = external
    onnx.save_model(saved, str(path))
    return path


@pytest.fixture
def artifacts(tmp_path):
    """`(refused, outside)`: an ONNX whose graph ONNX Runtime refuses at load, and one whose
    weights point outside its folder; plus a good image."""
    from PIL import Image

    refused = _onnx_artifact(tmp_path / "art" / "refused.onnx", op_type="NoSuchOp")
    outside = _onnx_artifact(tmp_path / "art" / "outside.onnx", external="../w.bin")
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    return refused, outside, image


def _edgedet(*args):
    from edgedet.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _one_line_naming(result, path, *words):
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.output
    assert all(word in errors[0] for word in words), result.output
    assert "Traceback" not in result.output


def test_predict_info_and_parity_say_it_in_one_line(artifacts, tmp_path):
    refused, outside, image = artifacts
    result = _edgedet("predict", "--model", refused, image, "--out", tmp_path / "p1")
    assert result.exit_code == 1
    _one_line_naming(result, refused, "Cannot load", "onnx runtime", "NoSuchOp")
    # Weights outside the folder are refused when the file is first read, `info` included.
    for command in (("predict", "--model", outside, image, "--out", tmp_path / "p2"),
                    ("info", outside)):
        result = _edgedet(*command)
        assert result.exit_code == 1
        _one_line_naming(result, outside, "tensor 'w' in '../w.bin'", "outside the model's folder")
    # A reference that cannot load is bad input (2); an artifact under test that cannot
    # load fails the run (1), its reason in the reports.
    for reference, code in ((refused, 2), (outside, 2)):
        result = _edgedet("parity", "--reference", reference, refused, "--images", image,
                          "--out", tmp_path / f"r{code}")
        assert result.exit_code == code
        _one_line_naming(result, reference)
    good = _onnx_artifact(tmp_path / "good" / "good.onnx")
    result = _edgedet("parity", "--reference", good, refused, "--images", image,
                      "--out", tmp_path / "report")
    assert result.exit_code == 1, result.output
    assert f"FAILED refused.onnx: cannot load: ArtifactLoadError: Cannot load '{refused}'" in (
        result.output)


def test_benchmark_names_the_artifact(artifacts, tmp_path):
    refused, _, image = artifacts
    result = _edgedet("benchmark", refused, "--images", image, "--runs", 1, "--warmup", 0)
    assert result.exit_code == 1
    assert f"ArtifactLoadError: Cannot load '{refused}' (onnx runtime)" in result.output
    _one_line_naming(result, "refused.onnx", "could not be measured")
