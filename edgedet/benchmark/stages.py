"""Per-stage timing of the end-to-end graph, for the Keras reference.

The exported artifacts run letterbox, network, decode and NMS as one fused
call, so they cannot be split. The Keras reference can: each stage below is
the `EndToEnd` stage method that `edgedet.end_to_end.EndToEnd.serve` chains
(`letterbox_stage`, `network_stage`, `decode_stage`, `nms_stage`), wrapped in
its own `tf.function`, with tensors passed from one stage to the next.
Calling four functions costs a little more than the fused graph, so the
stage times add up to slightly more than the end-to-end latency.
"""

import time

from edgedet.benchmark.schema import STAGE_NAMES


def stage_functions(end_to_end):
    """The four stages of an `EndToEnd` module as separate `tf.function`s.

    Args:
        end_to_end: the module `edgedet.end_to_end.build_end_to_end` returns
            (a `KerasRuntime`'s `end_to_end`).

    Returns:
        A dict `{stage name: callable}` in `STAGE_NAMES` order; each callable
        takes the previous stage's outputs (a tuple), the first one a uint8
        `[B, H, W, 3]` batch.
    """
    import tensorflow as tf

    from edgedet.letterbox import LetterboxParams

    size = end_to_end.config.letterbox.size
    side = size if end_to_end.config.letterbox.shape == "square" else None  # rect: per image

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def letterbox_stage(images):
        pixels, params = end_to_end.letterbox_stage(images)
        # LetterboxParams is not a tf.nest structure: pass it on as one tensor.
        geometry = tf.stack([tf.cast(v, tf.int32) for v in (
            params.height, params.width, params.new_height, params.new_width,
            params.pad_top, params.pad_left)])
        return pixels, geometry

    @tf.function(input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32)])
    def network_stage(pixels):
        raw_boxes, raw_classes, _ = end_to_end.network_stage(pixels)
        return raw_boxes, raw_classes

    @tf.function
    def decode_stage(raw_boxes, raw_classes, body):
        # `split_outputs` checked that the boxes are 4 * reg_max wide.
        reg_max = int(raw_boxes.shape[-1]) // 4
        return end_to_end.decode_stage(raw_boxes, raw_classes, reg_max,
                                       None if side else (body[0], body[1]))

    @tf.function
    def nms_stage(boxes, scores, geometry):
        params = LetterboxParams(*tf.unstack(geometry))
        return end_to_end.nms_stage(boxes, scores, params)

    state = {}

    def run_letterbox(images):
        pixels, state["geometry"] = letterbox_stage(images)
        state["body"] = tf.shape(pixels)[1:3]
        return (pixels,)

    def run_decode(raw_boxes, raw_classes):
        return tuple(decode_stage(raw_boxes, raw_classes, state["body"]))

    def run_nms(boxes, scores):
        return (nms_stage(boxes, scores, state["geometry"]),)

    functions = {
        "letterbox": run_letterbox,
        "network": lambda pixels: tuple(network_stage(pixels)),
        "decode": run_decode,
        "nms": run_nms,
    }
    assert tuple(functions) == STAGE_NAMES
    return functions


def time_stages(functions, batches, runs, warmup, stats):
    """Times each stage of `functions` over `batches`.

    Args:
        functions: dict from `stage_functions`.
        batches: list of uint8 `[B, H, W, 3]` arrays (one batch size).
        runs: int. Timed passes.
        warmup: int. Untimed passes before (one more is always made).
        stats: callable turning a list of seconds into a statistics dict.

    Returns:
        `{stage name: stats(seconds)}`.
    """
    import tensorflow as tf

    def one_pass(batch, record):
        values = (tf.constant(batch),)
        for name, function in functions.items():
            started = time.perf_counter()
            values = function(*values)
            _materialize(values)
            if record is not None:
                record[name].append(time.perf_counter() - started)

    for index in range(warmup + 1):
        one_pass(batches[index % len(batches)], None)
    record = {name: [] for name in functions}
    for index in range(runs):
        one_pass(batches[index % len(batches)], record)
    return {name: stats(seconds) for name, seconds in record.items()}


def _materialize(values):
    """Waits for the stage's outputs (a no-op on CPU eager, a sync on a GPU)."""
    import tensorflow as tf

    for value in tf.nest.flatten(values):
        if hasattr(value, "numpy"):
            value.numpy().ravel()[:1]
