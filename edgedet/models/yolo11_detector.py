"""`YOLO11Detector`: Ultralytics' YOLO11 in Keras 3, returning the raw head.

The network of `ultralytics/cfg/models/11/yolo11.yaml` (layer indices in
brackets): a stem of two stride-2 convs [0, 1], C3k2 stages with stride-2
convs between them [2-8], SPPF [9] and C2PSA [10]; a PAN-FPN neck of C3k2s
[11-22]; and `Detect` [23] with the box branch of YOLOv8 and a class branch
of depthwise convs (`[DWConv 3x3 -> Conv 1x1] x2 -> 1x1`). Decoding and NMS
live in edgedet's end-to-end graph, as for YOLOv8; the loss is YOLOv8's.
"""

from edgedet import boxes as _boxes
from edgedet.backend import keras as _keras
from edgedet.config import LetterboxConfig
from edgedet.models import csp_attention_blocks as blocks
from edgedet.models import yolo11_presets
from edgedet.models.detector_common import (
    DetectHeadMixin,
    check_class_names,
    check_num_classes,
    int_list,
    raw_head_outputs,
    ultralytics_class_channels,
)
from edgedet.models.yolo_v8_layers import (
    apply_box_branch,
    apply_conv_bn,
    apply_sppf,
    head_box_channels,
)

keras = _keras()

HEAD = "yolo11_head"


def apply_yolo11_head(features, num_classes, class_channels, activation="swish", name=HEAD,
                      reg_max=16):
    """YOLO11's `Detect`: per level, YOLOv8's box branch and a depthwise class branch.

    Returns `(boxes, classes)`: per-level lists of `[B, H*W, 4 * reg_max]`
    DFL logits and `[B, H*W, num_classes]` class logits, row-major. The last
    convs are `{name}_{level}_box_3_conv` and `{name}_{level}_class_3_conv`.
    `reg_max` 1 is YOLO26's head (four distances, no DFL).
    """
    box_channels = head_box_channels(features[0].shape[-1], reg_max)
    boxes, classes = [], []
    for i, feature in enumerate(features):
        level = f"{name}_{i + 1}"
        boxes.append(apply_box_branch(feature, box_channels, activation, level, reg_max))
        y = blocks.apply_dwconv_bn(feature, 3, activation, name=f"{level}_class_1_dw")
        y = apply_conv_bn(y, class_channels, 1, activation=activation, name=f"{level}_class_1")
        y = blocks.apply_dwconv_bn(y, 3, activation, name=f"{level}_class_2_dw")
        y = apply_conv_bn(y, class_channels, 1, activation=activation, name=f"{level}_class_2")
        y = keras.layers.Conv2D(num_classes, 1, name=f"{level}_class_3_conv")(y)
        classes.append(keras.layers.Reshape((-1, num_classes), name=f"{level}_class_reshape")(y))
    return boxes, classes


def check_c3k2_layout(num_classes, stackwise_channels, c3k2_depths, c3k, psa_depth,
                      head_class_channels):
    """Checks the layout arguments YOLO11 and YOLO26 share; returns them normalised.

    Returns `(stackwise_channels, c3k2_depths, c3k, psa_depth,
    head_class_channels)`, the last resolved from None to Ultralytics' width.

    Raises:
        ValueError: naming the bad argument and what was expected.
    """
    check_num_classes(num_classes)
    ch = int_list("stackwise_channels", stackwise_channels, 5)
    c3k2_depths = int_list("c3k2_depths", c3k2_depths, 8)
    if not isinstance(c3k, (list, tuple)) or len(c3k) != 8 or not all(
        isinstance(v, bool) for v in c3k
    ):
        raise ValueError(f"Invalid c3k: {c3k!r}. Expected a list of 8 bools.")
    psa_depth = int_list("psa_depth", [psa_depth], 1)[0]
    if any(c % 2 for c in ch):
        raise ValueError(f"Invalid stackwise_channels: {ch}. Expected even numbers.")
    if head_class_channels is None:
        head_class_channels = ultralytics_class_channels(ch[2], num_classes)
    elif not isinstance(head_class_channels, int) or head_class_channels < 1:
        raise ValueError(
            f"Invalid head_class_channels: {head_class_channels!r}. Expected an int >= 1 "
            "or None."
        )
    return ch, c3k2_depths, list(c3k), psa_depth, head_class_channels


def apply_c3k2_network(x, ch, c3k2_depths, c3k, psa_depth, activation="swish",
                       sppf_shortcut=False, last_attention=False):
    """The network of `yolo11.yaml` / `yolo26.yaml` up to the head: P3, P4, P5 features.

    Args:
        x: Keras tensor, the (rescaled) images.
        ch, c3k2_depths, c3k, psa_depth: see `YOLO11Detector`.
        activation: str. Defaults to `"swish"`.
        sppf_shortcut: bool. YOLO26's SPPF (unactivated first conv, residual).
            Defaults to False.
        last_attention: bool. YOLO26's layer 22: the last C3k2's inner blocks
            are a Bottleneck and a PSABlock. Defaults to False.

    Returns:
        `[n3, d4, d5]`, the features of yaml layers 16, 19 and 22.
    """
    act = activation

    def conv(t, c, name):
        return apply_conv_bn(t, c, 3, 2, activation=act, name=name)

    def c3k2(t, c, i, name, expansion=0.5, attention=False):
        return blocks.apply_c3k2(t, c, c3k2_depths[i], c3k[i], expansion, True, act, name,
                                 attention)

    def concat(tensors, name):
        return keras.layers.Concatenate(axis=-1, name=name)(tensors)

    def upsample(t, name):
        return keras.layers.UpSampling2D(2, interpolation="nearest", name=name)(t)

    x = conv(x, ch[0], "stem_1")
    x = conv(x, ch[1], "stem_2")
    x = c3k2(x, ch[2], 0, "stack1_c3k2", 0.25)
    p3 = c3k2(conv(x, ch[2], "stack2_downsample"), ch[3], 1, "stack2_c3k2", 0.25)
    p4 = c3k2(conv(p3, ch[3], "stack3_downsample"), ch[3], 2, "stack3_c3k2")
    x = c3k2(conv(p4, ch[4], "stack4_downsample"), ch[4], 3, "stack4_c3k2")
    x = apply_sppf(x, activation=act, name="stack4_spp_fast", shortcut=sppf_shortcut)
    p5 = blocks.apply_c2psa(x, psa_depth, act, name="stack4_c2psa")

    n4 = c3k2(concat([upsample(p5, "fpn_p4_upsample"), p4], "fpn_p4_merge"), ch[3], 4,
              "fpn_p4_c3k2")
    n3 = c3k2(concat([upsample(n4, "fpn_p3_upsample"), p3], "fpn_p3_merge"), ch[2], 5,
              "fpn_p3_c3k2")
    d4 = c3k2(concat([conv(n3, ch[2], "pan_p4_downsample"), n4], "pan_p4_merge"), ch[3], 6,
              "pan_p4_c3k2")
    d5 = c3k2(concat([conv(d4, ch[3], "pan_p5_downsample"), p5], "pan_p5_merge"), ch[4], 7,
              "pan_p5_c3k2", attention=last_attention)
    return [n3, d4, d5]


class C3k2DetectorMixin(DetectHeadMixin):
    """What YOLO11 and YOLO26 detectors share: constructor, layout, config and presets.

    A subclass sets `PRESETS` (its presets module, with `get_preset`), the
    network's variant (`SPPF_SHORTCUT`, `LAST_ATTENTION`: see
    `apply_c3k2_network`) and `head_outputs(features, num_classes,
    class_channels, activation)`, a static method returning the output dict.
    The constructor's arguments are `YOLO11Detector`'s.
    """

    PRESETS = None
    SPPF_SHORTCUT = False
    LAST_ATTENTION = False

    def __init__(
        self,
        num_classes,
        stackwise_channels,
        c3k2_depths,
        c3k,
        psa_depth=1,
        head_class_channels=None,
        include_rescaling=True,
        activation="swish",
        bounding_box_format="xyxy",
        class_names=None,
        letterbox=None,
        preset=None,
        **kwargs,
    ):
        ch, c3k2_depths, c3k, psa_depth, head_class_channels = check_c3k2_layout(
            num_classes, stackwise_channels, c3k2_depths, c3k, psa_depth, head_class_channels)
        _boxes.check_format(bounding_box_format)
        class_names = check_class_names(class_names, num_classes)
        letterbox = LetterboxConfig.from_dict(
            LetterboxConfig.ultralytics(640) if letterbox is None else letterbox)

        images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
        x = images
        if include_rescaling:
            x = keras.layers.Rescaling(1 / 255.0, name="rescaling")(x)
        features = apply_c3k2_network(x, ch, c3k2_depths, c3k, psa_depth, activation,
                                      self.SPPF_SHORTCUT, self.LAST_ATTENTION)
        outputs = self.head_outputs(features, num_classes, head_class_channels, activation)
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        self._set_common(num_classes, head_class_channels, include_rescaling, activation,
                         bounding_box_format, class_names, letterbox, preset)
        self.stackwise_channels = tuple(ch)
        self.c3k2_depths = tuple(c3k2_depths)
        self.c3k = tuple(c3k)
        self.psa_depth = psa_depth

    def get_config(self):
        return {
            **self._common_config(),
            "stackwise_channels": list(self.stackwise_channels),
            "c3k2_depths": list(self.c3k2_depths),
            "c3k": list(self.c3k),
            "psa_depth": self.psa_depth,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name, num_classes=None, class_names=None, **overrides):
        """Builds a randomly initialised model from a preset of the class's family.

        Args:
            name: str. One of the family's preset names (`"yolo11n"`, `"yolo26s"`, ...).
            num_classes: int or None. None means `len(class_names)`, or 80.
            class_names: list of str or None. Defaults to None.
            **overrides: any other constructor argument.
        """
        config = cls.PRESETS.get_preset(name)
        if num_classes is None:
            num_classes = 80 if class_names is None else len(class_names)
        config.update(num_classes=num_classes, class_names=class_names, preset=name)
        config.update(overrides)
        return cls(**config)


def yolo11_head_outputs(features, num_classes, class_channels, activation):
    """YOLO11's raw head output dict (`raw_head_outputs` of `apply_yolo11_head`)."""
    return raw_head_outputs(*apply_yolo11_head(features, num_classes, class_channels, activation))


@keras.saving.register_keras_serializable(package="edgedet")
class YOLO11Detector(C3k2DetectorMixin, keras.Model):
    """YOLO11 detector (C3k2 backbone, SPPF, C2PSA, C3k2 PAN-FPN, DFL head).

    Takes float32 images `[B, H, W, 3]` (H and W multiples of 32; pixels
    0-255 when `include_rescaling`) and returns the raw head
    `{"boxes": [B, A, 64], "classes": [B, A, num_classes]}` (DFL logits and
    class LOGITS, float32), anchors ordered as `YOLOV8Detector`'s.

    Args:
        num_classes: int. Number of classes.
        stackwise_channels: list of 5 ints. The yaml's widths
            `[64, 128, 256, 512, 1024]` after scaling (yolo11n:
            `[16, 32, 64, 128, 256]`).
        c3k2_depths: list of 8 ints. Inner blocks of the C3k2s at yaml
            layers 2, 4, 6, 8, 13, 16, 19, 22.
        c3k: list of 8 bools. Whether each of those C3k2s uses C3k blocks.
        psa_depth: int. PSABlocks in the C2PSA. Defaults to 1.
        head_class_channels: int or None. Width of the class branch; None
            uses Ultralytics' `max(p3_channels, min(num_classes, 100))`.
            Defaults to None.
        include_rescaling: bool. `Rescaling(1/255)` inside the model.
            Defaults to True.
        activation: str. Defaults to `"swish"`.
        bounding_box_format: str. Defaults to `"xyxy"`.
        class_names: list of str or None. Defaults to None (`class_0`, ...).
        letterbox: `LetterboxConfig` or dict. Defaults to
            `LetterboxConfig.ultralytics(640)`.
        preset: str or None. Recorded only. Defaults to None.
        **kwargs: passed to `keras.Model`.

    Example:
    ```python
    model = edgedet.models.YOLO11Detector.from_preset("yolo11n", num_classes=3)
    raw = model(np.zeros((1, 640, 640, 3), "float32"))
    raw["boxes"].shape    # (1, 8400, 64)
    ```
    """

    PRESETS = yolo11_presets
    head_outputs = staticmethod(yolo11_head_outputs)
