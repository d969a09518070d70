"""YOLOv8 architecture presets (no weights: edgedet downloads nothing).

`yolov8n` ... `yolov8x` follow Ultralytics' `yolov8.yaml` scales
(depth, width, max_channels): the backbone's C2f repeats `[3, 6, 6, 3]` and
the neck's `3` are scaled by `depth` (`max(round(n * depth), 1)`), the widths
`[128, 256, 512, 1024]` by `width` after capping at `max_channels`; all four
neck C2fs use the same depth and the class branch uses Ultralytics' width rule.
With 80 classes their trainable parameter counts equal Ultralytics' model
summaries minus the 16 fixed DFL weights (e.g. yolov8n: 3,157,200 - 16).

`tiny` is a few-thousand-parameter model for tests and smoke runs.
`pico` (~0.9 M parameters, input 224) is the architecture of edgedet's
built-in default model, trained on synthetic shapes (`edgedet.train`) and
shipped at a 320 px input (`edgedet.models.weights`).
"""

from edgedet.models.detector_common import preset_arguments

# name: (depth_multiple, width_multiple, max_channels)
_ULTRALYTICS_SCALES = {
    "yolov8n": (0.33, 0.25, 1024),
    "yolov8s": (0.33, 0.50, 1024),
    "yolov8m": (0.67, 0.75, 768),
    "yolov8l": (1.00, 1.00, 512),
    "yolov8x": (1.00, 1.25, 512),
}


def _ultralytics_preset(depth, width, max_channels):
    def repeats(n):
        return max(round(n * depth), 1)

    def channels(c):
        # Ultralytics' make_divisible(min(c, max_channels) * width, 8).
        return int(-(-min(c, max_channels) * width // 8) * 8)

    neck = repeats(3)
    return {
        "stackwise_channels": [channels(c) for c in (128, 256, 512, 1024)],
        "stackwise_depth": [repeats(n) for n in (3, 6, 6, 3)],
        "neck_depths": [neck] * 4,
        "head_class_channels": None,
        "letterbox": {"size": 640, "pad_position": "bottom_right", "pad_value": 0},
    }


PRESETS = {name: _ultralytics_preset(*scale) for name, scale in _ULTRALYTICS_SCALES.items()}
PRESETS["pico"] = {
    "stackwise_channels": [16, 32, 64, 128],
    "stackwise_depth": [1, 1, 1, 1],
    "neck_depths": [1, 1, 1, 1],
    "head_class_channels": None,
    "letterbox": {"size": 224, "pad_position": "bottom_right", "pad_value": 0},
}
PRESETS["tiny"] = {
    "stackwise_channels": [8, 16, 32, 64],
    "stackwise_depth": [1, 1, 1, 1],
    "neck_depths": [1, 1, 1, 1],
    "head_class_channels": None,
    "letterbox": {"size": 64, "pad_position": "bottom_right", "pad_value": 0},
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
    return preset_arguments(PRESETS, name, "YOLOv8")
