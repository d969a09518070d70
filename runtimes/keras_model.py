"""The reference runtime: the Keras model through the same end-to-end graph.

It runs exactly what every exporter converts (`build_end_to_end`), in
float32 with TensorFlow, so parity checks compare artifacts against the
function they were exported from.
"""

from pathlib import Path

from edgedet import backend
from edgedet.runtimes.base import Runtime

TARGET = "keras"


class KerasRuntime(Runtime):
    """Runs a Keras YOLOv8 (live, or loaded from a `.keras` file) end to end.

    Args:
        model: a Keras YOLOv8 (`edgedet.models.YOLOV8Detector`), or a path to
            a `.keras` file.
        config: `InferenceConfig` or None. Defaults to the model's
            `default_inference_config()`.
        debug: bool. Also return `pre_nms_boxes` / `pre_nms_scores` from
            `infer`. Defaults to False.
    """

    kind = "keras"

    def __init__(self, model, config=None, debug=False):
        is_path = isinstance(model, (str, Path))
        super().__init__(Path(model) if is_path else None)
        self.model = None if is_path else model
        self.config = config
        self.debug = debug
        self.end_to_end = None

    def _get_model(self):
        if self.model is None:
            from edgedet.models import load_model

            self.model = load_model(self.path)
        return self.model

    def _get_config(self):
        if self.config is None:
            self.config = self._get_model().default_inference_config()
        return self.config

    def _read_metadata(self):
        from edgedet.metadata import artifact_metadata

        return artifact_metadata(self._get_model(), self._get_config(), target=TARGET)

    def _load(self):
        from edgedet.end_to_end import build_end_to_end

        self.end_to_end = build_end_to_end(self._get_model(), self._get_config(), debug=self.debug)

    def _release(self):
        self.end_to_end = None

    def _infer(self, batch):
        tf = backend.tensorflow()

        outputs = self.end_to_end.serve(tf.constant(batch))
        return {name: value.numpy() for name, value in outputs.items()}
