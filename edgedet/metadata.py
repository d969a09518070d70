"""Metadata that travels inside (or beside) every artifact.

Exporters write `ArtifactMetadata.to_json()` into the artifact (ONNX
`metadata_props["edgedet"]`, a SavedModel asset, a TFLite associated file, a
sidecar JSON for engines); runtimes read it back with `from_json`, so a user
never re-types class names or thresholds. `artifact_metadata` makes it from a
Keras model (the export and the Keras reference runtime); nothing here imports
TensorFlow.
"""

import dataclasses
import hashlib
import json

import edgedet
from edgedet.config import InferenceConfig

SCHEMA_VERSION = 1
# Key under which the JSON is stored (ONNX metadata_props, file names).
METADATA_KEY = "edgedet"
PRECISIONS = ("fp32", "fp16", "int8")


class MetadataError(ValueError):
    """An artifact's edgedet metadata is missing or unreadable."""


@dataclasses.dataclass(frozen=True)
class ArtifactMetadata:
    """What an artifact is, and the settings baked into its graph.

    Args:
        class_names: list of str. Index i names class id i.
        inference: `InferenceConfig` (letterbox, NMS, output box format).
        target: str. Exporter target name, e.g. `"onnx"`.
        precision: str. One of `"fp32"`, `"fp16"`, `"int8"`.
        source_sha256: str. sha256 of the source model's weights.
        edgedet_version: str. Version that wrote the artifact.
        extra: dict. Target-specific facts (e.g. a fixed TFLite input size).
    """

    class_names: tuple
    inference: InferenceConfig
    target: str
    precision: str = "fp32"
    source_sha256: str = ""
    edgedet_version: str = edgedet.__version__
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "inference", InferenceConfig.from_dict(self.inference))
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"Invalid precision: '{self.precision}'. Expected one of {list(PRECISIONS)}."
            )

    @property
    def num_classes(self):
        return len(self.class_names)

    def to_dict(self):
        return {
            "schema_version": SCHEMA_VERSION,
            "edgedet_version": self.edgedet_version,
            "target": self.target,
            "precision": self.precision,
            "class_names": list(self.class_names),
            "inference": self.inference.to_dict(),
            "source_sha256": self.source_sha256,
            "extra": dict(self.extra),
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data, source="artifact"):
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: edgedet metadata is not a JSON object.")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MetadataError(
                f"{source}: edgedet metadata schema_version {version!r} is not supported "
                f"(this edgedet reads {SCHEMA_VERSION}). Re-export the artifact."
            )
        try:
            return cls(
                class_names=data["class_names"],
                inference=data["inference"],
                target=data["target"],
                precision=data.get("precision", "fp32"),
                source_sha256=data.get("source_sha256", ""),
                edgedet_version=data.get("edgedet_version", "unknown"),
                extra=data.get("extra", {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise MetadataError(f"{source}: invalid edgedet metadata: {e}") from e

    @classmethod
    def from_json(cls, text, source="artifact"):
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise MetadataError(f"{source}: edgedet metadata is not valid JSON: {e}") from e
        return cls.from_dict(data, source=source)


def weights_sha256(model):
    """sha256 over a Keras model's weights (names, shapes and bytes), in order."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = variable.numpy()
        digest.update(variable.path.encode())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def artifact_metadata(model, config, target, precision="fp32", extra=None):
    """The `ArtifactMetadata` of an artifact exported from `model`.

    Args:
        model: the Keras YOLOv8 (`edgedet.models.YOLOV8Detector`).
        config: `InferenceConfig` baked into the graph.
        target: str. Target name (`"keras"` for the reference runtime).
        precision: str. Defaults to `"fp32"`.
        extra: dict or None. Target-specific facts. Defaults to None.
    """
    class_names = getattr(model, "class_names", None)
    if not class_names:
        raise ValueError(
            f"Model '{getattr(model, 'name', model)}' has no class_names; edgedet needs "
            "them to write artifact metadata."
        )
    return ArtifactMetadata(
        class_names=tuple(class_names),
        inference=config,
        target=target,
        precision=precision,
        source_sha256=weights_sha256(model),
        extra=dict(extra or {}),
    )
