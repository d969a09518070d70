"""YOLO26 architecture presets (no weights: edgedet downloads nothing).

`yolo26n` ... `yolo26x` follow Ultralytics' `yolo26.yaml` scales (depth,
width, max_channels) as `ultralytics.nn.tasks.parse_model` applies them
(see `edgedet.models.yolo11_presets`, whose scales and widths they share):
the neck's C3k2s all use C3k inner blocks, the last one (layer 22, one
repeat in the yaml) a Bottleneck and a PSABlock; for m, l and x every C3k2
has `c3k` set (the parser forces it). With 80 classes their trainable
parameter counts equal Ultralytics' unfused model summaries, both heads
counted (yolo26n: 2,572,280; no DFL weights, reg_max is 1).

`yolo26_tiny` is a small YOLO26 for tests.
"""

from edgedet.models.detector_common import preset_arguments
from edgedet.models.yolo11_presets import PRESETS as YOLO11_PRESETS
from edgedet.models.yolo11_presets import ultralytics_preset

# name: (depth_multiple, width_multiple, max_channels), as in yolo11.yaml.
_ULTRALYTICS_SCALES = {
    "yolo26n": (0.50, 0.25, 1024),
    "yolo26s": (0.50, 0.50, 1024),
    "yolo26m": (0.50, 1.00, 512),
    "yolo26l": (1.00, 1.00, 512),
    "yolo26x": (1.00, 1.50, 512),
}
# The C3k2s in order (layers 2, 4, 6, 8, 13, 16, 19, 22): `c3k` and repeats in the yaml.
_YAML_C3K = (False, False, True, True, True, True, True, True)
_YAML_REPEATS = (2, 2, 2, 2, 2, 2, 2, 1)

PRESETS = {
    name: ultralytics_preset(*scale, force_c3k=name[-1] in "mlx", yaml_c3k=_YAML_C3K,
                             yaml_repeats=_YAML_REPEATS)
    for name, scale in _ULTRALYTICS_SCALES.items()
}
# yolo11_tiny's widths and depths, with yolo26.yaml's c3k.
PRESETS["yolo26_tiny"] = dict(YOLO11_PRESETS["yolo11_tiny"], c3k=list(_YAML_C3K))


def preset_names():
    """Returns the preset names, in size order."""
    return list(PRESETS)


def get_preset(name):
    """A copy of preset `name`'s constructor arguments; a `ValueError` names the valid ones."""
    return preset_arguments(PRESETS, name, "YOLO26")
