"""Training: tf.data pipeline, task-aligned assigner, YOLOv8 loss, `fit`, COCO evaluation.

```python
from edgedet.train import train

result = train("synthetic:shapes?n=2000&size=256", model="tiny", imgsz=256, epochs=10,
               out="runs/shapes")
```

Importing this package does not import TensorFlow; the submodules do.
"""

_EXPORTS = {
    "train": "edgedet.train.run",
    "TrainResult": "edgedet.train.run",
    "holdout_metrics": "edgedet.train.run",
    "evaluate": "edgedet.train.evaluate",
    "Evaluator": "edgedet.train.evaluate",
    "make_dataset": "edgedet.train.pipeline",
    "draw_batch": "edgedet.train.pipeline",
    "AugmentConfig": "edgedet.train.pipeline",
    "DetectionLoss": "edgedet.train.losses",
    "LossConfig": "edgedet.train.losses",
    "task_aligned_assign": "edgedet.train.assigner",
    "DetectorTrainer": "edgedet.train.trainer",
    "WarmupDecay": "edgedet.train.trainer",
    "NonFiniteLossError": "edgedet.train.callbacks",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgedet.train' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
