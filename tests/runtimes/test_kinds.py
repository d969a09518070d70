"""The table of artifact kinds: every row resolves, lookups, and "runtime not installed"."""

import pytest

from edgedet.config import InferenceConfig
from edgedet.metadata import ArtifactMetadata
from edgedet.runtimes.kinds import (
    KINDS,
    ArtifactKind,
    get_kind,
    load,
    register_kind,
    unregister_kind,
)
from edgedet.runtimes.registry import (
    RuntimeNotInstalledError,
    check_installed,
    find_kind,
    open_runtime,
    read_metadata,
    thread_options,
)
from edgedet.runtimes.trt import sidecar_path

MISSING = "edgedet_no_such_package_x"


def test_every_row_names_importable_code():
    names = [kind.name for kind in KINDS]
    assert names == ["savedmodel", "bundle", "onnx", "tflite", "openvino", "keras", "trt"]
    for kind in KINDS:
        for spec in (kind.runtime, kind.metadata, kind.folder, kind.opens, kind.threads):
            if spec is not None:
                assert callable(load(spec)), (kind.name, spec)
        assert (kind.threads is None) == (kind.threads_via is None), kind.name


def test_find_kind_by_suffix_and_folder(tmp_path):
    assert find_kind(tmp_path / "m.ONNX").name == "onnx"  # Files need not exist.
    assert find_kind(tmp_path / "m.engine.json") is None
    assert find_kind(tmp_path) is None
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert find_kind(tmp_path).name == "savedmodel"
    assert not get_kind("keras").artifact and get_kind("onnx").providers
    with pytest.raises(ValueError, match="Unknown artifact kind 'onnxruntime'.*'onnx'"):
        get_kind("onnxruntime")


def test_one_name_per_kind_and_suffix_stored_once():
    from edgedet.exporters.registry import TARGETS
    from edgedet.runtimes.kinds import RENAMED, register_kind

    names = {kind.name for kind in KINDS}
    for target in TARGETS:  # Every target's artifact runs under the target's name...
        if target.name != "triton":  # ...but the Triton repository, run as its inner ONNX.
            assert target.name in names, target.name
        if not target.is_folder:
            assert get_kind(target.name).suffixes == (target.suffix,), target.name
    assert find_kind("x/m.triton") is None and get_kind("onnx").matches("m.onnx")
    for old, new in RENAMED.items():  # edgedet 0.1's names still resolve, with a warning.
        with pytest.warns(DeprecationWarning, match=f"'{old}' is now called '{new}'"):
            assert get_kind(old) is get_kind(new)
        with pytest.raises(ValueError, match="old name"):
            register_kind(ArtifactKind(name=old, description="x", suffixes=(".x",),
                                       runtime="m:C"))


def test_threads_reach_the_runtime_as_its_row_says():
    assert thread_options(get_kind("tflite"), 3) == {"num_threads": 3}
    options = thread_options(get_kind("onnx"), 2)["session_options"]
    assert options.intra_op_num_threads == 2
    with pytest.raises(ValueError, match="--threads is not supported for runtime kind 'trt'"):
        thread_options(get_kind("trt"), 2)


@pytest.fixture
def unrunnable(tmp_path):
    """A registered kind whose runtime needs a package that is not installed; one artifact."""
    kind = register_kind(ArtifactKind(
        name="unrunnable", description=".unrunnable", suffixes=(".unrunnable",),
        runtime="edgedet.runtimes.trt:TensorRTRuntime",
        metadata="edgedet.runtimes.trt:read_metadata", requires=(MISSING,),
        install="pip install it"))
    path = tmp_path / "model.unrunnable"
    path.write_bytes(b"\0")
    metadata = ArtifactMetadata(class_names=("circle", "square", "triangle"),
                                inference=InferenceConfig(), target="fake")
    sidecar_path(path).write_text(metadata.to_json())
    yield kind, path, metadata
    unregister_kind("unrunnable")


def test_a_missing_runtime_is_reported_from_the_table(unrunnable):
    kind, path, metadata = unrunnable
    assert kind.missing_packages() == [MISSING]
    assert read_metadata(path) == metadata  # Its metadata still reads (for `info`).
    assert open_runtime(path).metadata == metadata
    with pytest.raises(RuntimeNotInstalledError, match=rf"\['{MISSING}'\].*pip install it"):
        check_installed(path)
    keras_file = path.with_name("model.keras")
    keras_file.write_bytes(b"")
    check_installed(keras_file)  # TensorFlow and Keras are installed: no error.


def test_predict_names_a_missing_runtime_in_one_sentence(unrunnable, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from edgedet.cli.main import cli

    _, path, _ = unrunnable
    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(image)
    result = CliRunner().invoke(cli, ["predict", "-m", str(path), str(image),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert f"['{MISSING}'], not installed here (pip install it)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out").exists()  # Refused before any work.


@pytest.mark.parametrize("command", ["predict", "info"])
def test_help_lists_every_built_in_artifact_kind(command, unrunnable):
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
    artifacts = [kind.description for kind in KINDS if kind.artifact]
    assert len(artifacts) == 6 and all(d in text for d in artifacts), text
    # Registered at run time: not part of the help, whenever the CLI was imported.
    from edgedet.cli.common import artifact_kinds_text

    assert ".unrunnable" not in text and ".unrunnable" not in artifact_kinds_text()
