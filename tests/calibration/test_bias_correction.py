"""Bias correction of the S8S8 model: class logits' means back to FP32's, only those biases move."""

import types

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgedet.calibration.bias_correction import correct_biases, output_means
from edgedet.calibration.body import find_body, head_output_convs
from edgedet.calibration.qdq import quantize


@pytest.fixture(scope="module")
def corrected(fp32_onnx, ranges, calib_data):
    reference = onnx.load(str(fp32_onnx))
    body = find_body(reference)
    raw = quantize(reference, ranges, flavour="s8s8", body=body)
    feeds = list(calib_data)
    model, facts = correct_biases(reference, raw, body, feeds)
    return types.SimpleNamespace(reference=reference, body=body, raw=raw, model=model,
                                 facts=facts, feeds=feeds,
                                 convs=head_output_convs(raw, body, branch="class"))


def _worst_move(model, c):
    target = output_means(c.reference, c.convs, c.feeds)
    return max(float(np.abs(m - t).max())
               for m, t in zip(output_means(model, c.convs, c.feeds), target))


def test_the_class_output_means_come_back_to_fp32(corrected):
    c = corrected
    assert len(c.convs) == 3 and set(c.convs) < set(c.body.float_head)
    assert all("_class_3_conv" in name for name in c.convs)
    before, after = _worst_move(c.raw, c), _worst_move(c.model, c)
    assert before > 1e-3
    assert after < 1e-5 + 1e-3 * before, (before, after)  # exact: the bias is float
    assert c.facts == {"images": len(c.feeds), "convolutions": 3}


def test_only_the_class_biases_move(corrected):
    c = corrected
    assert [(n.op_type, list(n.input), list(n.output)) for n in c.model.graph.node] == [
        (n.op_type, list(n.input), list(n.output)) for n in c.raw.graph.node]
    nodes = {n.name: n for n in c.model.graph.node}
    biases = {nodes[name].input[2] for name in c.convs}
    before = {i.name: numpy_helper.to_array(i) for i in c.raw.graph.initializer}
    moved = []
    for init in c.model.graph.initializer:
        value = numpy_helper.to_array(init)
        assert value.dtype == before[init.name].dtype and value.shape == before[init.name].shape
        if not np.array_equal(value, before[init.name]):
            moved.append(init.name)
    assert set(moved) == biases


def test_a_shared_bias_is_copied_then_corrected(corrected):
    c = corrected
    shared = onnx.ModelProto()
    shared.CopyFrom(c.raw)
    nodes = {n.name: n for n in shared.graph.node}
    pair = list(c.convs[:2])
    nodes[pair[1]].input[2] = nodes[pair[0]].input[2]  # Two class convolutions share a bias.
    fixed, _ = correct_biases(c.reference, shared, c.body, c.feeds)
    fixed_nodes = {n.name: n for n in fixed.graph.node}
    assert fixed_nodes[pair[0]].input[2] != fixed_nodes[pair[1]].input[2]
    target = output_means(c.reference, pair, c.feeds)
    for mean, want in zip(output_means(fixed, pair, c.feeds), target):
        np.testing.assert_allclose(mean, want, atol=1e-3)


def _bias_to_add(model, conv_name):
    """A copy of `model` whose `conv_name` has no bias: an Add after it adds it (tf2onnx's
    unfused form)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    conv = next(n for n in bare.graph.node if n.name == conv_name)
    bias = next(i for i in bare.graph.initializer if i.name == conv.input[2])
    value = numpy_helper.to_array(bias)
    del conv.input[2]
    out = conv.output[0]
    conv.output[0] = out + "/no_bias"
    add = onnx.helper.make_node("Add", [conv.output[0], "bias_after"], [out], name="bias_after")
    nodes = list(bare.graph.node)
    at = [n.name for n in nodes].index(conv.name) + 1
    del bare.graph.node[:]
    bare.graph.node.extend([*nodes[:at], add, *nodes[at:]])
    bare.graph.initializer.append(numpy_helper.from_array(value.reshape(1, -1, 1, 1),
                                                          "bias_after"))
    onnx.checker.check_model(bare)
    return bare


def test_a_head_conv_without_bias_gets_one(corrected):
    c = corrected
    name = c.convs[0]
    reference, bare = _bias_to_add(c.reference, name), _bias_to_add(c.raw, name)
    fixed, facts = correct_biases(reference, bare, c.body, c.feeds)
    conv = next(n for n in fixed.graph.node if n.name == name)
    assert len(conv.input) == 3 and conv.input[2] and facts["convolutions"] == 3
    [want] = output_means(reference, [name], c.feeds)
    [before] = output_means(bare, [name], c.feeds)
    [after] = output_means(fixed, [name], c.feeds)
    assert np.abs(before - want).max() > 1e-3
    np.testing.assert_allclose(after, want, atol=1e-4)


def test_the_pipeline_takes_the_first_images_only(fp32_onnx, calib_data, monkeypatch):
    from edgedet.calibration import bias_correction
    from edgedet.calibration.pipeline import Int8Pipeline

    monkeypatch.setattr(bias_correction, "MEAN_IMAGES", 2)
    pipeline = Int8Pipeline(onnx.load(str(fp32_onnx)), calib_data, method="minmax")
    metadata = _quantization(pipeline.qdq("s8s8"))
    assert metadata["bias_correction"] == {"images": 2, "convolutions": 3}


def _quantization(model):
    from edgedet.metadata import METADATA_KEY, ArtifactMetadata

    (text,) = [p.value for p in model.metadata_props if p.key == METADATA_KEY]
    return ArtifactMetadata.from_json(text).extra["quantization"]


def test_int32_biases_are_refused(fp32_onnx, calib_data):
    from edgedet.calibration.qdq import collect_ranges

    reference = onnx.load(str(fp32_onnx))
    body = find_body(reference, quantize_head=True)
    ranges = collect_ranges(reference, calib_data, method="minmax", body=body)
    u8s8 = quantize(reference, ranges, flavour="u8s8", body=body)  # head quantized: int32 biases
    with pytest.raises(ValueError, match="not a float initializer"):
        correct_biases(reference, u8s8, body, list(calib_data)[:1])


def test_the_pipeline_corrects_s8s8_only_and_says_so(fp32_onnx, calib_data):
    from edgedet.calibration.pipeline import Int8Pipeline

    pipeline = Int8Pipeline(onnx.load(str(fp32_onnx)), calib_data, method="minmax")
    assert _quantization(pipeline.qdq("s8s8"))["bias_correction"] == {
        "images": len(calib_data), "convolutions": 3}
    assert "bias_correction" not in _quantization(pipeline.qdq("u8s8"))
