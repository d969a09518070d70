"""COCO evaluation through the end-to-end graph users get.

Predictions come from `edgedet.runtimes.keras_model.KerasRuntime` (the same
letterbox, decode and NMS the exported artifacts run) with mAP-style NMS
settings (confidence 0.001, up to 300 detections), and are scored by
pycocotools through `edgedet.metrics.coco_map`.
"""

import numpy as np

from edgedet.config import InferenceConfig, NMSConfig

EVAL_NMS = NMSConfig(iou_threshold=0.7, confidence_threshold=0.001, max_detections=300)


def eval_config(model, nms=None):
    """The model's letterbox and box format with mAP-style NMS settings."""
    return InferenceConfig(
        letterbox=model.letterbox,
        nms=EVAL_NMS if nms is None else nms,
        bounding_box_format="xyxy",
    )


def ground_truth(dataset):
    """`(images, detections)`: uint8 images and ground-truth `Detections` of a dataset."""
    from edgedet.detections import Detections

    images, truth = [], []
    for item in dataset:
        images.append(np.asarray(item["image"], np.uint8))
        boxes = np.asarray(item["boxes"], np.float32).reshape(-1, 4)
        truth.append(
            Detections(
                boxes=boxes,
                confidence=np.ones(len(boxes), np.float32),
                classes=np.asarray(item["classes"], np.int32).reshape(-1),
            )
        )
    return images, truth


class Evaluator:
    """Scores a model on a fixed set of images; reusable across epochs.

    The end-to-end graph is built once and reads the model's variables when
    it runs, so assigning new weights (e.g. the EMA) between calls is enough.

    Args:
        model: `edgedet.models.YOLOV8Detector`.
        dataset: `edgedet.data.DetectionDataset` (xyxy pixel boxes).
        batch_size: int. Images per inference batch. Defaults to 16.
        nms: `NMSConfig` or None (mAP settings). Defaults to None.
    """

    def __init__(self, model, dataset, batch_size=16, nms=None):
        if len(dataset) == 0:
            raise ValueError(f"The validation dataset {dataset!r} is empty: nothing to evaluate.")
        from edgedet.runtimes.keras_model import KerasRuntime

        self.images, self.truth = ground_truth(dataset)
        self.batch_size = int(batch_size)
        self.runtime = KerasRuntime(model, config=eval_config(model, nms))
        self.runtime.__enter__()

    def predict(self):
        """Returns the `Detections` of every image."""
        results = []
        for start in range(0, len(self.images), self.batch_size):
            results.extend(self.runtime.predict(self.images[start : start + self.batch_size]))
        return results

    def __call__(self):
        """Returns `{"map50_95", "map50"}`."""
        from edgedet.metrics import coco_map

        return coco_map(self.truth, self.predict())

    def close(self):
        self.runtime.__exit__(None, None, None)


def evaluate(model, dataset, batch_size=16, nms=None):
    """COCO mAP50-95 and mAP50 of `model` on `dataset`.

    Example:

    ```python
    model = edgedet.models.load_model("runs/shapes/best.keras")
    evaluate(model, load_dataset("synthetic:shapes?n=500&seed=1&size=256", split="val"))
    # {"map50_95": 0.83, "map50": 0.97}
    ```

    Args:
        model: `edgedet.models.YOLOV8Detector`.
        dataset: `edgedet.data.DetectionDataset`.
        batch_size: int. Defaults to 16.
        nms: `NMSConfig` or None (confidence 0.001, IoU 0.7, 300
            detections). Defaults to None.

    Returns:
        `{"map50_95": float, "map50": float}`.
    """
    evaluator = Evaluator(model, dataset, batch_size=batch_size, nms=nms)
    try:
        return evaluator()
    finally:
        evaluator.close()
