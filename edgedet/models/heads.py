"""Head hooks shared by the families whose head is Ultralytics' `Detect` (YOLOv8, YOLO11).

Named by `edgedet.models.families.ModelFamily.head_bias_init_path`; numpy
only (the detector's layers are found by name).
"""

import math

import numpy as np


def init_detect_head_biases(detector, head_output_layers, objects_per_image=5.0):
    """Ultralytics' `Detect.bias_init`: box biases 1, class biases at a low prior.

    The class bias of level `i` is `log(objects / num_classes / cells_i)`,
    so the initial class loss is small and the first steps are stable.

    Args:
        detector: a Keras detector with `letterbox`, `strides` and
            `num_classes`.
        head_output_layers: tuple of str. Per level (in stride order) the box
            branch's last convolution, then the class branch's.
        objects_per_image: float. The prior's expected objects per image.
            Defaults to 5.0.
    """
    size = detector.letterbox.size
    pairs = list(zip(head_output_layers[0::2], head_output_layers[1::2]))
    if len(pairs) != len(detector.strides):
        raise ValueError(
            f"Expected one (box, class) pair of head layers per stride {tuple(detector.strides)}; "
            f"received {list(head_output_layers)}."
        )
    for (box_name, class_name), stride in zip(pairs, detector.strides):
        box = detector.get_layer(box_name)
        box.bias.assign(np.ones(box.bias.shape, "float32"))
        cls = detector.get_layer(class_name)
        prior = math.log(objects_per_image / detector.num_classes / (size / stride) ** 2)
        cls.bias.assign(np.full(cls.bias.shape, prior, "float32"))
