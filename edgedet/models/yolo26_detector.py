"""`YOLO26Detector`: Ultralytics' YOLO26 in Keras 3, returning both raw heads.

The network of `ultralytics/cfg/models/26/yolo26.yaml` is YOLO11's
(`edgedet.models.yolo11_detector`, layer indices alike) but for three
things: the SPPF [9] has no activation on its first conv and adds its input
to its output; every neck C3k2 uses C3k blocks and the last one [22] a
Bottleneck then a PSABlock; and `Detect` [23] has `reg_max` 1 (the box
branch predicts the four distances, no DFL) and two copies of its branches
(`end2end`): the one-to-many head (`cv2`/`cv3`, trained with TAL, decoded
then NMS) and the one-to-one head (`one2one_cv2`/`one2one_cv3`, NMS-free: a
top-k selection). Both are in the model; the end-to-end graph picks one.
"""

from edgedet.backend import keras as _keras
from edgedet.models import yolo26_presets
from edgedet.models.detector_common import raw_head_outputs
from edgedet.models.yolo11_detector import C3k2DetectorMixin, apply_yolo11_head

keras = _keras()

HEAD = "yolo26_head"
ONE2ONE_HEAD = "yolo26_one2one_head"
ONE2ONE_PREFIX = "one2one_"
REG_MAX = 1


def yolo26_head_outputs(features, num_classes, class_channels, activation):
    """Both YOLO26 heads' raw outputs: `boxes`, `classes`, `one2one_boxes`, `one2one_classes`.

    Each head is YOLO11's `Detect` with reg_max 1 (`apply_yolo11_head`), the
    one-to-many named `yolo26_head_*`, the one-to-one `yolo26_one2one_head_*`.
    """
    outputs = {}
    for name, prefix in ((HEAD, ""), (ONE2ONE_HEAD, ONE2ONE_PREFIX)):
        boxes, classes = apply_yolo11_head(features, num_classes, class_channels, activation,
                                           name=name, reg_max=REG_MAX)
        outputs.update(raw_head_outputs(boxes, classes, prefix))
    return outputs


@keras.saving.register_keras_serializable(package="edgedet")
class YOLO26Detector(C3k2DetectorMixin, keras.Model):
    """YOLO26 detector (YOLO11's network, residual SPPF, attention in the last C3k2, two heads).

    Takes float32 images `[B, H, W, 3]` (H and W multiples of 32; pixels
    0-255 when `include_rescaling`) and returns both raw heads, float32,
    anchors ordered as `YOLOV8Detector`'s:
    `{"boxes": [B, A, 4], "classes": [B, A, num_classes]}` of the
    one-to-many head and `{"one2one_boxes", "one2one_classes"}` of the same
    shapes of the one-to-one head. Boxes are the left, top, right, bottom
    distances from the anchor centre in strides (`edgedet.decode.
    decode_distances`); classes are LOGITS.

    Args: those of `YOLO11Detector` (`num_classes`, `stackwise_channels`,
        `c3k2_depths`, `c3k`, `psa_depth`, `head_class_channels`,
        `include_rescaling`, `activation`, `bounding_box_format`,
        `class_names`, `letterbox`, `preset`), with yolo26.yaml's widths
        (yolo26n: `[16, 32, 64, 128, 256]`); the last C3k2's `c3k` is
        ignored (its inner blocks are attention blocks).

    Example:
    ```python
    model = edgedet.models.YOLO26Detector.from_preset("yolo26n", num_classes=3)
    raw = model(np.zeros((1, 640, 640, 3), "float32"))
    raw["boxes"].shape, raw["one2one_classes"].shape    # (1, 8400, 4), (1, 8400, 3)
    ```
    """

    PRESETS = yolo26_presets
    SPPF_SHORTCUT = True
    LAST_ATTENTION = True
    head_outputs = staticmethod(yolo26_head_outputs)

    @property
    def reg_max(self):
        """1: `boxes` are the four distances themselves (no DFL)."""
        return REG_MAX


def init_head_biases(detector, head_output_layers, objects_per_image=5.0):
    """Ultralytics' `Detect.bias_init` on both heads (`head_output_layers`: one-to-many
    then one-to-one, each per level box then class)."""
    from edgedet.models.heads import init_detect_head_biases

    half = len(head_output_layers) // 2
    for names in (head_output_layers[:half], head_output_layers[half:]):
        init_detect_head_biases(detector, names, objects_per_image)
