"""Blocks of Ultralytics' newer families (YOLO11, YOLO26): C3k2, C3k, C2PSA.

Functional helpers, like `edgedet.models.yolo_v8_layers` (whose `apply_conv_bn`
they build on): each takes a Keras tensor and returns one, creating named
layers, so weights load by name and exported node names are stable. Each
mirrors the Ultralytics module of the same name in
`ultralytics/nn/modules/block.py` (8.4):

- `apply_dwconv_bn`: `DWConv` (3x3 depthwise conv, BatchNorm, SiLU).
- `apply_bottleneck`: `Bottleneck(c, c, shortcut, k=(3, 3), e)`.
- `apply_c3k`: `C3k(c, c, n=2, e=0.5, k=3)` (a C3 of 3x3 bottlenecks).
- `apply_c3k2`: `C3k2` (C2f's outer shape; inner `Bottleneck` e=0.5, or `C3k`,
  or YOLO26's `Bottleneck` + `PSABlock`).
- `apply_attention`: `Attention` (fused 1x1 qkv laid out per head as
  `[q key_dim, k key_dim, v head_dim]`, key_dim = head_dim / 2, scale
  key_dim^-0.5, softmax over keys, a 3x3 depthwise `pe` on v added to the
  attention output, 1x1 `proj`).
- `apply_psa_block`: `PSABlock` (attention then a 2-conv FFN, both residual).
- `apply_c2psa`: `C2PSA` (split, PSABlocks on one half, concat, 1x1).
"""

from edgedet.backend import keras as _keras
from edgedet.models.yolo_v8_layers import (
    BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
    ChannelSplit,
    apply_conv_bn,
)

keras = _keras()


def apply_dwconv_bn(inputs, kernel_size=3, activation="swish", name="dwconv"):
    """Depthwise Conv2D (no bias) + BatchNormalization + activation (Ultralytics `DWConv`).

    Args:
        inputs: Keras tensor, NHWC.
        kernel_size: int. Square kernel; `kernel_size // 2` zero padding.
            Defaults to 3.
        activation: str. Defaults to `"swish"`; `"linear"` for none.
        name: str. Layer name prefix: `{name}_pad`, `{name}_conv`,
            `{name}_bn`, `{name}`. Defaults to `"dwconv"`.
    """
    x = inputs
    if kernel_size > 1:
        x = keras.layers.ZeroPadding2D(padding=kernel_size // 2, name=f"{name}_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        kernel_size, padding="valid", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn"
    )(x)
    return keras.layers.Activation(activation, name=name)(x)


def apply_bottleneck(inputs, channels, expansion=0.5, shortcut=True, activation="swish",
                     name="bottleneck"):
    """Two 3x3 conv-BN-acts, with a residual when `shortcut` (Ultralytics `Bottleneck`).

    Args:
        inputs: Keras tensor with `channels` channels.
        channels: int. Output channels.
        expansion: float. Hidden width `int(channels * expansion)`. Defaults to 0.5.
        shortcut: bool. Defaults to True.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix (`{name}_1`, `{name}_2`, `{name}_add`).
    """
    x = apply_conv_bn(inputs, int(channels * expansion), 3, activation=activation,
                      name=f"{name}_1")
    x = apply_conv_bn(x, channels, 3, activation=activation, name=f"{name}_2")
    if shortcut and inputs.shape[-1] == channels:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def apply_c3k(inputs, channels, depth=2, shortcut=True, activation="swish", name="c3k"):
    """CSP bottleneck with 3 convolutions and 3x3 bottlenecks (Ultralytics `C3k`, e=0.5).

    Args:
        inputs: Keras tensor, NHWC.
        channels: int. Output channels.
        depth: int. Bottlenecks. Defaults to 2.
        shortcut: bool. Defaults to True.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix (`{name}_cv1`, `_cv2`, `_cv3`, `_m{k}`).
    """
    hidden = int(channels * 0.5)
    x = apply_conv_bn(inputs, hidden, activation=activation, name=f"{name}_cv1")
    for k in range(depth):
        x = apply_bottleneck(x, hidden, 1.0, shortcut, activation, name=f"{name}_m{k}")
    y = apply_conv_bn(inputs, hidden, activation=activation, name=f"{name}_cv2")
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([x, y])
    return apply_conv_bn(x, channels, activation=activation, name=f"{name}_cv3")


def apply_c3k2(inputs, channels, depth, c3k=False, expansion=0.5, shortcut=True,
               activation="swish", name="c3k2", attention=False):
    """C2f with `C3k`, `Bottleneck` or attention inner blocks (Ultralytics `C3k2`).

    Args:
        inputs: Keras tensor, NHWC.
        channels: int. Output channels.
        depth: int. Inner blocks.
        c3k: bool. Inner blocks are `C3k` (else `Bottleneck`, e=0.5).
            Defaults to False.
        expansion: float. Hidden width `int(channels * expansion)`.
            Defaults to 0.5.
        shortcut: bool. Residuals in the inner blocks. Defaults to True.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix (`{name}_cv1`, `_m{k}`, `_cv2`).
        attention: bool. Inner blocks are a `Bottleneck` (e=0.5, `{name}_m{k}`)
            then a `PSABlock` (`{name}_m{k}_psa`), whatever `c3k` says
            (YOLO26's layer 22, `C3k2(..., attn=True)`). Defaults to False.
    """
    hidden = int(channels * expansion)
    pre = apply_conv_bn(inputs, 2 * hidden, activation=activation, name=f"{name}_cv1")
    outputs = list(ChannelSplit(2, name=f"{name}_split")(pre))
    for k in range(depth):
        if attention:
            x = apply_bottleneck(outputs[-1], hidden, 0.5, shortcut, activation,
                                 name=f"{name}_m{k}")
            x = apply_psa_block(x, attention_heads(hidden), True, activation,
                                name=f"{name}_m{k}_psa")
        elif c3k:
            x = apply_c3k(outputs[-1], hidden, 2, shortcut, activation, name=f"{name}_m{k}")
        else:
            x = apply_bottleneck(outputs[-1], hidden, 0.5, shortcut, activation,
                                 name=f"{name}_m{k}")
        outputs.append(x)
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(outputs)
    return apply_conv_bn(x, channels, activation=activation, name=f"{name}_cv2")


@keras.saving.register_keras_serializable(package="edgedet")
class MultiHeadAttention2D(keras.layers.Layer):
    """Attention core of Ultralytics' `Attention`, on a fused NHWC qkv map.

    Takes `qkv` `[B, H, W, heads * (2 * key_dim + head_dim)]` (per head:
    q, k, v) and returns `(attended, v)`, both `[B, H, W, heads * head_dim]`,
    channels head-major as in PyTorch's `view(B, C, H, W)`: attended is
    `softmax(q k^T * key_dim^-0.5) v` over the H*W positions.

    Args:
        num_heads: int.
        key_dim: int. Query/key width per head.
        head_dim: int. Value width per head.
    """

    def __init__(self, num_heads, key_dim, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.head_dim = int(head_dim)

    def call(self, qkv):
        ops = keras.ops
        # Static sides where known (the exported graphs): no Shape ops on the
        # body's tensors, which the INT8 body search would leave outside it.
        height, width = qkv.shape[1], qkv.shape[2]
        if height is None or width is None:
            shape = ops.shape(qkv)
            height, width = shape[1], shape[2]
        heads, kd, hd = self.num_heads, self.key_dim, self.head_dim
        x = ops.reshape(qkv, (-1, height * width, heads, 2 * kd + hd))
        x = ops.transpose(x, (0, 2, 1, 3))  # [B, heads, N, 2kd + hd]
        q, k, v = x[..., :kd], x[..., kd:2 * kd], x[..., 2 * kd:]
        scores = ops.matmul(q * (kd ** -0.5), ops.transpose(k, (0, 1, 3, 2)))
        weights = ops.softmax(scores, axis=-1)
        out = ops.matmul(weights, v)  # [B, heads, N, hd]

        def to_map(t):
            t = ops.transpose(t, (0, 2, 1, 3))
            return ops.reshape(t, (-1, height, width, heads * hd))

        return to_map(out), to_map(v)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[:3]) + (self.num_heads * self.head_dim,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, head_dim=self.head_dim)
        return config


def attention_heads(channels):
    """Ultralytics' head count for a PSA block of `channels`: `max(channels // 64, 1)`."""
    return max(channels // 64, 1)


def apply_attention(inputs, num_heads, attn_ratio=0.5, name="attn"):
    """Multi-head self-attention with a positional depthwise conv (Ultralytics `Attention`).

    Args:
        inputs: Keras tensor `[B, H, W, C]`.
        num_heads: int. Divides C.
        attn_ratio: float. key_dim = `int(head_dim * attn_ratio)`. Defaults to 0.5.
        name: str. Layer name prefix (`{name}_qkv`, `_core`, `_pe`, `_proj`).
    """
    channels = inputs.shape[-1]
    head_dim = channels // num_heads
    key_dim = int(head_dim * attn_ratio)
    qkv = apply_conv_bn(inputs, channels + 2 * key_dim * num_heads, activation="linear",
                        name=f"{name}_qkv")
    attended, v = MultiHeadAttention2D(num_heads, key_dim, head_dim, name=f"{name}_core")(qkv)
    pe = apply_dwconv_bn(v, 3, activation="linear", name=f"{name}_pe")
    x = keras.layers.Add(name=f"{name}_pe_add")([attended, pe])
    return apply_conv_bn(x, channels, activation="linear", name=f"{name}_proj")


def apply_psa_block(inputs, num_heads, shortcut=True, activation="swish", name="psa"):
    """Attention then a 2-conv FFN, each residual (Ultralytics `PSABlock`, attn_ratio 0.5).

    Args:
        inputs: Keras tensor `[B, H, W, C]`.
        num_heads: int.
        shortcut: bool. Defaults to True.
        activation: str. The FFN's first activation. Defaults to `"swish"`.
        name: str. Layer name prefix (`{name}_attn`, `_ffn1`, `_ffn2`).
    """
    channels = inputs.shape[-1]
    x = apply_attention(inputs, num_heads, 0.5, name=f"{name}_attn")
    if shortcut:
        x = keras.layers.Add(name=f"{name}_attn_add")([inputs, x])
    y = apply_conv_bn(x, 2 * channels, activation=activation, name=f"{name}_ffn1")
    y = apply_conv_bn(y, channels, activation="linear", name=f"{name}_ffn2")
    if shortcut:
        y = keras.layers.Add(name=f"{name}_ffn_add")([x, y])
    return y


def apply_c2psa(inputs, depth, activation="swish", name="c2psa"):
    """Split, PSABlocks on one half, concat, 1x1 (Ultralytics `C2PSA`, e=0.5).

    Args:
        inputs: Keras tensor `[B, H, W, C]`; the output has C channels too.
        depth: int. PSABlocks.
        activation: str. Defaults to `"swish"`.
        name: str. Layer name prefix (`{name}_cv1`, `_m{k}`, `_cv2`).
    """
    channels = inputs.shape[-1]
    hidden = int(channels * 0.5)
    pre = apply_conv_bn(inputs, 2 * hidden, activation=activation, name=f"{name}_cv1")
    a, b = ChannelSplit(2, name=f"{name}_split")(pre)
    for k in range(depth):
        b = apply_psa_block(b, attention_heads(hidden), True, activation, name=f"{name}_m{k}")
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([a, b])
    return apply_conv_bn(x, channels, activation=activation, name=f"{name}_cv2")
