"""Functional building blocks of YOLOv8: conv-BN-act, C2f, SPPF, PAN-FPN, head.

Each helper takes a Keras tensor and returns one, creating named layers. The
names are those of KerasCV 0.9 (`keras_cv.models.YOLOV8Detector`), so KerasCV
weights load by a name-to-name copy, and they are deterministic, so exported
node names are stable from one build to the next.

The blocks are the same as Ultralytics YOLOv8's (`Conv`, `C2f`, `SPPF`,
`Detect`): a 3x3 stride-2 convolution is `ZeroPadding2D(1)` then a `valid`
convolution, which matches PyTorch's symmetric padding (Keras' `"same"` pads
bottom/right only for stride 2).
"""

from edgedet.backend import keras as _keras

keras = _keras()

# Ultralytics: nn.BatchNorm2d(eps=0.001, momentum=0.03) == Keras momentum 0.97.
BATCH_NORM_EPSILON = 1e-3
BATCH_NORM_MOMENTUM = 0.97
# Distribution Focal Loss bins per box side: 4 sides x 16 bins = 64 channels.
REG_MAX = 16
BOX_REGRESSION_CHANNELS = 4 * REG_MAX


@keras.saving.register_keras_serializable(package="edgedet")
class ChannelSplit(keras.layers.Layer):
    """Splits the last axis into `num_splits` equal parts.

    A named layer instead of `keras.ops.split`, whose auto-generated names
    change with every model built in a process.

    Args:
        num_splits: int. Number of equal parts. Defaults to 2.
    """

    def __init__(self, num_splits=2, **kwargs):
        super().__init__(**kwargs)
        self.num_splits = num_splits

    def call(self, inputs):
        return keras.ops.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        part = None if channels is None else channels // self.num_splits
        return [tuple(input_shape[:-1]) + (part,)] * self.num_splits

    def get_config(self):
        config = super().get_config()
        config["num_splits"] = self.num_splits
        return config


def apply_conv_bn(inputs, filters, kernel_size=1, strides=1, activation="swish", name="conv_bn"):
    """Conv2D (no bias) + BatchNormalization + activation (Ultralytics `Conv`).

    Args:
        inputs: Keras tensor, NHWC.
        filters: int. Output channels.
        kernel_size: int. Square kernel size; `kernel_size // 2` zero padding
            on every side. Defaults to 1.
        strides: int. Defaults to 1.
        activation: str. Defaults to `"swish"` (SiLU).
        name: str. Layer name prefix: `{name}_pad`, `{name}_conv`,
            `{name}_bn` and `{name}` (the activation). Defaults to `"conv_bn"`.
    """
    x = inputs
    if kernel_size > 1:
        x = keras.layers.ZeroPadding2D(padding=kernel_size // 2, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn"
    )(x)
    return keras.layers.Activation(activation, name=name)(x)


def apply_c2f(inputs, channels, depth, shortcut=True, activation="swish", name="c2f"):
    """CSP bottleneck with two convolutions (Ultralytics `C2f`, e=0.5).

    Args:
        inputs: Keras tensor, NHWC.
        channels: int. Output channels.
        depth: int. Number of bottlenecks (two 3x3 conv-BN-acts each).
        shortcut: bool. Residual connection around each bottleneck.
            Defaults to True.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix. Defaults to `"c2f"`.
    """
    hidden = channels // 2
    pre = apply_conv_bn(inputs, 2 * hidden, activation=activation, name=f"{name}_pre")
    short, deep = ChannelSplit(2, name=f"{name}_split")(pre)
    outputs = [short, deep]
    for i in range(depth):
        x = apply_conv_bn(deep, hidden, 3, activation=activation, name=f"{name}_pre_{i}_1")
        x = apply_conv_bn(x, hidden, 3, activation=activation, name=f"{name}_pre_{i}_2")
        if shortcut:
            x = keras.layers.Add(name=f"{name}_add_{i}")([deep, x])
        deep = x
        outputs.append(deep)
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(outputs)
    return apply_conv_bn(x, channels, activation=activation, name=f"{name}_output")


def apply_sppf(inputs, pool_size=5, activation="swish", name="spp_fast", shortcut=False):
    """Spatial pyramid pooling, fast (Ultralytics `SPPF`, k=5).

    Args:
        inputs: Keras tensor, NHWC.
        pool_size: int. Max-pooling window. Defaults to 5.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix. Defaults to `"spp_fast"`.
        shortcut: bool. YOLO26's SPPF (`SPPF(c, c, 5, 3, True)`): the first
            1x1 conv has no activation and the input is added to the output
            (`{name}_add`). Defaults to False.
    """
    channels = inputs.shape[-1]
    x = apply_conv_bn(inputs, channels // 2, activation="linear" if shortcut else activation,
                      name=f"{name}_pre")
    pools = [x]
    for i in range(1, 4):
        pools.append(
            keras.layers.MaxPooling2D(pool_size, strides=1, padding="same", name=f"{name}_pool{i}")(
                pools[-1]
            )
        )
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(pools)
    x = apply_conv_bn(x, channels, activation=activation, name=f"{name}_output")
    return keras.layers.Add(name=f"{name}_add")([inputs, x]) if shortcut else x


def apply_backbone(inputs, stackwise_channels, stackwise_depth, activation="swish"):
    """CSPDarknet with C2f stages and SPPF; returns the P3, P4, P5 features.

    Args:
        inputs: Keras tensor, NHWC (already rescaled).
        stackwise_channels: list of 4 ints. Output channels of each stage.
        stackwise_depth: list of 4 ints. Bottlenecks in each stage's C2f.
        activation: str. Defaults to `"swish"`.
    """
    x = apply_conv_bn(
        inputs, stackwise_channels[0] // 2, 3, 2, activation=activation, name="stem_1"
    )
    x = apply_conv_bn(x, stackwise_channels[0], 3, 2, activation=activation, name="stem_2")
    features = []
    for i, (channels, depth) in enumerate(zip(stackwise_channels, stackwise_depth)):
        stack = f"stack{i + 1}"
        if i > 0:
            x = apply_conv_bn(x, channels, 3, 2, activation=activation, name=f"{stack}_downsample")
        x = apply_c2f(x, channels, depth, shortcut=True, activation=activation, name=f"{stack}_c2f")
        if i == len(stackwise_channels) - 1:
            x = apply_sppf(x, activation=activation, name=f"{stack}_spp_fast")
        features.append(x)
    return features[1:]


def apply_path_aggregation_fpn(features, neck_depths, activation="swish", name="pa_fpn"):
    """PAN-FPN neck: top-down then bottom-up, with C2f blocks (no shortcut).

    Args:
        features: list of 3 Keras tensors, the backbone's P3, P4, P5.
        neck_depths: list of 4 ints. Bottlenecks in the `p4p5`, `p3p4p5`,
            `p3p4p5_downsample1_block` and `p3p4p5_downsample2_block` C2fs.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix. Defaults to `"pa_fpn"`.
    """
    p3, p4, p5 = features
    d_p4p5, d_p3p4p5, d_down1, d_down2 = neck_depths

    def c2f(x, channels, depth, block):
        return apply_c2f(
            x, channels, depth, shortcut=False, activation=activation, name=f"{name}_{block}"
        )

    def concat(tensors, block):
        return keras.layers.Concatenate(axis=-1, name=f"{name}_{block}_merge")(tensors)

    def upsample(x, block):
        return keras.layers.UpSampling2D(
            2, interpolation="nearest", name=f"{name}_{block}_upsample"
        )(x)

    p4p5 = concat([upsample(p5, "p4p5"), p4], "p4p5")
    p4p5 = c2f(p4p5, p4.shape[-1], d_p4p5, "p4p5")

    p3p4p5 = concat([upsample(p4p5, "p3p4p5"), p3], "p3p4p5")
    p3p4p5 = c2f(p3p4p5, p3.shape[-1], d_p3p4p5, "p3p4p5")

    down1 = apply_conv_bn(
        p3p4p5, p3p4p5.shape[-1], 3, 2, activation=activation, name=f"{name}_p3p4p5_downsample1"
    )
    down1 = concat([down1, p4p5], "p3p4p5_downsample1")
    down1 = c2f(down1, p4p5.shape[-1], d_down1, "p3p4p5_downsample1_block")

    down2 = apply_conv_bn(
        down1, down1.shape[-1], 3, 2, activation=activation, name=f"{name}_p3p4p5_downsample2"
    )
    down2 = concat([down2, p5], "p3p4p5_downsample2")
    down2 = c2f(down2, p5.shape[-1], d_down2, "p3p4p5_downsample2_block")
    return [p3p4p5, down1, down2]


def head_box_channels(p3_channels, reg_max=REG_MAX):
    """Width of the box branch (Ultralytics `Detect`): `max(16, p3 // 4, 4 * reg_max)`."""
    return max(16, p3_channels // 4, 4 * reg_max)


def apply_box_branch(feature, box_channels, activation="swish", name="head_1", reg_max=REG_MAX):
    """A `Detect` box branch: two 3x3 conv-BN-acts and a 1x1 conv to `4 * reg_max`.

    Returns the `[B, H*W, 4 * reg_max]` DFL logits (reg_max 1: the four
    distances), row-major; layers `{name}_box_1`, `{name}_box_2`,
    `{name}_box_3_conv`, `{name}_box_reshape`.
    """
    x = apply_conv_bn(feature, box_channels, 3, activation=activation, name=f"{name}_box_1")
    x = apply_conv_bn(x, box_channels, 3, activation=activation, name=f"{name}_box_2")
    x = keras.layers.Conv2D(4 * reg_max, 1, name=f"{name}_box_3_conv")(x)
    return keras.layers.Reshape((-1, 4 * reg_max), name=f"{name}_box_reshape")(x)


def apply_yolo_v8_head(
    features, num_classes, class_channels, activation="swish", name="yolo_v8_head"
):
    """Decoupled head: per level, a box branch and a class branch.

    Args:
        features: list of 3 Keras tensors (strides 8, 16, 32).
        num_classes: int. Number of classes.
        class_channels: int. Width of the class branch's two 3x3 convs.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix. Defaults to `"yolo_v8_head"`.

    Returns:
        `(boxes, classes)`: per-level lists of `[B, H*W, 64]` box
        distributions and `[B, H*W, num_classes]` class logits, row-major.
    """
    box_channels = head_box_channels(features[0].shape[-1])
    boxes, classes = [], []
    for i, feature in enumerate(features):
        level = f"{name}_{i + 1}"
        boxes.append(apply_box_branch(feature, box_channels, activation, level))
        y = apply_conv_bn(
            feature, class_channels, 3, activation=activation, name=f"{level}_class_1"
        )
        y = apply_conv_bn(y, class_channels, 3, activation=activation, name=f"{level}_class_2")
        y = keras.layers.Conv2D(num_classes, 1, name=f"{level}_class_3_conv")(y)
        classes.append(keras.layers.Reshape((-1, num_classes), name=f"{level}_class_reshape")(y))
    return boxes, classes
