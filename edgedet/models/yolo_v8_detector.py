"""`YOLOV8Detector`: the YOLOv8 network in Keras 3, returning the raw head.

Decoding (DFL, anchors, strides) and NMS are not part of the model: they live
in edgedet's end-to-end graph, which reads `strides`, `reg_max`, `letterbox`
and `class_names` from the model.
"""

from edgedet import boxes as _boxes
from edgedet.backend import keras as _keras
from edgedet.config import LetterboxConfig
from edgedet.models import yolo_v8_layers as layers
from edgedet.models import yolo_v8_presets
from edgedet.models.detector_common import (  # noqa: F401  (ultralytics_class_channels re-exported)
    STRIDES,
    DetectHeadMixin,
    check_class_names,
    check_num_classes,
    int_list,
    raw_head_outputs,
    ultralytics_class_channels,
)

keras = _keras()

def kerascv_class_channels(p3_channels, num_classes):
    """KerasCV's class-branch width: `max(num_classes, p3_channels)`."""
    return max(num_classes, p3_channels)


@keras.saving.register_keras_serializable(package="edgedet")
class YOLOV8Detector(DetectHeadMixin, keras.Model):
    """YOLOv8 detector (CSPDarknet-C2f backbone, PAN-FPN neck, DFL head).

    The model takes float32 images `[B, H, W, 3]` (H and W multiples of 32;
    pixel values 0-255 when `include_rescaling`) and returns the raw head:
    `{"boxes": [B, A, 64], "classes": [B, A, num_classes]}`, both float32
    (also under mixed precision), where `boxes` are the DFL logits of the
    4 box sides x 16 bins and `classes` are class LOGITS (no sigmoid). The
    `A = H*W/64 + H*W/256 + H*W/1024` anchors are ordered stride 8, 16, 32,
    each level row-major (y, then x), as in KerasCV and Ultralytics.

    Layer names are KerasCV's (`stem_1_conv`, `stack1_c2f_pre_conv`,
    `pa_fpn_p4p5_...`, `yolo_v8_head_1_box_1_conv`, ...).

    Args:
        num_classes: int. Number of classes.
        stackwise_channels: list of 4 ints. Output channels of the backbone
            stages (e.g. `[32, 64, 128, 256]` for yolov8n).
        stackwise_depth: list of 4 ints. Bottlenecks per backbone C2f
            (e.g. `[1, 2, 2, 1]`).
        neck_depths: list of 4 ints. Bottlenecks in the neck's C2fs, in order
            `p4p5`, `p3p4p5`, `downsample1`, `downsample2` (Ultralytics
            yolov8n: `[1, 1, 1, 1]`; KerasCV: `[fpn_depth, fpn_depth, 2, 2]`).
            Defaults to `[1, 1, 1, 1]`.
        head_class_channels: int or None. Width of the class branch; None
            uses Ultralytics' rule `max(p3_channels, min(num_classes, 100))`.
            Defaults to None.
        include_rescaling: bool. Put a `Rescaling(1/255)` inside the model,
            so it takes pixels in 0-255. Defaults to True.
        activation: str. Defaults to `"swish"`.
        bounding_box_format: str. Box format the model is trained with and
            the default output format of its artifacts. Defaults to `"xyxy"`.
        class_names: list of str or None. None names them `"class_0"`, ...
            Defaults to None.
        letterbox: `edgedet.config.LetterboxConfig` or dict. How images are
            letterboxed for this model. Defaults to
            `LetterboxConfig.kerascv(640)`.
        preset: str or None. Name of the preset the model was built from
            (recorded only). Defaults to None.
        **kwargs: `name`, `trainable`, ... passed to `keras.Model`.

    Example:
    ```python
    model = edgedet.models.YOLOV8Detector.from_preset("yolov8n", num_classes=3)
    raw = model(np.zeros((1, 640, 640, 3), "float32"))
    raw["boxes"].shape    # (1, 8400, 64)
    raw["classes"].shape  # (1, 8400, 3)
    ```
    """

    def __init__(
        self,
        num_classes,
        stackwise_channels,
        stackwise_depth,
        neck_depths=(1, 1, 1, 1),
        head_class_channels=None,
        include_rescaling=True,
        activation="swish",
        bounding_box_format="xyxy",
        class_names=None,
        letterbox=None,
        preset=None,
        **kwargs,
    ):
        check_num_classes(num_classes)
        stackwise_channels = int_list("stackwise_channels", stackwise_channels, 4)
        stackwise_depth = int_list("stackwise_depth", stackwise_depth, 4)
        neck_depths = int_list("neck_depths", neck_depths, 4)
        if any(c % 2 for c in stackwise_channels):
            raise ValueError(
                f"Invalid stackwise_channels: {stackwise_channels}. Expected even numbers "
                "(each C2f splits its channels in two)."
            )
        if head_class_channels is None:
            head_class_channels = ultralytics_class_channels(stackwise_channels[1], num_classes)
        elif not isinstance(head_class_channels, int) or head_class_channels < 1:
            raise ValueError(
                f"Invalid head_class_channels: {head_class_channels!r}. Expected an int >= 1 "
                "or None."
            )
        _boxes.check_format(bounding_box_format)
        class_names = check_class_names(class_names, num_classes)
        letterbox = LetterboxConfig.kerascv(640) if letterbox is None else letterbox
        letterbox = LetterboxConfig.from_dict(letterbox)

        images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
        x = images
        if include_rescaling:
            x = keras.layers.Rescaling(1 / 255.0, name="rescaling")(x)
        features = layers.apply_backbone(x, stackwise_channels, stackwise_depth, activation)
        features = layers.apply_path_aggregation_fpn(features, neck_depths, activation)
        box_levels, class_levels = layers.apply_yolo_v8_head(
            features, num_classes, head_class_channels, activation
        )
        outputs = raw_head_outputs(box_levels, class_levels)
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        self._set_common(num_classes, head_class_channels, include_rescaling, activation,
                         bounding_box_format, class_names, letterbox, preset)
        self.stackwise_channels = tuple(stackwise_channels)
        self.stackwise_depth = tuple(stackwise_depth)
        self.neck_depths = tuple(neck_depths)

    def get_config(self):
        return {
            **self._common_config(),
            "stackwise_channels": list(self.stackwise_channels),
            "stackwise_depth": list(self.stackwise_depth),
            "neck_depths": list(self.neck_depths),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name, num_classes=None, class_names=None, **overrides):
        """Builds a randomly initialised model from an architecture preset.

        Args:
            name: str. One of `edgedet.models.preset_names()`: `"yolov8n"`,
                `"yolov8s"`, `"yolov8m"`, `"yolov8l"`, `"yolov8x"`, `"tiny"`.
            num_classes: int or None. None means `len(class_names)`, or 80
                without class names. Defaults to None.
            class_names: list of str or None. Defaults to None.
            **overrides: any other constructor argument (e.g. `letterbox`,
                `include_rescaling`, `head_class_channels`).

        Raises:
            ValueError: for an unknown preset (with a close-match suggestion).
        """
        config = yolo_v8_presets.get_preset(name)
        if num_classes is None:
            num_classes = 80 if class_names is None else len(class_names)
        config.update(num_classes=num_classes, class_names=class_names, preset=name)
        config.update(overrides)
        return cls(**config)
