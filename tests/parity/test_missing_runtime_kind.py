"""Parity asks the table of artifact kinds whether an artifact's runtime is installed."""

import pytest

from edgedet.config import InferenceConfig
from edgedet.metadata import ArtifactMetadata
from edgedet.parity import run_parity
from edgedet.runtimes.kinds import ArtifactKind, register_kind, unregister_kind
from edgedet.runtimes.trt import sidecar_path

MISSING = "edgedet_no_such_package_x"


@pytest.fixture
def unrunnable(tmp_path, fakes):
    """An artifact of a registered kind whose runtime needs a package not installed here."""
    register_kind(ArtifactKind(
        name="unrunnable", description=".unrunnable", suffixes=(".unrunnable",),
        runtime="edgedet.runtimes.trt:TensorRTRuntime",
        metadata="edgedet.runtimes.trt:read_metadata", requires=(MISSING,)))
    path = tmp_path / "model.unrunnable"
    path.write_bytes(b"\0")
    metadata = ArtifactMetadata(class_names=fakes.CLASS_NAMES, inference=InferenceConfig(),
                                target="fake")
    sidecar_path(path).write_text(metadata.to_json())
    yield path
    unregister_kind("unrunnable")


def test_a_kind_whose_runtime_is_missing_fails_or_is_skipped(case, fakes, unrunnable):
    images, table = case
    ref = fakes.FakeRuntime(table)
    good = fakes.FakeRuntime(table, name="good.onnx")
    result = run_parity(ref, [str(unrunnable), good], images)
    assert not result
    artifact = result["model.unrunnable"]
    assert artifact.status == "failed"
    assert artifact.reason.startswith("runtime not installed")
    assert MISSING in artifact.reason and "--skip-missing-runtimes" in artifact.reason
    result = run_parity(ref, [str(unrunnable), good], images, skip_missing_runtimes=True)
    assert result and result["model.unrunnable"].status == "skipped"
