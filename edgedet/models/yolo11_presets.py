"""YOLO11 architecture presets (no weights: edgedet downloads nothing).

`yolo11n` ... `yolo11x` follow Ultralytics' `yolo11.yaml` scales (depth,
width, max_channels), as `ultralytics.nn.tasks.parse_model` applies them:
the yaml's five widths `[64, 128, 256, 512, 1024]` become
`make_divisible(min(c, max_channels) * width, 8)`; every C3k2 and the C2PSA
repeat `max(round(2 * depth), 1)` times; the C3k2s at layers 6, 8 and 22 use
C3k inner blocks, and for m, l and x every C3k2 does (the parser forces
`c3k`). With 80 classes their trainable parameter counts equal Ultralytics'
model summaries minus the 16 fixed DFL weights (yolo11n: 2,624,080 - 16).

`yolo11_tiny` is a small YOLO11 for tests (about 0.34 M parameters at 3 classes).
"""

from edgedet.models.detector_common import preset_arguments

# name: (depth_multiple, width_multiple, max_channels)
_ULTRALYTICS_SCALES = {
    "yolo11n": (0.50, 0.25, 1024),
    "yolo11s": (0.50, 0.50, 1024),
    "yolo11m": (0.50, 1.00, 512),
    "yolo11l": (1.00, 1.00, 512),
    "yolo11x": (1.00, 1.50, 512),
}
# The C3k2s in order (layers 2, 4, 6, 8, 13, 16, 19, 22): `c3k` in the yaml.
_YAML_C3K = (False, False, True, True, False, False, False, True)


def ultralytics_preset(depth, width, max_channels, force_c3k, yaml_c3k=_YAML_C3K,
                       yaml_repeats=(2,) * 8):
    """The constructor arguments of a scale of a C3k2 yaml (`yolo11.yaml`, `yolo26.yaml`).

    Args:
        depth, width, max_channels: the yaml's scale.
        force_c3k: bool. Every C3k2 uses C3k (parse_model does it for m, l, x).
        yaml_c3k: 8 bools. The yaml's `c3k` of each C3k2. Defaults to YOLO11's.
        yaml_repeats: 8 ints. The yaml's repeats of each C3k2. Defaults to 2 each.
    """
    def channels(c):
        # Ultralytics' make_divisible(min(c, max_channels) * width, 8).
        return int(-(-min(c, max_channels) * width // 8) * 8)

    def repeats(n):
        # parse_model: `max(round(n * depth), 1) if n > 1 else n`.
        return max(round(n * depth), 1) if n > 1 else n

    return {
        "stackwise_channels": [channels(c) for c in (64, 128, 256, 512, 1024)],
        "c3k2_depths": [repeats(n) for n in yaml_repeats],
        "c3k": [True] * 8 if force_c3k else list(yaml_c3k),
        "psa_depth": repeats(2),
        "head_class_channels": None,
        "letterbox": {"size": 640, "pad_position": "center", "pad_value": 114},
    }


PRESETS = {
    name: ultralytics_preset(*scale, force_c3k=name[-1] in "mlx")
    for name, scale in _ULTRALYTICS_SCALES.items()
}
PRESETS["yolo11_tiny"] = {
    "stackwise_channels": [8, 8, 16, 32, 64],
    "c3k2_depths": [1] * 8,
    "c3k": list(_YAML_C3K),
    "psa_depth": 1,
    "head_class_channels": None,
    "letterbox": {"size": 64, "pad_position": "center", "pad_value": 114},
}


def preset_names():
    """Returns the preset names, in size order."""
    return list(PRESETS)


def get_preset(name):
    """Returns a copy of the constructor arguments of preset `name`.

    Args:
        name: str. One of `preset_names()`.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    return preset_arguments(PRESETS, name, "YOLO11")
