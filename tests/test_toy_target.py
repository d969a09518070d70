"""A new target is two files and one row per table: a toy target, defined here.

The toy target `.toy` is the end-to-end ONNX inside a zip file: its exporter
uses the ONNX exporter's functions, its runtime feeds the zipped bytes to
ONNX Runtime (which cannot open a `.toy` itself). Its module is written from
this file into `tmp_path` (the benchmark's measuring process imports it by
name), then one `Target` row and one `ArtifactKind` row are registered.
`export`, `info`, `predict`, `parity` and `benchmark` then run on it through
the CLI with no other edit to edgedet.
"""

import json
import os
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgedet.cli.main import cli

TOY_MODULE = "edgedet_toy_target"
TOY_SOURCE = textwrap.dedent('''
    """A toy target: the end-to-end ONNX in a zip file (`.toy`)."""

    import io
    import zipfile
    from pathlib import Path

    from edgedet.exporters import onnx_export
    from edgedet.exporters.base import require_precision, serving_function, stage
    from edgedet.files import atomic_write_bytes, check_writable_output
    from edgedet.metadata import METADATA_KEY, ArtifactMetadata, MetadataError
    from edgedet.runtimes.base import Runtime

    MEMBER = "model.onnx"


    def export(end_to_end, metadata, path, force=False, precision="fp32", session=None):
        require_precision("toy", precision)
        path = check_writable_output(path, force)
        with stage("toy", "trace"):
            serving_function(end_to_end)
        model = onnx_export.convert(end_to_end)
        with stage("toy", "check"):
            model = onnx_export.check(model)
        onnx_export.set_metadata(model, metadata)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as box:
            box.writestr(MEMBER, model.SerializeToString())
        with stage("toy", "write"):
            atomic_write_bytes(path, buffer.getvalue())
        return Path(path)


    def onnx_bytes(path):
        with zipfile.ZipFile(path) as box:
            return box.read(MEMBER)


    def read_metadata(path):
        import onnx

        props = {p.key: p.value for p in onnx.load_from_string(onnx_bytes(path)).metadata_props}
        if METADATA_KEY not in props:
            raise MetadataError(f"'{path}' has no edgedet metadata.")
        return ArtifactMetadata.from_json(props[METADATA_KEY], source=str(path))


    def thread_options(threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return {"session_options": options}


    class ToyRuntime(Runtime):
        kind = "toy"

        def __init__(self, path, session_options=None, providers=None):
            super().__init__(Path(path))
            self.session_options = session_options
            self.providers = providers or ["CPUExecutionProvider"]
            self.session = None

        def _read_metadata(self):
            return read_metadata(self.path)

        def _load(self):
            import onnxruntime as ort

            self.session = ort.InferenceSession(
                onnx_bytes(self.path), sess_options=self.session_options,
                providers=self.providers)

        def _release(self):
            self.session = None

        def _infer(self, batch):
            names = [o.name for o in self.session.get_outputs()]
            return dict(zip(names, self.session.run(names, {"images": batch})))
''')


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy module on `sys.path` (here and in child processes) and its two rows registered."""
    from edgedet.exporters.registry import Target, register_target, unregister_target
    from edgedet.runtimes.kinds import ArtifactKind, register_kind, unregister_kind

    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / f"{TOY_MODULE}.py").write_text(TOY_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]))
    kind = register_kind(ArtifactKind(
        name="toy", description=".toy (ONNX in a zip)", suffixes=(".toy",),
        runtime=f"{TOY_MODULE}:ToyRuntime", metadata=f"{TOY_MODULE}:read_metadata",
        imports=("onnxruntime",), threads=f"{TOY_MODULE}:thread_options",
        threads_via="toy: SessionOptions.intra_op_num_threads", providers=True,
        requires=("onnxruntime",)))
    target = register_target(Target(
        name="toy", aliases=("toybox",), suffix=".toy", is_folder=False,
        exporter=f"{TOY_MODULE}:export", requires=("tf2onnx", "onnx"),
        description="The end-to-end ONNX in a zip (a test target).", in_all=False))
    yield kind, target
    unregister_target("toy")
    unregister_kind("toy")
    sys.modules.pop(TOY_MODULE, None)


@pytest.fixture(scope="module")
def decisive_model_file(tmp_path_factory, make_decisive_tiny_model):
    """A tiny YOLOv8 with decisive scores (see `make_decisive_tiny_model`), saved."""
    model = make_decisive_tiny_model(class_names=["circle", "square", "triangle"])
    path = tmp_path_factory.mktemp("toy_model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from edgedet.data.synthetic import SyntheticShapes

    folder = tmp_path_factory.mktemp("toy_images")
    shapes = SyntheticShapes(num_images=3, image_size=((64, 96), (64, 128)), seed=3,
                             min_objects=1)
    for index in range(len(shapes)):
        Image.fromarray(shapes[index]["image"]).save(folder / f"img_{index}.png")
    return folder


def _detections(folder):
    return {p.stem: json.loads(p.read_text())["detections"]
            for p in sorted(folder.glob("img_*.json"))}


def test_a_toy_target_works_in_every_command(toy, decisive_model_file, image_dir, tmp_path):
    out = tmp_path / "out"
    result = run("export", "--model", decisive_model_file, "--target", "toybox", "--out", out,
                 "--no-parity")
    assert result.exit_code == 0, result.output
    artifact = out / "tiny.toy"
    import onnxruntime

    with pytest.raises(Exception):  # noqa: B017 - a zip: only the toy runtime opens it.
        onnxruntime.InferenceSession(str(artifact))

    result = run("info", artifact, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output[result.output.index("{"):])
    assert info["target"] == "toy" and info["class_names"] == ["circle", "square", "triangle"]

    assert run("predict", "--model", artifact, image_dir, "--out",
               tmp_path / "p_toy").exit_code == 0
    result = run("predict", "--model", decisive_model_file, image_dir, "--out", tmp_path / "p_ref")
    assert result.exit_code == 0, result.output
    got, expected = _detections(tmp_path / "p_toy"), _detections(tmp_path / "p_ref")
    assert sorted(got) == ["img_0", "img_1", "img_2"] and sum(map(len, expected.values())) > 0
    for name in expected:
        assert len(got[name]) == len(expected[name]), name
        for mine, ref in zip(got[name], expected[name]):
            assert mine["class_name"] == ref["class_name"]
            np.testing.assert_allclose(mine["box"], ref["box"], atol=0.05)
            assert abs(mine["confidence"] - ref["confidence"]) < 1e-3

    report = tmp_path / "parity"
    result = run("parity", "--model", decisive_model_file, artifact, "--images", image_dir,
                 "--out", report)
    assert result.exit_code == 0, result.output
    parity = json.loads((report / "parity.json").read_text())
    assert parity["passed"] is True
    (entry,) = parity["artifacts"]
    assert entry["target"] == "toy" and entry["status"] == "passed"
    assert entry["summary"]["matched"] > 0

    bench = tmp_path / "bench"
    result = run("benchmark", artifact, "--images", image_dir, "--batch", "1,2", "--runs", "2",
                 "--warmup", "0", "--threads", "1", "--out", bench)
    assert result.exit_code == 0, result.output
    (measured,) = json.loads((bench / "benchmark.json").read_text())["results"]
    assert measured["error"] is None, measured["error"]
    assert measured["runtime"] == "toy" and measured["target"] == "toy"
    assert measured["threads"]["applied_via"] == "toy: SessionOptions.intra_op_num_threads"
    assert measured["execution_providers"] == ["CPUExecutionProvider"]
    assert [b["batch_size"] for b in measured["batches"]] == [1, 2]
    assert all(b["latency_ms"]["median"] > 0 for b in measured["batches"])
    assert "toy runtime runs the end-to-end graph" in measured["stages_reason"]


def test_rows_are_checked_and_removed(toy):
    from edgedet.exporters.registry import get_target, register_target
    from edgedet.runtimes.kinds import ArtifactKind, get_kind, register_kind, unregister_kind
    from edgedet.runtimes.registry import find_kind

    kind, target = toy
    assert get_target("toybox") is target and find_kind("x/model.TOY") is kind
    with pytest.raises(ValueError, match="already registered"):
        register_kind(kind)
    with pytest.raises(ValueError, match=r"\['\.onnx'\] already belong to 'onnx'"):
        register_kind(ArtifactKind(name="onnx2", description="x", suffixes=(".onnx",),
                                   runtime="m:C"))
    with pytest.raises(ValueError, match="'module:attribute'"):
        ArtifactKind(name="bad", description="x", suffixes=(".bad",), runtime="no_colon")
    with pytest.raises(ValueError, match=r"\['toy', 'toybox'\] already name a target"):
        register_target(target)
    with pytest.raises(ValueError, match="No artifact kind 'onnx' was added"):
        unregister_kind("onnx")
    assert ArtifactKind.from_dict(json.loads(json.dumps(kind.to_dict()))) == kind
    assert get_kind("toy") is kind
