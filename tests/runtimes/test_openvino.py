"""The OpenVINO runtime and IR: precision (bf16 default, f32 forced), metadata, paths.

Float32 agreement with the Keras reference, every size and batch, is in
`test_parity.py` (OpenVINO is one of its targets when installed).
"""

import numpy as np
import pytest

from edgedet.exporters import openvino_export
from edgedet.files import OutputExistsError
from edgedet.metadata import MetadataError
from edgedet.runtimes import openvino_rt

pytest.importorskip("openvino",
                    reason="OpenVINO is not installed (pip install 'edgedet[openvino]')")


@pytest.fixture(scope="module")
def ir(debug_artifacts):
    return debug_artifacts["openvino"]


def _has_bf16():
    from edgedet.cpu import cpu_flags

    flags = set(cpu_flags())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def test_default_precision_is_openvinos_and_is_recorded(ir, reference, images, monkeypatch):
    from edgedet.boxes import compute_iou
    from edgedet.runtimes.registry import open_runtime

    monkeypatch.delenv(openvino_rt.PRECISION_ENV, raising=False)
    batch = images["640x480"]
    with open_runtime(ir) as runtime:
        assert runtime.kind == "openvino"
        assert runtime.inference_precision == ("bf16" if _has_bf16() else "fp32")
        got = runtime.predict(batch)
    want = reference.predict(batch)
    for g, w in zip(got, want):  # bf16: same objects, not the same bits.
        assert abs(len(g) - len(w)) <= max(1, len(w) // 10)
        iou = compute_iou(w.boxes, g.boxes)
        same_class = w.classes[:, None] == g.classes[None, :]
        assert ((iou * same_class).max(axis=1) >= 0.5).mean() >= 0.9


def test_f32_is_forced_by_argument_or_environment(ir, monkeypatch):
    monkeypatch.delenv(openvino_rt.PRECISION_ENV, raising=False)
    with openvino_rt.OpenVINORuntime(ir, precision="fp32", threads=1) as runtime:
        assert runtime.compile_config()["INFERENCE_PRECISION_HINT"] == "f32"
        assert runtime.compile_config()["INFERENCE_NUM_THREADS"] == 1
        assert runtime.inference_precision == "fp32"
    monkeypatch.setenv(openvino_rt.PRECISION_ENV, "f32")
    with openvino_rt.OpenVINORuntime(ir) as runtime:
        assert runtime.inference_precision == "fp32"


def test_bad_precision_names_where_it_came_from(monkeypatch):
    with pytest.raises(ValueError, match="precision 'int4'.*'bf16'"):
        openvino_rt.requested_precision("int4")
    monkeypatch.setenv(openvino_rt.PRECISION_ENV, "double")
    with pytest.raises(ValueError, match="EDGEDET_OPENVINO_PRECISION 'double'"):
        openvino_rt.OpenVINORuntime("model.xml")
    monkeypatch.setenv(openvino_rt.PRECISION_ENV, "")
    assert openvino_rt.requested_precision() is None


def test_metadata_and_info_need_no_openvino(ir):
    import subprocess
    import sys

    code = ("import sys\nfrom edgedet.runtimes.registry import read_metadata\n"
            f"m = read_metadata({str(ir)!r})\n"
            "print(m.target, list(m.class_names), 'openvino' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "openvino ['cat', 'dog', 'bird'] False"


def test_unreadable_metadata_is_explained(tmp_path):
    cases = {"broken.xml": "<net><layers>", "other.xml": "<svg></svg>",
             "bare.xml": "<net><rt_info></rt_info></net>"}
    messages = {"broken.xml": "not an OpenVINO IR", "other.xml": "root element <svg>",
                "bare.xml": "has no edgedet metadata"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(MetadataError, match=messages[name]):
            openvino_rt.read_metadata(tmp_path / name)


def test_ir_paths_are_checked(tmp_path):
    with pytest.raises(ValueError, match="'.xml' file"):
        openvino_export.check_paths(tmp_path / "model.onnx", force=False)
    (tmp_path / "model.bin").write_bytes(b"old weights")
    with pytest.raises(OutputExistsError):
        openvino_export.check_paths(tmp_path / "model.xml", force=False)
    xml, weights = openvino_export.check_paths(tmp_path / "model.xml", force=True)
    assert (xml.name, weights.name) == ("model.xml", "model.bin")


def test_outputs_are_the_contracts(ir, images):
    with openvino_rt.OpenVINORuntime(ir, precision="f32") as runtime:
        outputs = runtime.infer(images["17x23"][:2])
    assert outputs["num_detections"].dtype == np.int32 and outputs["num_detections"].shape == (2,)
    assert outputs["classes"].dtype == np.int32


def test_int8_keeps_the_head_outputs_and_named_blocks_float(ir):
    import openvino as ov

    from edgedet.exporters.openvino_int8 import float_convolutions

    model = ov.Core().read_model(str(ir))
    head = float_convolutions(model)
    assert len(head) == 6 and all("_3_conv" in name for name in head)
    kept = float_convolutions(model, float_blocks=("stack2_c2f_pre",))
    extra = [name for name in kept if name not in head]
    assert 1 <= len(extra) <= 2, extra  # The block's conv (and a fused BN's), nothing else.
    assert float_convolutions(model, quantize_head=True) == []


def test_int8_quantizes_through_the_upsamples_but_not_the_letterbox_resize(ir):
    import openvino as ov

    from edgedet.exporters.openvino_int8 import float_ops

    model = ov.Core().read_model(str(ir))
    kept = set(float_ops(model))
    modes = {op.get_friendly_name(): op.get_attributes()["mode"]
             for op in model.get_ordered_ops() if op.get_type_name() == "Interpolate"}
    assert sorted(modes.values()) == ["linear_onnx", "nearest", "nearest"]
    assert {name for name, mode in modes.items() if name in kept} == {
        name for name, mode in modes.items() if mode == "linear_onnx"}


def test_a_repeated_shape_gets_a_static_model_with_the_same_outputs(ir, images, monkeypatch):
    monkeypatch.setattr(openvino_rt, "STATIC_CACHE", 1)
    small, other = images["17x23"][:1], images["640x480"][:1]
    with openvino_rt.OpenVINORuntime(ir, precision="f32") as runtime:
        dynamic = runtime.infer(small)
        assert runtime._static == {}  # Seen once: the dynamic model ran.
        static = runtime.infer(small)
        assert list(runtime._static) == [small.shape]
        for name, value in dynamic.items():
            np.testing.assert_allclose(static[name], value, atol=1e-3, err_msg=name)
        runtime.infer(other), runtime.infer(other)
        assert list(runtime._static) == [other.shape]  # STATIC_CACHE 1: the older one went.
    with openvino_rt.OpenVINORuntime(ir, precision="f32", static_shapes=False) as runtime:
        runtime.infer(small), runtime.infer(small)
        assert runtime._static == {}
