"""The model families in Keras 3 (YOLOv8, YOLO11, YOLO26): detectors, presets, importers.

The names below are imported lazily (PEP 562), so `edgedet.models.preset_names`
and `get_preset` (every family's presets, from `edgedet.models.families`) cost
no Keras import (the CLI's `--help` lists presets); `YOLOV8Detector`,
`from_preset`, `load_model`, ... import Keras on first use.
"""

import importlib

_EXPORTS = {
    "YOLOV8Detector": "edgedet.models.yolo_v8_detector",
    "YOLO11Detector": "edgedet.models.yolo11_detector",
    "YOLO26Detector": "edgedet.models.yolo26_detector",
    "PRESETS": "edgedet.models.yolo_v8_presets",
    "preset_names": "edgedet.models.families",
    "get_preset": "edgedet.models.families",
    "from_preset": "edgedet.models.families",
    "load_model": "edgedet.models.loading",
    "describe_model": "edgedet.models.loading",
    "ModelLoadError": "edgedet.models.loading",
    "from_kerascv": "edgedet.models.kerascv_import",
    "KerasCVImportError": "edgedet.models.kerascv_import",
    "from_ultralytics": "edgedet.models.ultralytics_import",
    "read_ultralytics_weights": "edgedet.models.ultralytics_weights",
    "UltralyticsImportError": "edgedet.models.ultralytics_weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgedet.models' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
