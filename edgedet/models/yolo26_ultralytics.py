"""YOLO26's Ultralytics key map: recognition, layout and tensor names.

The `yolo26` family's `ultralytics_path`. Ultralytics' `yolo26.yaml` has
YOLO11's module indices, so the names are `edgedet.models.yolo11_ultralytics`'
but for:

    model.9                     SPPF    stack4_spp_fast (cv1 without activation, residual)
    model.22.m.k.0.cv1/cv2      Bottleneck  pan_p5_c3k2_m{k}_1/_2
    model.22.m.k.1              PSABlock    pan_p5_c3k2_m{k}_psa_attn_qkv/_proj/_pe, _ffn1/_ffn2
    model.23.cv2/cv3            one-to-many head   yolo26_head_{i+1}_* (as YOLO11's head)
    model.23.one2one_cv2/cv3    one-to-one head    yolo26_one2one_head_{i+1}_*

The box branches end in 4 channels (reg_max 1) and there is no DFL tensor.
A checkpoint must have both heads: a YOLO26 trained with `end2end: False`
(no one-to-one head) or one fused for inference (one head left) is refused.
"""

from edgedet.models.ultralytics_weights import UltralyticsImportError, module_keys
from edgedet.models.yolo11_ultralytics import head_table, network_table, read_layout
from edgedet.models.yolo_v8_ultralytics import match_preset, out_channels

HEAD = "model.23"
PRESET_PREFIX = "yolo26"
TITLE = "Ultralytics YOLO26 detection models (yolo26n/s/m/l/x.yaml and custom scales of it)"
# Modules Ultralytics' YOLO26 builds without activation (besides attention blocks').
UNACTIVATED = ("model.9.cv1",)
REG_MAX = 1


def why_not(state_dict):
    """Returns why a detection `state_dict` is not a YOLO26, or None when it is one."""
    modules = module_keys(state_dict)
    last = max(modules)
    head = modules[last]
    levels = {k.split(".")[1] for k in head if k.startswith("cv2.")}
    one2one = {k.split(".")[1] for k in head if k.startswith("one2one_cv2.")}
    if last != 23 or len(levels | one2one) != 3:
        return (f"its head is at model.{last} with {len(levels | one2one)} levels; YOLO26 has "
                "its 3-level head at model.23")
    if not levels or not one2one:
        kept = "one-to-one (one2one_cv2/cv3)" if one2one else "one-to-many (cv2/cv3)"
        return (f"its head has only the {kept} branches; edgedet's YOLO26 needs both heads "
                "(a checkpoint as Ultralytics trains it, not a model fused for inference or "
                "trained with end2end: False)")
    box = f"{HEAD}.cv2.0.2.weight"
    if box in state_dict and out_channels(state_dict, box) != 4 * REG_MAX:
        return (f"'{box}' has {out_channels(state_dict, box)} output channels (reg_max "
                f"{out_channels(state_dict, box) // 4}, a DFL head as YOLOv10's); YOLO26 has "
                "reg_max 1 (4 channels)")
    if not any(".attn.qkv." in k for k in modules.get(10, ())):
        return "it has no C2PSA attention block at model.10"
    if not any(k.startswith("m.0.1.attn.qkv.") for k in modules.get(22, ())):
        return "its last C3k2 (model.22) has no attention block"
    return None


def infer_layout(state_dict):
    """Reads the YOLO26 layout (`YOLO26Detector` arguments) from tensor shapes.

    The last C3k2's `c3k` is True, as in the yaml (its attention blocks
    ignore it).

    Raises:
        UltralyticsImportError: for a missing tensor or a reg_max other than 1.
    """
    box_channels = out_channels(state_dict, f"{HEAD}.cv2.0.2.weight")
    if box_channels != 4 * REG_MAX:
        raise UltralyticsImportError(
            f"'{HEAD}.cv2.0.2.weight' has {box_channels} output channels, i.e. reg_max "
            f"{box_channels // 4}; edgedet's YOLO26 has reg_max 1 (4 channels, no DFL)."
        )
    layout = read_layout(state_dict)
    layout["c3k"][-1] = True
    return layout


def matching_preset(layout):
    """Returns `"yolo26n"` ... `"yolo26x"` when `layout` is that Ultralytics scale, else None."""
    from edgedet.models.yolo26_presets import get_preset

    return match_preset(layout, PRESET_PREFIX, get_preset, 2)


def weight_table(model):
    """Lists `(ultralytics_prefix, edgedet_layer_prefix, kind)` for every weighted block.

    As `yolo11_ultralytics.weight_table`, with the attention blocks of
    model.22 and both heads.

    Args:
        model: edgedet `YOLO26Detector`.
    """
    return (network_table(model, last_attention=True) + head_table(HEAD, "yolo26_head")
            + head_table(HEAD, "yolo26_one2one_head", prefix="one2one_"))
