"""The end-to-end graph: uint8 images in, fixed-size detections out.

This is the one function of DESIGN.md ("The one contract"): the SavedModel,
ONNX and TFLite exporters convert it and the Keras reference runtime runs it.
Stages, in order: letterbox (`edgedet.letterbox`) -> network (float32 pixels
0-255, `training=False`) -> decode (`edgedet.decode`) -> NMS
(`edgedet.nms`), or for `config.head == "one2one"` the NMS-free top-k
selection (`edgedet.topk`) -> undo the letterbox -> output box format
(`edgedet.boxes.convert_format`). Each stage is a method of `EndToEnd`
(`letterbox_stage`, `network_stage`, `decode_stage`, `nms_stage`) that
`serve` chains, so whoever needs one stage alone (the per-stage benchmark)
calls the same code.

Example:

```python
model = edgedet.models.YOLOV8Detector.from_preset("yolov8n", num_classes=3)
e2e = build_end_to_end(model, model.default_inference_config())
out = e2e.serve(images)  # uint8 [B, H, W, 3]
out["boxes"], out["confidence"], out["classes"], out["num_detections"]
```
"""

import dataclasses
import warnings

from edgedet import boxes as box_utils
from edgedet.config import InferenceConfig
from edgedet.decode import DEFAULT_STRIDES, num_anchors
from edgedet.nms import DEFAULT_PRE_NMS_TOPK

OUTPUT_NAMES = ("boxes", "confidence", "classes", "num_detections")
DEBUG_OUTPUT_NAMES = ("pre_nms_boxes", "pre_nms_scores")
INPUT_NAME = "images"


def is_kerascv_model(model):
    """True for KerasCV models (whose class head already applies a sigmoid)."""
    return any(cls.__module__.split(".")[0] == "keras_cv" for cls in type(model).__mro__)


def build_end_to_end(model, config=None, debug=False, classes_are_logits=None,
                     pre_nms_topk=DEFAULT_PRE_NMS_TOPK):
    """Builds the end-to-end graph around a YOLOv8 model.

    The graph is traced once here, so a model whose outputs are not
    YOLOv8-shaped fails now, with a `ValueError`.

    Args:
        model: edgedet `YOLOV8Detector` (class logits; `strides`, `reg_max`
            and `letterbox` are read from it) or a KerasCV `YOLOV8Detector`
            (class probabilities, strides `(8, 16, 32)`), or any Keras model
            returning `{"boxes": [B, A, 4 * reg_max], "classes": [B, A, C]}`
            for float32 pixels 0-255.
        config: `InferenceConfig` or None. None uses
            `model.default_inference_config()` when the model has one, else
            `InferenceConfig()`. Defaults to None.
        debug: bool. Also return `pre_nms_boxes` (float32 `[B, A, 4]`, xyxy
            in original-image pixels, NOT clipped, whatever the output format)
            and `pre_nms_scores` (float32 `[B, A, C]`). Defaults to False.
        classes_are_logits: bool or None. Whether `classes` are logits (a
            sigmoid is applied) or probabilities. None: False for KerasCV
            models, else `model.classes_are_logits` if set, else True.
            Defaults to None.
        pre_nms_topk: int. Best anchors per image entering the NMS (see
            `edgedet.nms`). Defaults to 1000.

    Returns:
        An `EndToEnd` module; call `serve(images)`.

    Raises:
        ValueError: for a model whose outputs are not YOLOv8-shaped, whose
            static input size differs from `config.letterbox.size`, or whose
            family has no `config.head`.
    """
    if config is None:
        default = getattr(model, "default_inference_config", None)
        config = default() if callable(default) else InferenceConfig()
    if not isinstance(config, InferenceConfig):
        config = InferenceConfig.from_dict(config)
    check_head(model, config.head)
    if classes_are_logits is None:
        if is_kerascv_model(model):
            classes_are_logits = False
        else:
            classes_are_logits = bool(getattr(model, "classes_are_logits", True))
    module = end_to_end_class()(model, config, debug=debug, classes_are_logits=classes_are_logits,
                      pre_nms_topk=pre_nms_topk)
    module.serve.get_concrete_function()  # trace now: shape errors surface here
    return module


def _model_attributes(model, config):
    """Strides and reg_max of `model`, after checking its input size."""
    strides = tuple(int(s) for s in getattr(model, "strides", DEFAULT_STRIDES))
    reg_max = getattr(model, "reg_max", None)
    size = config.letterbox.size
    if size % max(strides):
        raise ValueError(
            f"Letterbox size {size} is not a multiple of the model's largest stride "
            f"{max(strides)}."
        )
    try:
        input_shape = tuple(model.input_shape)
    except (AttributeError, ValueError, TypeError):  # unbuilt or multi-input models
        input_shape = None
    if (
        input_shape is not None
        and len(input_shape) == 4
        and all(d is None or isinstance(d, int) for d in input_shape)
    ):
        spatial = tuple(d for d in input_shape[1:3] if d is not None)
        if any(d != size for d in spatial) or input_shape[3] not in (3, None):
            raise ValueError(
                f"The model's input shape {input_shape} does not match the letterbox "
                f"size {size}: expected (None, {size}, {size}, 3) or dynamic height/width."
            )
    model_letterbox = getattr(model, "letterbox", None)
    if hasattr(model_letterbox, "to_dict") and model_letterbox != dataclasses.replace(
        config.letterbox, shape=getattr(model_letterbox, "shape", "square")
    ):  # A rect body is an inference choice, not a different training letterbox.
        warnings.warn(
            f"The inference letterbox {config.letterbox} differs from the one the model "
            f"was built with ({model_letterbox}); detections may degrade.",
            stacklevel=3,
        )
    return strides, reg_max


def model_decoder(model):
    """The decode function of `model`'s family (`edgedet.models.families`).

    A model of no registered family (a KerasCV `YOLOV8Detector`, any Keras
    model returning the `Detect` head) is decoded like YOLOv8: DFL
    expectation, anchor points, strides (`edgedet.decode.decode`).
    """
    from edgedet.models import families

    family = families.family_of_model(model)
    if family is None:
        return families.load_attr(families.DFL_DECODE)
    return family.decoder()


def model_heads(model):
    """The detection heads `model` carries: its family's `heads` (one-to-many only
    for a model of no registered family)."""
    from edgedet.models import families

    family = families.family_of_model(model)
    return tuple(family.heads) if family is not None else ("one2many",)


def check_head(model, head):
    """Raises ValueError, naming the model's family and heads, unless it carries `head`."""
    heads = model_heads(model)
    if head not in heads:
        from edgedet.models import families

        family = families.family_of_model(model)
        title = family.title if family is not None else "no registered family"
        raise ValueError(
            f"Model '{getattr(model, 'name', model)}' ({title}) has no {head!r} head: its "
            f"heads are {list(heads)}. Use --head {heads[0]}, or a model whose family has a "
            f"{head} head (YOLO26).")


def split_outputs(outputs, anchors, reg_max, head="one2many"):
    """Checks the raw head and returns `(raw_boxes, raw_classes, reg_max)`.

    Args:
        outputs: what the model returned: a dict with `"boxes"` and
            `"classes"` (and `"one2one_boxes"` / `"one2one_classes"` for a
            model with a one-to-one head), or a `(boxes, classes)` pair.
        anchors: int or None. Anchor count for the letterbox size
            (`edgedet.decode.num_anchors`); None for a rect body (dynamic).
        reg_max: int or None. Bins per box side; None reads it from the
            boxes' width (`4 * reg_max`).
        head: str. `"one2one"` reads the `one2one_*` outputs. Defaults to
            `"one2many"`.

    Raises:
        ValueError: for outputs that are not YOLOv8's raw head at this size.
    """
    prefix = "one2one_" if head == "one2one" else ""
    keys = (prefix + "boxes", prefix + "classes")
    if isinstance(outputs, dict) and set(keys) <= set(outputs):
        raw_boxes, raw_classes = outputs[keys[0]], outputs[keys[1]]
    elif not prefix and isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        raw_boxes, raw_classes = outputs
    else:
        what = (
            f"a dict with keys {sorted(outputs)}" if isinstance(outputs, dict)
            else f"{type(outputs).__name__} of shape {getattr(outputs, 'shape', '?')}"
        )
        raise ValueError(
            "Expected the model to return YOLOv8's raw head, a dict "
            f'{{"{keys[0]}": [B, A, 4 * reg_max], "{keys[1]}": [B, A, C]}}; received '
            + what + "."
        )
    box_shape, class_shape = tuple(raw_boxes.shape), tuple(raw_classes.shape)
    if reg_max is None and len(box_shape) == 3 and box_shape[2] and box_shape[2] % 4 == 0:
        reg_max = box_shape[2] // 4
    expected_boxes = (anchors, 4 * (reg_max or 16))
    if (
        len(box_shape) != 3
        or len(class_shape) != 3
        or box_shape[1:] != expected_boxes
        or class_shape[1] != anchors
        or not class_shape[2]
    ):
        raise ValueError(
            f"Expected YOLOv8 outputs boxes [B, {anchors}, {expected_boxes[1]}] and "
            f"classes [B, {anchors}, C] for this input size; received boxes {box_shape} "
            f"and classes {class_shape}."
        )
    return raw_boxes, raw_classes, reg_max


def _end_to_end_class():
    import tensorflow as tf

    from edgedet.letterbox import letterbox, unletterbox, unletterbox_unclipped
    from edgedet.nms import non_max_suppression
    from edgedet.topk import one_to_one_select

    class EndToEnd(tf.Module):
        """letterbox -> network -> decode -> NMS (or top-k) -> unletterbox -> format.

        Holds the Keras model (so a SavedModel export tracks its variables)
        and the `InferenceConfig`.

        Attributes:
            model: the Keras model.
            model_variables: the model's weights as `tf.Variable`s.
            config: the `InferenceConfig`.
            debug: whether `serve` also returns the pre-NMS tensors.
            classes_are_logits: whether a sigmoid is applied to the classes.
            pre_nms_topk: candidates per image entering the NMS.
            strides: the model's strides.
        """

        def __init__(self, model, config, debug=False, classes_are_logits=True,
                     pre_nms_topk=DEFAULT_PRE_NMS_TOPK):
            super().__init__(name="end_to_end")
            self.strides, self._reg_max = _model_attributes(model, config)
            self.model = model
            # Keras 3 variables wrap tf.Variables that tf.Module does not see
            # (`self.variables` would be empty); the TFLite converter then keeps
            # them as uninitialised VAR_HANDLE/READ_VARIABLE ops (garbage
            # outputs). Tracking the wrapped tf.Variables here fixes both.
            self.model_variables = [
                v for v in (getattr(w, "value", w) for w in model.weights)
                if isinstance(v, tf.Variable)
            ]
            self.config = config
            self.debug = bool(debug)
            self.classes_are_logits = bool(classes_are_logits)
            self.pre_nms_topk = pre_nms_topk
            self.decode = model_decoder(model)

        @property
        def output_names(self):
            """Names of the outputs of `serve`, in a fixed order."""
            return OUTPUT_NAMES + (DEBUG_OUTPUT_NAMES if self.debug else ())

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_NAME)]
        )
        def serve(self, images):
            """Detects objects in a batch of uint8 RGB images `[B, H, W, 3]`.

            Returns a dict: `boxes` float32 `[B, max_det, 4]` in original
            pixels and `config.bounding_box_format`, `confidence` float32
            `[B, max_det]`, `classes` int32 `[B, max_det]` (-1 for padding),
            `num_detections` int32 `[B]` (+ the debug outputs).
            """
            pixels, params = self.letterbox_stage(images)
            raw_boxes, raw_classes, reg_max = self.network_stage(pixels)
            boxes, scores = self.decode_stage(raw_boxes, raw_classes, reg_max,
                                              self.body_size(pixels))
            result = self.nms_stage(boxes, scores, params)
            if self.debug:
                result["pre_nms_boxes"] = unletterbox_unclipped(boxes, params)
                result["pre_nms_scores"] = scores
            return {name: result[name] for name in self.output_names}

        def letterbox_stage(self, images):
            """Stage 1: letterboxes uint8 `[B, H, W, 3]` images.

            Returns `(pixels, params)`: float32 `[B, S, S, 3]` pixels 0-255
            (`[B, H', W', 3]` for a rect letterbox) and the `LetterboxParams`
            that `nms_stage` needs to undo it.
            """
            return letterbox(images, self.config.letterbox, stride=max(self.strides))

        def body_size(self, pixels):
            """The network input's side (square) or `(height, width)` tensors (rect)."""
            if self.config.letterbox.shape == "square":
                return self.config.letterbox.size
            shape = tf.shape(pixels)
            return shape[1], shape[2]

        def network_stage(self, pixels):
            """Stage 2: runs the network on letterboxed pixels.

            Returns `(raw_boxes, raw_classes, reg_max)`, checked by
            `split_outputs`.
            """
            outputs = self.model(pixels, training=False)
            anchors = (num_anchors(self.config.letterbox.size, self.strides)
                       if self.config.letterbox.shape == "square" else None)
            return split_outputs(outputs, anchors, self._reg_max, self.config.head)

        def decode_stage(self, raw_boxes, raw_classes, reg_max, body=None):
            """Stage 3: decodes the raw head with the model family's decode.

            `body` is `body_size(pixels)`; None means the square size.
            Returns `(boxes, scores)`: xyxy boxes in letterboxed pixels
            `[B, A, 4]` and class scores `[B, A, C]`.
            """
            return self.decode(
                raw_boxes, raw_classes, self.config.letterbox.size if body is None else body,
                self.strides, reg_max,
                classes_are_logits=self.classes_are_logits,
            )

        def nms_stage(self, boxes, scores, params):
            """Stage 4: NMS (one-to-one head: the top-k selection of `edgedet.topk`),
            then boxes back in original-image pixels.

            Returns the dict of `serve` outputs (without the debug ones), boxes
            in `config.bounding_box_format`.
            """
            config = self.config
            if config.head == "one2one":
                result = one_to_one_select(boxes, scores, config.nms)
            else:
                result = non_max_suppression(boxes, scores, config.nms, self.pre_nms_topk)
            out_boxes = unletterbox(result["boxes"], params)
            result["boxes"] = box_utils.convert_format(
                out_boxes, "xyxy", config.bounding_box_format,
                image_shape=(params.height, params.width),
            )
            return result

    EndToEnd.__qualname__ = "EndToEnd"
    EndToEnd.__module__ = __name__
    return EndToEnd


_EndToEnd = None


def end_to_end_class():
    """Returns the `EndToEnd` class (created on first use, with TensorFlow)."""
    global _EndToEnd
    if _EndToEnd is None:
        _EndToEnd = _end_to_end_class()
    return _EndToEnd


def __getattr__(name):
    # `EndToEnd` subclasses tf.Module, so it is created on first access:
    # importing this module does not import TensorFlow.
    if name == "EndToEnd":
        return end_to_end_class()
    raise AttributeError(f"module 'edgedet.end_to_end' has no attribute '{name}'")
