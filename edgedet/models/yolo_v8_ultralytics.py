"""YOLOv8's Ultralytics key map: recognition, layout and tensor names.

Ultralytics' YOLOv8 (`yolov8.yaml`) and edgedet's are the same network, so
every tensor has one place to go. The layout (widths, C2f depths, classes,
class-branch width) is read from the tensor shapes, so custom scales import
too. Ultralytics module indices and edgedet layer names:

    model.0, model.1        Conv      stem_1, stem_2
    model.2/4/6/8           C2f       stack1..4_c2f  (cv1 -> _pre, m.k.cv1 -> _pre_k_1,
                                                      m.k.cv2 -> _pre_k_2, cv2 -> _output)
    model.3/5/7             Conv      stack2..4_downsample
    model.9                 SPPF      stack4_spp_fast (cv1 -> _pre, cv2 -> _output)
    model.12, model.15      C2f       pa_fpn_p4p5, pa_fpn_p3p4p5
    model.16, model.19      Conv      pa_fpn_p3p4p5_downsample1, _downsample2
    model.18, model.21      C2f       pa_fpn_p3p4p5_downsample1_block, _downsample2_block
    model.22.cv2.i.{0,1,2}  box       yolo_v8_head_{i+1}_box_1, _box_2, _box_3_conv
    model.22.cv3.i.{0,1,2}  class     yolo_v8_head_{i+1}_class_1, _class_2, _class_3_conv
    model.22.dfl            fixed     (checked to be arange(16); edgedet's decode applies it)

(10, 13: Upsample and 11, 14, 17, 20: Concat have no weights.) The module
is the `yolo_v8` family's `ultralytics_path`; `edgedet.models.ultralytics_import`
reads the weights, finds the family and copies the tensors.
"""

import re

from edgedet.models.ultralytics_weights import UltralyticsImportError, module_keys

HEAD = "model.22"
REG_MAX = 16
PRESET_PREFIX = "yolov8"
SIZES = ("n", "s", "m", "l", "x")
TITLE = "Ultralytics YOLOv8 detection models (yolov8n/s/m/l/x.yaml and custom scales of it)"


def why_not(state_dict):
    """Returns why a detection `state_dict` is not a YOLOv8, or None when it is one."""
    modules = module_keys(state_dict)
    last = max(modules)
    head = modules[last]
    if any(".attn." in k for m in modules.values() for k in m) or any(
        k.startswith("cv3.0.0.0.") for k in head
    ) or any(k.startswith("m.0.m.") for m in modules.values() for k in m):
        return "it is a YOLO11 model (C3k2 / C2PSA blocks, depthwise class branch)"
    if any(k == "cv3.conv.weight" for m in modules.values() for k in m):
        return "it is a YOLOv5u model (C3 blocks)"
    levels = {k.split(".")[1] for k in head if k.startswith("cv2.")}
    if last != 22 or len(levels) != 3:
        return (
            f"its head is at model.{last} with {len(levels)} levels; edgedet imports the "
            "3-level (P3-P5) YOLOv8 with its head at model.22 (not YOLOv8-p2 / -p6 or other "
            "families)"
        )
    return None


def out_channels(state_dict, key):
    if key not in state_dict:
        raise UltralyticsImportError(f"Missing tensor '{key}': the weights are incomplete.")
    return int(state_dict[key].shape[0])


def check_reg_max(state_dict, head, family):
    """Raises `UltralyticsImportError` unless the `Detect` head at `head` (e.g.
    `"model.22"`) has DFL's 16 bins per side, the only reg_max edgedet's `family` has."""
    box_channels = out_channels(state_dict, f"{head}.cv2.0.2.weight")
    if box_channels != 4 * REG_MAX:
        raise UltralyticsImportError(
            f"'{head}.cv2.0.2.weight' has {box_channels} output channels, i.e. reg_max "
            f"{box_channels // 4}; edgedet's {family} uses reg_max {REG_MAX} (64 channels)."
        )


def count_blocks(state_dict, index):
    found = {int(m.group(1)) for k in state_dict
             if (m := re.match(rf"model\.{index}\.m\.(\d+)\.", k))}
    return len(found)


def infer_layout(state_dict):
    """Reads the YOLOv8 layout (edgedet constructor arguments) from tensor shapes.

    Args:
        state_dict: dict `{key: array}` of an Ultralytics YOLOv8 detector.

    Returns:
        dict with `num_classes`, `stackwise_channels`, `stackwise_depth`,
        `neck_depths`, `head_class_channels`.

    Raises:
        UltralyticsImportError: for another family or task, or a missing tensor.
    """
    check_reg_max(state_dict, HEAD, "YOLOv8")
    return {
        "num_classes": out_channels(state_dict, f"{HEAD}.cv3.0.2.weight"),
        "stackwise_channels": [out_channels(state_dict, f"model.{i}.cv2.conv.weight")
                               for i in (2, 4, 6, 8)],
        "stackwise_depth": [count_blocks(state_dict, i) for i in (2, 4, 6, 8)],
        "neck_depths": [count_blocks(state_dict, i) for i in (12, 15, 18, 21)],
        "head_class_channels": out_channels(state_dict, f"{HEAD}.cv3.0.0.conv.weight"),
    }


def match_preset(layout, prefix, get_preset, p3_index):
    """The preset `{prefix}n` ... `{prefix}x` whose arguments `layout` equals, else None.

    Every key of the preset but `letterbox` and `head_class_channels` must be
    equal; the class branch must be Ultralytics' width for the P3 channels
    `stackwise_channels[p3_index]` (`max(p3, min(num_classes, 100))`).
    """
    from edgedet.models.detector_common import ultralytics_class_channels

    for size in SIZES:
        preset = get_preset(f"{prefix}{size}")
        keys = set(preset) - {"letterbox", "head_class_channels"}
        p3 = preset["stackwise_channels"][p3_index]
        if all(layout.get(k) == preset[k] for k in keys) and layout.get(
            "head_class_channels"
        ) == ultralytics_class_channels(p3, layout["num_classes"]):
            return f"{prefix}{size}"
    return None


def matching_preset(layout):
    """Returns `"yolov8n"` ... `"yolov8x"` when `layout` is that Ultralytics scale, else None."""
    from edgedet.models.yolo_v8_presets import get_preset

    return match_preset(layout, PRESET_PREFIX, get_preset, 1)


def weight_table(model):
    """Lists `(ultralytics_prefix, edgedet_layer_prefix, kind)` for every weighted block.

    `kind` is `"conv_bn"` (an Ultralytics `Conv`: `{prefix}.conv` +
    `{prefix}.bn` onto `{layer}_conv` + `{layer}_bn`) or `"conv"` (a plain
    `nn.Conv2d` with bias onto layer `{layer}`).

    Args:
        model: edgedet `YOLOV8Detector` (its depths select the bottlenecks).
    """
    table = [("model.0", "stem_1", "conv_bn"), ("model.1", "stem_2", "conv_bn")]

    def c2f(index, name, depth):
        table.append((f"model.{index}.cv1", f"{name}_pre", "conv_bn"))
        for k in range(depth):
            table.append((f"model.{index}.m.{k}.cv1", f"{name}_pre_{k}_1", "conv_bn"))
            table.append((f"model.{index}.m.{k}.cv2", f"{name}_pre_{k}_2", "conv_bn"))
        table.append((f"model.{index}.cv2", f"{name}_output", "conv_bn"))

    for stage, depth in enumerate(model.stackwise_depth):
        if stage:
            table.append((f"model.{2 * stage + 1}", f"stack{stage + 1}_downsample", "conv_bn"))
        c2f(2 * stage + 2, f"stack{stage + 1}_c2f", depth)
    table.append(("model.9.cv1", "stack4_spp_fast_pre", "conv_bn"))
    table.append(("model.9.cv2", "stack4_spp_fast_output", "conv_bn"))
    d_p4p5, d_p3p4p5, d_down1, d_down2 = model.neck_depths
    c2f(12, "pa_fpn_p4p5", d_p4p5)
    c2f(15, "pa_fpn_p3p4p5", d_p3p4p5)
    table.append(("model.16", "pa_fpn_p3p4p5_downsample1", "conv_bn"))
    c2f(18, "pa_fpn_p3p4p5_downsample1_block", d_down1)
    table.append(("model.19", "pa_fpn_p3p4p5_downsample2", "conv_bn"))
    c2f(21, "pa_fpn_p3p4p5_downsample2_block", d_down2)
    for i in range(3):
        for branch, part in (("cv2", "box"), ("cv3", "class")):
            level = f"yolo_v8_head_{i + 1}_{part}"
            table.append((f"{HEAD}.{branch}.{i}.0", f"{level}_1", "conv_bn"))
            table.append((f"{HEAD}.{branch}.{i}.1", f"{level}_2", "conv_bn"))
            table.append((f"{HEAD}.{branch}.{i}.2", f"{level}_3_conv", "conv"))
    return table
