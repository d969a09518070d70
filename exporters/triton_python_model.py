"""Triton Python-backend model that runs an edgedet ONNX artifact with ONNX Runtime.

This file is not imported by edgedet: `edgedet.exporters.triton_repo` copies
it into a model repository as `<model>/1/model.py`, next to `model.onnx`,
for servers without Triton's ONNX Runtime backend (the `tritonserver`
bundled with the `nvidia-pytriton` wheel has only the Python backend). It
needs only numpy and onnxruntime in the server's Python environment.

Tensors cross the backend through DLPack rather than `Tensor.as_numpy()` /
`Tensor(name, array)`: the Python-backend stubs built against NumPy 1 read
NumPy 2 arrays' dtype descriptors at the old offsets and return garbage
(measured with the stub bundled in nvidia-pytriton 0.7.0 and NumPy 2.4).
DLPack works with both NumPy generations.
"""

import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "confidence", "classes", "num_detections")
MAX_IMAGE_SIDE = 16384  # edgedet.end_to_end.MAX_IMAGE_SIDE


def _quiet_used_capsule_hook(default_hook):
    """Drops one known harmless message from the Python-backend stub.

    The stub renames a consumed DLPack capsule to "used_dlpack" (the DLPack
    spec says "used_dltensor"), so NumPy's capsule destructor reports
    "PyCapsule_GetPointer called with incorrect name" for every output. The
    stub frees the tensor itself, so nothing leaks; the message is noise.
    """

    def hook(unraisable):
        if "PyCapsule_GetPointer called with incorrect name" in str(unraisable.exc_value):
            return
        default_hook(unraisable)

    return hook


def _error(error):
    return pb_utils.InferenceResponse(
        output_tensors=[], error=pb_utils.TritonError(f"edgedet: {error}"))


class TritonPythonModel:
    """One ONNX Runtime session per model instance."""

    def initialize(self, args):
        import onnxruntime as ort

        sys.unraisablehook = _quiet_used_capsule_hook(sys.unraisablehook)
        config = json.loads(args["model_config"])
        parameters = {k: v.get("string_value") for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        threads = int(parameters.get("intra_op_threads") or 0)
        if threads > 0:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        if args.get("model_instance_kind") != "GPU":
            providers = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(path, sess_options=options, providers=providers)

    def execute(self, requests):
        """Runs the requests Triton batched together: one session run per image size."""
        responses = [None] * len(requests)
        groups = {}
        for index, request in enumerate(requests):
            try:
                images = np.ascontiguousarray(
                    np.from_dlpack(pb_utils.get_input_tensor_by_name(request, INPUT_NAME))
                )
                height, width = images.shape[1:3]
                if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
                    raise ValueError(
                        f"Image size {height}x{width} is outside 1..{MAX_IMAGE_SIDE} pixels."
                    )
                groups.setdefault(images.shape[1:], []).append((index, images))
            except Exception as error:  # noqa: BLE001 - reported to the client.
                responses[index] = _error(error)
        for members in groups.values():
            try:
                batch = np.concatenate([images for _, images in members])
                values = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
            except Exception as error:  # noqa: BLE001
                for index, _ in members:
                    responses[index] = _error(error)
                continue
            start = 0
            for index, images in members:
                stop = start + len(images)
                tensors = [
                    pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(value[start:stop]))
                    for name, value in zip(OUTPUT_NAMES, values)
                ]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
                start = stop
        return responses

    def finalize(self):
        self.session = None
