"""Bias correction of the S8S8 (TensorRT) Q/DQ model: the class logits' means back to FP32's.

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

Only the head's class output convolutions are corrected: they feed no other
convolution, so one pass over the images measures them all. Correcting the
body's convolutions too made a trained YOLOv8n worse at conf 0.25, and
correcting the box outputs as well made a trained YOLO26n's one-to-many head
worse (its box outputs are the distances themselves: a mean over every
anchor is not a box's) (docs/benchmarks.md, "The S8S8 model
bias-corrected").

TensorRT keeps the S8S8 model's biases float (`qdq.TENSORRT_OPTIONS`), so the
correction changes the class biases only (a shared one is copied first, a
missing one added): the Q/DQ placement, scales and weights stay, and the
model passes the TensorRT lint as before.

Written here, not taken from a library: ONNX Runtime's quantizer has no bias
correction, and NNCF's runs inside its own `quantize`, which places Q/DQ the
OpenVINO way (on Add, Concat, ...), not TensorRT's.

Example:

```python
from edgedet.calibration.bias_correction import correct_biases

corrected, facts = correct_biases(fp32_model, s8s8_model, body, feeds)
facts  # {"images": 128, "convolutions": 3}
```
"""

import copy

import numpy as np

# Images the means are taken on (the first of the calibration set): a mean
# needs fewer images than a range, and each costs one inference per model.
MEAN_IMAGES = 128


def output_means(model, convs, feeds):
    """Per-channel means of the outputs of `convs` (node names) over `feeds`.

    Args:
        model: `onnx.ModelProto`.
        convs: list of str. Convolution node names.
        feeds: iterable of `{input_name: array}`, one image each.

    Returns:
        A list of float64 arrays `[channels]`, one per convolution (the mean
        over the images of each image's mean).
    """
    return _means([model], convs, feeds)[0][0]


def _means(models, convs, feeds):
    """`(means of each model, images)`: `output_means` of `models`, going over `feeds` once."""
    import onnx
    import onnxruntime as ort

    sessions = []
    for model in models:
        probe = copy.deepcopy(model)
        outputs = {n.name: n.output[0] for n in probe.graph.node}
        names = [outputs[c] for c in convs]
        present = {o.name for o in probe.graph.output}
        probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
        sessions.append((ort.InferenceSession(probe.SerializeToString(),
                                              providers=["CPUExecutionProvider"]), names))
    sums = [[0.0] * len(convs) for _ in sessions]
    count = 0
    for feed in feeds:
        count += 1
        for (session, names), total in zip(sessions, sums):
            for index, value in enumerate(session.run(names, feed)):
                axes = (0, *range(2, value.ndim))  # all but the channels (NCHW)
                total[index] = total[index] + value.mean(axis=axes, dtype=np.float64)
    if not count:
        raise ValueError("Bias correction needs at least one calibration image.")
    return [[s / count for s in total] for total in sums], count


def correct_biases(reference, quantized, body, feeds, progress=None):
    """Returns a copy of `quantized` whose class output convolutions' biases are corrected.

    A head convolution without a bias (tf2onnx leaves some unfused) gets one;
    a bias two convolutions share is copied first.

    Args:
        reference: `onnx.ModelProto`. The FP32 end-to-end model.
        quantized: `onnx.ModelProto`. Its S8S8 Q/DQ model (float biases);
            not modified.
        body: `edgedet.calibration.body.Body` of `reference`.
        feeds: iterable of `{input_name: uint8 [1, H, W, 3]}` (calibration
            images), gone over once.
        progress: callable or None. Called with one message.

    Returns:
        `(model, facts)`: the corrected copy and `{"images", "convolutions"}`
        (both 0 when the body has no class output convolution).

    Raises:
        ValueError: no images, or a bias that is not a float initializer
            (a quantized head's are int32).
    """
    from edgedet.calibration.body import head_output_convs

    model = copy.deepcopy(quantized)
    convs = list(head_output_convs(model, body, branch="class"))
    if not convs:
        return model, {"images": 0, "convolutions": 0}
    _check_biases(model, convs)
    if progress:
        progress(f"bias correction of {len(convs)} class output convolutions")
    (measured, target), images = _means([model, reference], convs, feeds)
    _subtract_from_biases(model, convs, [m - t for m, t in zip(measured, target)])
    return model, {"images": images, "convolutions": len(convs)}


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
