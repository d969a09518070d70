"""Inference settings shared by the end-to-end graph, every exporter and runtime.

These small frozen dataclasses are the contract of DESIGN.md in code: the
letterbox (how an image of any size becomes the square model input), the NMS
settings fixed at export time, and the output box format. They serialize to
plain dicts so they can travel inside a `.keras` file and inside every
artifact's metadata.
"""

import dataclasses

from edgedet.suggest import closest

PAD_POSITIONS = ("bottom_right", "center")
# Detection heads: one-to-many (NMS in the graph) and one-to-one (NMS-free top-k
# selection, `edgedet.topk`). Which a model carries: its family's `heads`.
HEADS = ("one2many", "one2one")
LETTERBOX_SHAPES = ("square", "rect")

# Largest image side the end-to-end graph accepts (pixels). The letterbox
# arithmetic is done in int32: 2 * MAX_IMAGE_SIDE * max model size must fit.
MAX_IMAGE_SIDE = 16384


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Invalid {name}: '{value}'. Expected one of {list(choices)}."
            + closest(value, choices)
        )


def _from_dict(cls, data, what):
    """Builds dataclass `cls` from `data`, naming unknown keys in the error."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"Expected a dict for {what}, received: {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} for {what}. Expected keys: {sorted(names)}."
        )
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class LetterboxConfig:
    """How an image of any size becomes the square model input.

    The longest side is scaled to `size` keeping the aspect ratio, then the
    image is padded to `size x size`. Rounding is defined once, in integers,
    so every runtime agrees to the pixel: for an image of height `h`, width
    `w` and `m = max(h, w)`, the resized height is
    `floor(h * size / m + 1/2) = (2 * h * size + m) // (2 * m)` (at least 1),
    likewise the width. Resizing is bilinear with half-pixel centers and no
    antialiasing (OpenCV's INTER_LINEAR). Padding is `pad_value` at the
    bottom/right (KerasCV) or split evenly with the extra pixel at the
    bottom/right (`center`, Ultralytics: top = (body_h - new_h) // 2).

    The padded body is `size x size` (`shape="square"`, what every exported
    model of Ultralytics' and ours takes), or, with `shape="rect"`, each side
    is padded only up to the next multiple of the model's largest stride, as
    Ultralytics' PyTorch `predict` does (`LetterBox(auto=True)`): a 1280x720
    frame becomes a 640x384 body, not 640x640. A rect body's shape depends on
    the image, so only runtimes that take a data-dependent network input
    shape can run it (the export target table says which).

    Args:
        size: int. Side of the square model input, a multiple of 32.
            Defaults to 640.
        pad_position: str. `"bottom_right"` (KerasCV) or `"center"`
            (Ultralytics). Defaults to `"bottom_right"`.
        pad_value: int. Pixel value of the padding, 0-255. Defaults to 0.
        shape: str. `"square"` or `"rect"`. Defaults to `"square"` (left out
            of `to_dict` then, so square metadata reads as before).
    """

    size: int = 640
    pad_position: str = "bottom_right"
    pad_value: int = 0
    shape: str = "square"

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 32 or self.size % 32:
            raise ValueError(
                f"Invalid letterbox size: {self.size!r}. Expected a multiple of 32 "
                "of at least 32 (YOLOv8's largest stride is 32)."
            )
        _check_choice("pad_position", self.pad_position, PAD_POSITIONS)
        if not isinstance(self.pad_value, int) or not 0 <= self.pad_value <= 255:
            raise ValueError(
                f"Invalid pad_value: {self.pad_value!r}. Expected an int in 0-255."
            )
        _check_choice("letterbox shape", self.shape, LETTERBOX_SHAPES)

    @classmethod
    def kerascv(cls, size=640):
        """KerasCV's `Resizing(pad_to_aspect_ratio=True)`: bottom-right, 0."""
        return cls(size=size, pad_position="bottom_right", pad_value=0)

    @classmethod
    def ultralytics(cls, size=640):
        """Ultralytics' `LetterBox`: centred, 114."""
        return cls(size=size, pad_position="center", pad_value=114)

    def to_dict(self):
        data = dataclasses.asdict(self)
        if self.shape == "square":
            del data["shape"]  # An edgedet without rect refuses a rect artifact, reads the rest.
        return data

    @classmethod
    def from_dict(cls, data):
        return _from_dict(cls, data, "letterbox")


@dataclasses.dataclass(frozen=True)
class NMSConfig:
    """Non-max suppression settings, fixed when an artifact is exported.

    Each anchor keeps only its best class (as KerasCV and Ultralytics do);
    anchors below `confidence_threshold` are dropped; boxes overlapping a
    higher-scoring box by more than `iou_threshold` are suppressed, within
    the same class when `class_aware` (the default), across all classes
    otherwise (KerasCV's `NonMaxSuppression` behaviour).

    Args:
        iou_threshold: float. Defaults to 0.7.
        confidence_threshold: float. Defaults to 0.25.
        max_detections: int. Fixed number of output rows per image.
            Defaults to 100.
        class_aware: bool. Defaults to True.
    """

    iou_threshold: float = 0.7
    confidence_threshold: float = 0.25
    max_detections: int = 100
    class_aware: bool = True

    def __post_init__(self):
        for name in ("iou_threshold", "confidence_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"Invalid {name}: {value!r}. Expected a float in [0, 1].")
        if not isinstance(self.max_detections, int) or self.max_detections < 1:
            raise ValueError(
                f"Invalid max_detections: {self.max_detections!r}. Expected an int >= 1."
            )

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return _from_dict(cls, data, "nms")


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Everything the end-to-end graph needs besides the network.

    Args:
        letterbox: `LetterboxConfig`. Defaults to KerasCV's letterbox at 640.
        nms: `NMSConfig`. Defaults to `NMSConfig()`.
        bounding_box_format: str. Format of the output `boxes`, in original
            image pixels (one of `edgedet.boxes.FORMATS`). Defaults to `"xyxy"`.
        head: str. The detection head the graph reads: `"one2many"` (NMS) or
            `"one2one"` (NMS-free top-k selection, `edgedet.topk`; the NMS
            settings other than `iou_threshold` still apply). Defaults to
            `"one2many"`.
    """

    letterbox: LetterboxConfig = dataclasses.field(default_factory=LetterboxConfig)
    nms: NMSConfig = dataclasses.field(default_factory=NMSConfig)
    bounding_box_format: str = "xyxy"
    head: str = "one2many"

    def __post_init__(self):
        from edgedet import boxes

        object.__setattr__(self, "letterbox", LetterboxConfig.from_dict(self.letterbox))
        object.__setattr__(self, "nms", NMSConfig.from_dict(self.nms))
        boxes.check_format(self.bounding_box_format)
        _check_choice("head", self.head, HEADS)

    def replace(self, **changes):
        """Returns a copy with top-level fields replaced."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return {
            "letterbox": self.letterbox.to_dict(),
            "nms": self.nms.to_dict(),
            "bounding_box_format": self.bounding_box_format,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, data):
        return _from_dict(cls, data, "inference config")
