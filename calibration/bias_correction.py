"""Bias correction of the S8S8 (TensorRT) Q/DQ model: the raw head's means back to FP32's.

Rounding the body's weights and activations, and clipping them to their
ranges, moves the mean of what the head's output convolutions compute: the
class logits (so the scores near the confidence threshold cross it) and the
box-distribution logits. The S8S8 flavour feels it most: its activations are
symmetric (TensorRT's rule), so a SiLU output gets about 7 bits of its 8.
The empirical bias correction (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", 2019, section 4.2; NNCF does it
for OpenVINO IRs) measures each output channel's mean on calibration images
in the FP32 model and in the quantized one, and takes the difference off the
convolution's bias.

Only the head's output convolutions are corrected. They read the body and
feed no other convolution, so one pass measures them all. Correcting every
body convolution as well (one pass per depth, each matching its own FP32
mean) made the YOLOv8n of docs/benchmarks.md worse at conf 0.25 (0.61 pt
mAP50-95 lost instead of 0.18; head only: -0.03): a hidden layer's mean is
not what a SiLU after it needs.

TensorRT keeps the S8S8 model's biases float (`qdq.TENSORRT_OPTIONS`), so the
correction changes float initializers only: the Q/DQ placement, scales and
weights stay, and the model passes the TensorRT lint as before.

Written here, not taken from a library: ONNX Runtime's quantizer has no bias
correction, and NNCF's runs inside its own `quantize`, which places Q/DQ the
OpenVINO way (on Add, Concat, ...), not TensorRT's.

Example:

```python
from edgedet.calibration.bias_correction import correct_biases

corrected, facts = correct_biases(fp32_model, s8s8_model, body, feeds)
facts  # {"images": 128, "convolutions": 6}
```
"""

import copy

import numpy as np

# Images the means are taken on (the first of the calibration set): a mean
# needs fewer images than a range, and each costs one inference per model.
IMAGES = 128


def output_means(model, convs, feeds):
    """Per-channel means of each of `convs`' (node names) outputs, averaged over `feeds`."""
    import onnx
    import onnxruntime as ort

    probe = copy.deepcopy(model)
    outputs = {n.name: n.output[0] for n in probe.graph.node}
    names = [outputs[c] for c in convs]
    present = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    sums = [0.0] * len(names)
    for feed in feeds:
        for index, value in enumerate(session.run(names, feed)):
            sums[index] = sums[index] + value.mean(axis=(0, 2, 3), dtype=np.float64)
    return [s / len(feeds) for s in sums]


def correct_biases(reference, quantized, body, feeds, progress=None):
    """Returns a copy of `quantized` whose head output convolutions' biases are corrected.

    A head convolution without a bias (tf2onnx leaves some unfused) gets one;
    a bias two convolutions share is copied first.

    Args:
        reference: `onnx.ModelProto`. The FP32 end-to-end model.
        quantized: `onnx.ModelProto`. Its S8S8 Q/DQ model (float biases);
            not modified.
        body: `edgedet.calibration.body.Body` of `reference`.
        feeds: list of `{input_name: uint8 [1, H, W, 3]}` (calibration images).
        progress: callable or None. Called with one message.

    Returns:
        `(model, facts)`: the corrected copy and `{"images", "convolutions"}`.

    Raises:
        ValueError: no images, or a bias that is not a float initializer
            (a quantized head's are int32).
    """
    from edgedet.calibration.body import head_output_convs

    if not feeds:
        raise ValueError("Bias correction needs at least one calibration image.")
    model = copy.deepcopy(quantized)
    convs = head_output_convs(model, body)
    _check_biases(model, convs)
    if progress:
        progress(f"bias correction of {len(convs)} head convolutions on {len(feeds)} images")
    moves = [mean - target for mean, target in zip(output_means(model, convs, feeds),
                                                    output_means(reference, convs, feeds))]
    _subtract_from_biases(model, convs, moves)
    return model, {"images": len(feeds), "convolutions": len(convs)}


def _check_biases(model, convs):
    """Raises ValueError when one of `convs` has a bias that is not a float initializer."""
    from onnx import TensorProto

    initializers = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    for conv in (nodes[c] for c in convs):
        name = conv.input[2] if len(conv.input) > 2 else ""
        if name and (name not in initializers
                     or initializers[name].data_type != TensorProto.FLOAT):
            raise ValueError(f"The bias '{name}' of convolution '{conv.name}' is not a float "
                             "initializer: bias correction needs the S8S8 flavour (float biases).")


def _subtract_from_biases(model, convs, moves):
    """Gives each of `convs` a bias of its own (copied if shared, zeros if none) less its move."""
    from onnx import numpy_helper

    initializers = {i.name: i for i in model.graph.initializer}
    readers = {}
    for node in model.graph.node:
        for name in set(node.input):
            readers[name] = readers.get(name, 0) + 1
    nodes = {n.name: n for n in model.graph.node}
    for conv, move in zip((nodes[c] for c in convs), moves):
        name = conv.input[2] if len(conv.input) > 2 else ""
        bias = numpy_helper.to_array(initializers[name]) if name else np.zeros(move.shape)
        value = (bias.astype(np.float64) - move).astype(np.float32)
        if name and readers[name] == 1:
            initializers[name].CopyFrom(numpy_helper.from_array(value, name))
            continue
        if name:
            readers[name] -= 1
        own = f"{conv.name}/corrected_bias"
        model.graph.initializer.append(numpy_helper.from_array(value, own))
        if len(conv.input) > 2:
            conv.input[2] = own
        else:
            conv.input.append(own)
