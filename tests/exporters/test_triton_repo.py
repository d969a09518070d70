"""The Triton model repository: configs parsed with Triton's own schema, files, safety.

No server here (see tests/serving/test_triton_server.py). The ONNX given to
the writer is a one-node model carrying real edgedet metadata: a config
depends only on that metadata, so no TensorFlow conversion is needed.
"""

import json

import pytest
from click.testing import CliRunner

from edgedet.config import InferenceConfig, NMSConfig
from edgedet.exporters.triton_repo import (
    RepoOptions,
    engine_model_config,
    onnx_model_config,
    write_repository,
)
from edgedet.files import OutputExistsError
from edgedet.metadata import ArtifactMetadata, MetadataError

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2",
    reason="tritonclient[grpc] is not installed (pip install 'edgedet[triton]')")

CLASS_NAMES = ("person", 'say "cheese"', "café\\bar")
OUTPUTS = ["boxes", "confidence", "classes", "num_detections"]


def _metadata(max_det=37):
    config = InferenceConfig(nms=NMSConfig(max_detections=max_det, confidence_threshold=0.3))
    return ArtifactMetadata(class_names=CLASS_NAMES, inference=config, target="onnx",
                            source_sha256="ab" * 32)


def _onnx(path, metadata=None):
    """A tiny valid ONNX (Identity) with edgedet metadata (or none)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["b", "h", "w", 3])],
        [helper.make_tensor_value_info("out", TensorProto.UINT8, ["b", "h", "w", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if metadata is not None:
        helper.set_model_props(model, {"edgedet": metadata.to_json()})
    onnx.save(model, str(path))
    return path


def parse(text):
    """Parses config text with Triton's ModelConfig schema (unknown fields raise)."""
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _parameters(config):
    return {key: value.string_value for key, value in config.parameters.items()}


def test_onnxruntime_config_follows_the_contract():
    config = parse(onnx_model_config("det", _metadata(), RepoOptions(max_batch_size=6)))
    assert config.name == "det" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 6
    (images,) = config.input
    assert images.name == "images"
    assert images.data_type == model_config_pb2.TYPE_UINT8
    assert list(images.dims) == [-1, -1, 3]
    outputs = {o.name: o for o in config.output}
    assert list(outputs) == OUTPUTS
    assert list(outputs["boxes"].dims) == [37, 4]
    assert list(outputs["confidence"].dims) == [37] and list(outputs["classes"].dims) == [37]
    assert (outputs["boxes"].data_type == outputs["confidence"].data_type
            == model_config_pb2.TYPE_FP32)
    assert outputs["classes"].data_type == model_config_pb2.TYPE_INT32
    detections = outputs["num_detections"]
    assert detections.data_type == model_config_pb2.TYPE_INT32
    assert list(detections.dims) == [1] and detections.HasField("reshape")
    assert list(detections.reshape.shape) == []  # the model's [B] output
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    (group,) = config.instance_group
    assert group.count == 1 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1
    assert list(warmup.inputs["images"].dims) == [480, 640, 3] and warmup.inputs["images"].zero_data
    assert not config.optimization.HasField("execution_accelerators")


def test_explicit_batch_config():
    config = parse(onnx_model_config("det", _metadata(), RepoOptions(max_batch_size=0)))
    assert config.max_batch_size == 0
    assert list(config.input[0].dims) == [-1, -1, -1, 3]
    dims = {o.name: list(o.dims) for o in config.output}
    assert dims == {"boxes": [-1, 37, 4], "confidence": [-1, 37], "classes": [-1, 37],
                    "num_detections": [-1]}
    assert not any(o.HasField("reshape") for o in config.output)
    assert not config.HasField("dynamic_batching")  # Triton forbids it without max_batch_size
    assert list(config.model_warmup[0].inputs["images"].dims) == [1, 480, 640, 3]
    engine = parse(engine_model_config("det_trt", _sidecar(min_batch=2),
                                       RepoOptions(max_batch_size=0)))
    assert engine.max_batch_size == 0 and list(engine.input[0].dims) == [-1, -1, -1, 3]


def test_metadata_and_class_names_travel_as_parameters():
    parameters = _parameters(parse(onnx_model_config("det", _metadata(), RepoOptions())))
    assert json.loads(parameters["class_names"]) == list(CLASS_NAMES)
    served = ArtifactMetadata.from_json(parameters["edgedet"])
    assert served.class_names == CLASS_NAMES  # quotes, backslash and UTF-8 survive escaping
    assert served.inference == _metadata().inference
    assert served.target == "triton"
    assert served.extra["triton"] == {"backend": "onnxruntime", "accelerator": None}


def test_gpu_flavours():
    cuda = parse(onnx_model_config("det", _metadata(),
                                   RepoOptions(accelerator="cuda", instances=2)))
    (group,) = cuda.instance_group
    assert group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU and group.count == 2
    assert not cuda.optimization.HasField("execution_accelerators")
    trt = parse(onnx_model_config(
        "det", _metadata(), RepoOptions(accelerator="tensorrt", fp16=True,
                                        preferred_batch_sizes=(4, 8), queue_delay_us=500)))
    (accelerator,) = trt.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"
    assert list(trt.dynamic_batching.preferred_batch_size) == [4, 8]
    assert trt.dynamic_batching.max_queue_delay_microseconds == 500


def test_python_backend_config():
    config = parse(onnx_model_config(
        "det", _metadata(), RepoOptions(backend="python", intra_op_threads=2,
                                        warmup_sizes=((64, 96), (32, 32)))))
    assert config.backend == "python" and not config.platform
    assert _parameters(config)["intra_op_threads"] == "2"
    assert ([list(w.inputs["images"].dims) for w in config.model_warmup]
            == [[64, 96, 3], [32, 32, 3]])


def _sidecar(min_batch=1, max_batch=4, input_dtype="uint8"):
    metadata = _metadata()
    facts = {"version": "10.3.0", "input_dtype": input_dtype,
             "profile": {"min": [min_batch, 32, 32], "opt": [2, 720, 1280],
                         "max": [max_batch, 2160, 3840]}}
    return {**metadata.to_dict(), "target": "trt", "extra": {"tensorrt": facts}}


def test_engine_config_from_the_sidecar():
    config = parse(engine_model_config("det_trt", _sidecar(max_batch=4), RepoOptions()))
    assert config.platform == "tensorrt_plan"
    assert config.max_batch_size == 4  # the profile's largest batch caps the default 8
    assert config.input[0].data_type == model_config_pb2.TYPE_UINT8
    assert [o.name for o in config.output] == OUTPUTS
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert list(config.model_warmup[0].inputs["images"].dims) == [720, 1280, 3]
    assert ArtifactMetadata.from_json(_parameters(config)["edgedet"]).target == "triton"
    trt8 = parse(engine_model_config("det_trt", _sidecar(input_dtype="float32"), RepoOptions()))
    assert trt8.input[0].data_type == model_config_pb2.TYPE_FP32
    assert trt8.model_warmup[0].inputs["images"].data_type == model_config_pb2.TYPE_FP32


def test_engine_config_refusals():
    with pytest.raises(ValueError, match="batch 2.*--trt-shapes"):
        engine_model_config("det_trt", _sidecar(min_batch=2), RepoOptions())
    sidecar = _sidecar()
    del sidecar["extra"]["tensorrt"]["profile"]
    with pytest.raises(ValueError, match="no TensorRT profile"):
        engine_model_config("det_trt", sidecar, RepoOptions())


@pytest.mark.parametrize("options, message", [
    ({"max_batch_size": -1}, "max_batch_size: -1"),
    ({"instances": 0}, "instances: 0"),
    ({"backend": "tensorflow"}, "backend 'tensorflow'"),
    ({"accelerator": "openvino"}, "accelerator 'openvino'"),
    ({"fp16": True}, "fp16 applies to the TensorRT accelerator"),
    ({"preferred_batch_sizes": (16,)}, "preferred batch sizes"),
    ({"warmup_sizes": ((0, 10),)}, "warm-up sizes"),
])
def test_invalid_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        RepoOptions(**options)


def test_repository_files(tmp_path):
    onnx_path = _onnx(tmp_path / "shapes.onnx", _metadata())
    engine = tmp_path / "shapes.engine"
    engine.write_bytes(b"plan bytes")
    (tmp_path / "shapes.engine.json").write_text(json.dumps(_sidecar()))
    repo = write_repository(onnx_path, tmp_path / "repo", engine=engine)
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    # Triton loads each sub-folder as a model; edgedet's ownership marker is a file beside them.
    assert files == [".edgedet-output.json", "shapes/1/model.onnx", "shapes/config.pbtxt",
                     "shapes_trt/1/model.plan", "shapes_trt/config.pbtxt"]
    assert (repo / "shapes/1/model.onnx").read_bytes() == onnx_path.read_bytes()
    assert (repo / "shapes_trt/1/model.plan").read_bytes() == b"plan bytes"
    for name in ("shapes", "shapes_trt"):
        assert parse((repo / name / "config.pbtxt").read_text()).name == name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left"

    python_repo = write_repository(onnx_path, tmp_path / "py", name="det",
                                   options=RepoOptions(backend="python"))
    model_py = (python_repo / "det/1/model.py").read_text()
    assert "class TritonPythonModel" in model_py and "from_dlpack" in model_py


def test_repository_is_never_overwritten_without_force(tmp_path):
    onnx_path = _onnx(tmp_path / "a.onnx", _metadata())
    repo = write_repository(onnx_path, tmp_path / "repo")
    config = repo / "a" / "config.pbtxt"
    config.write_text("edited")
    with pytest.raises(OutputExistsError, match="already exists.*--force"):
        write_repository(onnx_path, repo)
    assert config.read_text() == "edited"
    write_repository(onnx_path, repo, force=True)
    assert parse(config.read_text()).name == "a"


def test_bad_sources_write_nothing(tmp_path):
    with pytest.raises(MetadataError, match="no edgedet metadata"):
        write_repository(_onnx(tmp_path / "plain.onnx"), tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        write_repository(tmp_path / "missing.onnx", tmp_path / "repo")
    onnx_path = _onnx(tmp_path / "a.onnx", _metadata())
    engine = tmp_path / "a.engine"
    engine.write_bytes(b"x")
    with pytest.raises(MetadataError, match="no sidecar"):
        write_repository(onnx_path, tmp_path / "repo", engine=engine)
    assert not (tmp_path / "repo").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_registry_keeps_triton_out_of_all():
    from edgedet.exporters.registry import buildable_targets, get_target

    target = get_target("tritonserver")
    assert target.name == "triton" and target.is_folder
    assert target.artifact_name("shapes") == "shapes_triton"
    assert "triton" not in [t.name for t in buildable_targets()]


def test_runtime_registry_opens_the_repository_onnx(tmp_path):
    from edgedet.runtimes.registry import read_metadata, runtime_kind

    repo = write_repository(_onnx(tmp_path / "a.onnx", _metadata()), tmp_path / "repo")
    assert runtime_kind(repo) == "onnx"
    assert read_metadata(repo) == _metadata()


def test_cli_repo_command(tmp_path):
    from edgedet.cli.main import cli

    onnx_path = _onnx(tmp_path / "a.onnx", _metadata())
    out = tmp_path / "repo"
    args = ["triton", "repo", str(onnx_path), "--out", str(out), "--backend", "python",
            "--accelerator", "cuda", "--max-batch", "3", "--warmup", "64x48"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "model 'a'" in result.output and "tritonserver --model-repository" in result.output
    config = parse((out / "a" / "config.pbtxt").read_text())
    assert config.backend == "python" and config.max_batch_size == 3
    assert list(config.model_warmup[0].inputs["images"].dims) == [64, 48, 3]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = CliRunner().invoke(cli, [*args[:-1], "64by48", "--force"])
    assert bad.exit_code == 2 and "expected HxW" in bad.output


def test_registry_lists_every_repository_option():
    import dataclasses

    from edgedet.exporters.registry import get_target
    from edgedet.exporters.triton_repo import RepoOptions

    fields = [f.name for f in dataclasses.fields(RepoOptions)]
    assert get_target("triton").options == ("engine", *fields)


def test_info_reads_a_repository_folder(tmp_path):
    """`edgedet info` knows a repository as an artifact (the runtime registry's rule)."""
    from click.testing import CliRunner

    from edgedet.cli.info import info_command

    repo = write_repository(_onnx(tmp_path / "shapes.onnx", _metadata()), tmp_path / "repo")
    result = CliRunner().invoke(info_command, [str(repo), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["class_names"] == list(CLASS_NAMES)
