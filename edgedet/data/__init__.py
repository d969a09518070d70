"""Datasets: COCO JSON, YOLO txt and VOC XML readers and writers, and synthetic shapes.

Every dataset is a `DetectionDataset`: `len()`, indexing and iteration in a
fixed order, `class_names`, `bounding_box_format` (`"xyxy"` pixels), and
samples `{"image", "boxes", "classes", "image_id", "file_name"}`. Nothing here
imports TensorFlow.

```python
from edgedet.data import load_dataset, sample

dataset = load_dataset("synthetic:shapes?n=200&seed=0&size=320")
dataset.write("/tmp/shapes", format="coco")
calibration = sample(load_dataset("/tmp/shapes"), 64, seed=0)
```

The formats are rows of one table (`edgedet.data.formats`); each format module
registers its row, and importing it here is what makes it known. A new format
is one module and one import line below.
"""

from edgedet.data.coco import read_coco, write_coco
from edgedet.data.dataset import (
    BOUNDING_BOX_FORMAT,
    ON_INVALID,
    AnnotationWarning,
    DatasetError,
    DetectionDataset,
    Record,
    RecordDataset,
    Subset,
    sample,
    to_keras_cv,
)
from edgedet.data.formats import DatasetFormat, get_format, register_format
from edgedet.data.loading import load_dataset
from edgedet.data.synthetic import CLASSES, SyntheticShapes
from edgedet.data.voc import read_voc, write_voc
from edgedet.data.writing import write_dataset
from edgedet.data.yolo import read_yolo, write_yolo

__all__ = [
    "BOUNDING_BOX_FORMAT",
    "CLASSES",
    "ON_INVALID",
    "AnnotationWarning",
    "DatasetError",
    "DatasetFormat",
    "DetectionDataset",
    "Record",
    "RecordDataset",
    "Subset",
    "SyntheticShapes",
    "get_format",
    "load_dataset",
    "read_coco",
    "read_voc",
    "read_yolo",
    "register_format",
    "sample",
    "to_keras_cv",
    "write_coco",
    "write_dataset",
    "write_voc",
    "write_yolo",
]
