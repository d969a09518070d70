"""YOLO11's Ultralytics key map: recognition, layout and tensor names.

The `yolo11` family's `ultralytics_path`. Ultralytics module indices
(`yolo11.yaml`) and edgedet layer names (`edgedet.models.yolo11_detector`):

    model.0, model.1            Conv    stem_1, stem_2
    model.2/4/6/8               C3k2    stack1..4_c3k2
    model.3/5/7                 Conv    stack2..4_downsample
    model.9                     SPPF    stack4_spp_fast (cv1 -> _pre, cv2 -> _output)
    model.10                    C2PSA   stack4_c2psa
    model.13, 16, 19, 22        C3k2    fpn_p4_c3k2, fpn_p3_c3k2, pan_p4_c3k2, pan_p5_c3k2
    model.17, model.20          Conv    pan_p4_downsample, pan_p5_downsample
    model.23.cv2.i.{0,1,2}      box     yolo11_head_{i+1}_box_1, _box_2, _box_3_conv
    model.23.cv3.i.{0,1}.{0,1}  class   yolo11_head_{i+1}_class_{1,2}_dw (DWConv), _class_{1,2}
    model.23.cv3.i.2            class   yolo11_head_{i+1}_class_3_conv
    model.23.dfl                fixed   (checked to be arange(16))

Inside a C3k2 (`{c}` its edgedet name): `cv1 -> {c}_cv1`, `cv2 -> {c}_cv2`;
a Bottleneck `m.k.cv1/cv2 -> {c}_m{k}_1/_2`; a C3k `m.k.cv1/cv2/cv3 ->
{c}_m{k}_cv1/_cv2/_cv3` and its `m.k.m.j.cv1/cv2 -> {c}_m{k}_m{j}_1/_2`.
Inside the C2PSA: `m.k.attn.qkv/proj/pe -> stack4_c2psa_m{k}_attn_qkv/_proj/_pe`
and `m.k.ffn.0/1 -> stack4_c2psa_m{k}_ffn1/_ffn2`.
"""

from edgedet.models.ultralytics_weights import module_keys
from edgedet.models.yolo_v8_ultralytics import (
    REG_MAX,
    check_reg_max,
    count_blocks,
    match_preset,
    out_channels,
)

HEAD = "model.23"
PRESET_PREFIX = "yolo11"
TITLE = "Ultralytics YOLO11 detection models (yolo11n/s/m/l/x.yaml and custom scales of it)"
# Edgedet name of each C3k2, by Ultralytics module index, in `c3k2_depths` order.
C3K2 = {2: "stack1_c3k2", 4: "stack2_c3k2", 6: "stack3_c3k2", 8: "stack4_c3k2",
        13: "fpn_p4_c3k2", 16: "fpn_p3_c3k2", 19: "pan_p4_c3k2", 22: "pan_p5_c3k2"}
CONVS = {0: "stem_1", 1: "stem_2", 3: "stack2_downsample", 5: "stack3_downsample",
         7: "stack4_downsample", 17: "pan_p4_downsample", 20: "pan_p5_downsample"}


def why_not(state_dict):
    """Returns why a detection `state_dict` is not a YOLO11, or None when it is one."""
    modules = module_keys(state_dict)
    last = max(modules)
    head = modules[last]
    levels = {k.split(".")[1] for k in head if k.startswith("cv2.")}
    if last != 23 or len(levels) != 3:
        return (f"its head is at model.{last} with {len(levels)} levels; YOLO11 has its "
                "3-level head at model.23")
    if not any(".attn.qkv." in k for k in modules.get(10, ())):
        return "it has no C2PSA attention block at model.10"
    if not any(k.startswith("cv3.0.0.0.") for k in head):
        return "its class branch is not depthwise (a `legacy` YOLOv8-style head)"
    box = state_dict.get(f"{HEAD}.cv2.0.2.weight")
    if box is not None and box.shape[0] != 4 * REG_MAX:
        return (f"its box branch has reg_max {box.shape[0] // 4} (YOLO11 has {REG_MAX}; "
                "reg_max 1 is YOLO26's)")
    return None


def infer_layout(state_dict):
    """Reads the YOLO11 layout (`YOLO11Detector` arguments) from tensor shapes.

    Raises:
        UltralyticsImportError: for a missing tensor or a reg_max other than 16.
    """
    check_reg_max(state_dict, HEAD, "YOLO11")
    return read_layout(state_dict)


def read_layout(state_dict):
    """The arguments of a C3k2 detector (YOLO11's, YOLO26's) read from tensor shapes.

    Raises:
        UltralyticsImportError: for a missing tensor.
    """
    return {
        "num_classes": out_channels(state_dict, f"{HEAD}.cv3.0.2.weight"),
        "stackwise_channels": [
            out_channels(state_dict, key) for key in (
                "model.0.conv.weight", "model.1.conv.weight", "model.2.cv2.conv.weight",
                "model.4.cv2.conv.weight", "model.8.cv2.conv.weight")
        ],
        "c3k2_depths": [count_blocks(state_dict, i) for i in C3K2],
        "c3k": [f"model.{i}.m.0.cv3.conv.weight" in state_dict for i in C3K2],
        "psa_depth": count_blocks(state_dict, 10),
        "head_class_channels": out_channels(state_dict, f"{HEAD}.cv3.0.0.1.conv.weight"),
    }


def matching_preset(layout):
    """Returns `"yolo11n"` ... `"yolo11x"` when `layout` is that Ultralytics scale, else None."""
    from edgedet.models.yolo11_presets import get_preset

    return match_preset(layout, PRESET_PREFIX, get_preset, 2)


def weight_table(model):
    """Lists `(ultralytics_prefix, edgedet_layer_prefix, kind)` for every weighted block.

    `kind` is `"conv_bn"` (an Ultralytics `Conv` or `DWConv`) or `"conv"`
    (a plain `nn.Conv2d` with bias), as in `yolo_v8_ultralytics.weight_table`.

    Args:
        model: edgedet `YOLO11Detector` (its depths and `c3k` select the blocks).
    """
    return network_table(model) + head_table(HEAD, "yolo11_head")


def network_table(model, last_attention=False):
    """The weight table of the network up to the head (YOLO11's, and YOLO26's).

    Args:
        model: edgedet detector with `c3k2_depths`, `c3k` and `psa_depth`.
        last_attention: bool. The last C3k2 (model.22) has YOLO26's inner
            blocks: `m.k.0` a Bottleneck (`{c}_m{k}_1/_2`) and `m.k.1` a
            PSABlock (`{c}_m{k}_psa_*`). Defaults to False.
    """
    table = [(f"model.{i}", name, "conv_bn") for i, name in CONVS.items()]

    def bottleneck(prefix, name):
        table.append((f"{prefix}.cv1", f"{name}_1", "conv_bn"))
        table.append((f"{prefix}.cv2", f"{name}_2", "conv_bn"))

    def psa_block(prefix, name):
        for part in ("qkv", "proj", "pe"):
            table.append((f"{prefix}.attn.{part}", f"{name}_attn_{part}", "conv_bn"))
        table.append((f"{prefix}.ffn.0", f"{name}_ffn1", "conv_bn"))
        table.append((f"{prefix}.ffn.1", f"{name}_ffn2", "conv_bn"))

    for (index, name), depth, c3k in zip(C3K2.items(), model.c3k2_depths, model.c3k):
        table.append((f"model.{index}.cv1", f"{name}_cv1", "conv_bn"))
        for k in range(depth):
            inner, block = f"model.{index}.m.{k}", f"{name}_m{k}"
            if last_attention and index == max(C3K2):
                bottleneck(f"{inner}.0", block)
                psa_block(f"{inner}.1", f"{block}_psa")
            elif c3k:
                for cv in ("cv1", "cv2", "cv3"):
                    table.append((f"{inner}.{cv}", f"{block}_{cv}", "conv_bn"))
                for j in range(2):
                    bottleneck(f"{inner}.m.{j}", f"{block}_m{j}")
            else:
                bottleneck(inner, block)
        table.append((f"model.{index}.cv2", f"{name}_cv2", "conv_bn"))
    table.append(("model.9.cv1", "stack4_spp_fast_pre", "conv_bn"))
    table.append(("model.9.cv2", "stack4_spp_fast_output", "conv_bn"))
    table.append(("model.10.cv1", "stack4_c2psa_cv1", "conv_bn"))
    for k in range(model.psa_depth):
        psa_block(f"model.10.m.{k}", f"stack4_c2psa_m{k}")
    table.append(("model.10.cv2", "stack4_c2psa_cv2", "conv_bn"))
    return table


def head_table(head, name, prefix=""):
    """The weight table of a YOLO11-style `Detect` head's branches.

    Args:
        head: str. The head module (`"model.23"`).
        name: str. The edgedet head's layer prefix (`"yolo11_head"`).
        prefix: str. The Ultralytics branches' prefix: `""` (`cv2`/`cv3`) or
            `"one2one_"` (YOLO26's one-to-one head). Defaults to `""`.
    """
    table = []
    for i in range(3):
        level = f"{name}_{i + 1}"
        box, cls = f"{head}.{prefix}cv2.{i}", f"{head}.{prefix}cv3.{i}"
        table.append((f"{box}.0", f"{level}_box_1", "conv_bn"))
        table.append((f"{box}.1", f"{level}_box_2", "conv_bn"))
        table.append((f"{box}.2", f"{level}_box_3_conv", "conv"))
        for j in range(2):
            table.append((f"{cls}.{j}.0", f"{level}_class_{j + 1}_dw", "conv_bn"))
            table.append((f"{cls}.{j}.1", f"{level}_class_{j + 1}", "conv_bn"))
        table.append((f"{cls}.2", f"{level}_class_3_conv", "conv"))
    return table
