"""The target table: names, aliases, typos, what this machine can build."""

import importlib.util

import pytest

from edgedet.exporters.registry import (
    buildable_targets,
    get_target,
    resolve_targets,
    skipped_targets,
    target_names,
)


def test_names_and_aliases():
    assert target_names() == ["savedmodel", "onnx", "tflite", "openvino", "trt", "triton"]
    assert get_target("saved_model").name == "savedmodel"
    assert get_target("TF").name == "savedmodel"
    assert get_target("litert").name == "tflite"
    assert get_target(" ONNX ").name == "onnx"
    assert get_target("tensorrt").name == "trt"


# OpenVINO is buildable where the `openvino` extra is installed.
OPENVINO = ["openvino"] if importlib.util.find_spec("openvino") else []


def test_artifact_names():
    assert get_target("savedmodel").artifact_name("yolo") == "yolo_saved_model"
    assert get_target("savedmodel").is_folder
    assert get_target("onnx").artifact_name("yolo") == "yolo.onnx"
    assert get_target("tflite").artifact_name("yolo") == "yolo.tflite"
    assert get_target("trt").artifact_name("yolo") == "yolo.engine"
    assert get_target("ov").artifact_name("yolo") == "yolo.xml"


@pytest.mark.parametrize("typo, suggestion", [("onxx", "onnx"), ("tflit", "tflite"),
                                              ("savedmodle", "savedmodel")])
def test_typo_suggests_the_closest_target(typo, suggestion):
    with pytest.raises(ValueError,
                       match=rf"Unknown export target '{typo}'.*Did you mean '{suggestion}'"):
        get_target(typo)


def test_trt_is_listed_but_not_buildable_without_a_gpu(monkeypatch):
    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    trt = get_target("trt")
    assert trt.needs_gpu and "tensorrt" in trt.requires
    assert [t.name for t in buildable_targets()] == ["savedmodel", "onnx", "tflite"] + OPENVINO
    assert [(t.name, bool(reason)) for t, reason in skipped_targets()] == (
        [] if OPENVINO else [("openvino", True)]) + [("trt", True)]
    with pytest.raises(ValueError, match="'trt' cannot be built on this machine"):
        resolve_targets(["trt"])


def test_gpu_requirement_is_reported(monkeypatch):
    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    assert "needs an NVIDIA GPU" in get_target("trt").unavailable_reason()
    assert get_target("onnx").unavailable_reason() is None


def test_resolve_targets(monkeypatch):
    monkeypatch.setattr("edgedet.cuda.has_nvidia_gpu", lambda: False)
    names = [t.name for t in resolve_targets(["tflite", "all", "litert"])]
    assert names == ["tflite", "savedmodel", "onnx"] + OPENVINO
    assert [t.name for t in resolve_targets("onnx")] == ["onnx"]
    with pytest.raises(ValueError, match="No export target"):
        resolve_targets([" "])


def test_exporters_load_lazily():
    from edgedet.exporters import onnx_export

    assert get_target("onnx").load_exporter() is onnx_export.export


def test_cli_help_and_precisions_come_from_the_table():
    from edgedet.exporters.registry import (
        Target,
        precision_names,
        precisions_help,
        register_target,
        targets_help,
        unregister_target,
    )

    register_target(Target(name="toyrt", aliases=(), suffix=".toy", is_folder=False,
                           exporter="toy:export", precisions=("fp32", "int4"),
                           description="A toy runtime's file."))
    try:
        assert "toyrt: A toy runtime's file." in targets_help()
        assert precision_names()[-1] == "int4" and "int4: toyrt." in precisions_help()
    finally:
        unregister_target("toyrt")
    assert "openvino: OpenVINO IR" in targets_help() and "int4" not in precision_names()
    assert "int8: onnx, tflite, openvino, trt." in precisions_help()


def test_cli_target_options_reach_every_target():
    import click

    from edgedet.cli.export import _target_options

    assert _target_options(["onnx:opset=18", "ov:x= [1, 2]", "trt:dla_core=0"]) == {
        "onnx": {"opset": 18}, "openvino": {"x": [1, 2]}, "trt": {"dla_core": 0}}
    for bad, words in (("opset=18", "TARGET:KEY=VALUE"), ("onxx:opset=1", "Did you mean 'onnx'")):
        with pytest.raises(click.BadParameter, match=words):
            _target_options([bad])
