"""`Detections`: the detections of ONE image, as every runtime returns them.

Modelled on supervision's `Detections`: a small validated dataclass with
`from_*` adapters, `empty()`, `__len__` and `__iter__`. Boxes are in the
original image's pixels (or relative to its size for `rel_*` formats), in
`bounding_box_format`.

Example:

```python
outputs = {"boxes": ..., "confidence": ..., "classes": ..., "num_detections": ...}
for det in batch_from_padded(outputs, "xyxy"):
    for box, score, class_id in det:
        print(box, score, class_id)
```
"""

import dataclasses

import numpy as np

from edgedet import boxes as _boxes

PADDED_KEYS = ("boxes", "confidence", "classes", "num_detections")


def _to_numpy(value, name):
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected an array for `{name}`, received {value!r}.") from error


@dataclasses.dataclass
class Detections:
    """Detections of one image.

    Inputs are coerced to numpy (`boxes` and `confidence` to float32,
    `classes` to int32) and checked: shapes must agree, values must be
    finite, classes must be whole numbers >= 0, and the format must be one of
    `edgedet.boxes.FORMATS`.

    Args:
        boxes: array-like `[N, 4]`. Boxes in `bounding_box_format`.
        confidence: array-like `[N]`. Scores in `[0, 1]` (not enforced).
        classes: array-like `[N]`. Class ids, ints >= 0.
        bounding_box_format: str. Format of `boxes`. Defaults to `"xyxy"`.
    """

    boxes: np.ndarray
    confidence: np.ndarray
    classes: np.ndarray
    bounding_box_format: str = "xyxy"

    def __post_init__(self):
        _boxes.check_format(self.bounding_box_format)
        boxes = _to_numpy(self.boxes, "boxes").astype(np.float32)
        confidence = _to_numpy(self.confidence, "confidence").astype(np.float32)
        classes = _to_numpy(self.classes, "classes")
        if boxes.size == 0 and boxes.ndim < 2:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Expected `boxes` of shape [N, 4], received shape {boxes.shape}.")
        n = boxes.shape[0]
        for name, array in (("confidence", confidence), ("classes", classes)):
            if array.shape != (n,):
                raise ValueError(
                    f"Expected `{name}` of shape [{n}] to match `boxes` {boxes.shape}, "
                    f"received shape {array.shape}."
                )
        for name, array in (("boxes", boxes), ("confidence", confidence)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"`{name}` contains NaN or infinite values: {array.tolist()}.")
        if classes.dtype.kind not in "biu":
            if classes.dtype.kind != "f" or not np.all(
                np.isfinite(classes) & (classes == np.round(classes))
            ):
                raise ValueError(
                    f"Expected integer `classes`, received {classes.tolist()} "
                    f"(dtype {classes.dtype})."
                )
        if np.any(classes < 0):
            raise ValueError(f"Expected `classes` >= 0, received {classes.tolist()}.")
        self.boxes = boxes
        self.confidence = confidence
        self.classes = classes.astype(np.int32)

    @classmethod
    def empty(cls, bounding_box_format="xyxy"):
        """Returns a `Detections` with no rows."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int32),
            bounding_box_format,
        )

    def __len__(self):
        return self.boxes.shape[0]

    def __iter__(self):
        """Yields `(box [4] float32, confidence float, class_id int)` per row."""
        for i in range(len(self)):
            yield self.boxes[i], float(self.confidence[i]), int(self.classes[i])

    def __eq__(self, other):
        if not isinstance(other, Detections):
            return NotImplemented
        return (
            self.bounding_box_format == other.bounding_box_format
            and np.array_equal(self.boxes, other.boxes)
            and np.array_equal(self.confidence, other.confidence)
            and np.array_equal(self.classes, other.classes)
        )

    def at_least(self, min_score):
        """Returns a copy without the detections scoring below `min_score`."""
        keep = self.confidence >= min_score
        return Detections(self.boxes[keep], self.confidence[keep], self.classes[keep],
                          self.bounding_box_format)

    def to_format(self, bounding_box_format, image_shape=None):
        """Returns a copy with boxes converted to another format.

        Args:
            bounding_box_format: str. Target format, one of
                `edgedet.boxes.FORMATS`.
            image_shape: `(height, width)` of the image, needed when converting
                between a relative and an absolute format. Defaults to None.
        """
        converted = _boxes.convert_format(
            self.boxes, self.bounding_box_format, bounding_box_format, image_shape=image_shape
        )
        return Detections(converted, self.confidence, self.classes, bounding_box_format)

    def to_dict(self, class_names=None):
        """Returns JSON-ready rows, highest confidence first as stored.

        Args:
            class_names: sequence of str, indexed by class id, or None.
                Defaults to None (every `class_name` is None).

        Returns:
            A list of `{"box": [4 floats], "confidence": float,
            "class_id": int, "class_name": str or None}`.
        """
        if class_names is not None and len(self) and int(self.classes.max()) >= len(class_names):
            raise ValueError(
                f"Class id {int(self.classes.max())} has no name: received "
                f"{len(class_names)} class names {list(class_names)!r}."
            )
        return [
            {
                "box": [float(v) for v in box],
                "confidence": score,
                "class_id": class_id,
                "class_name": None if class_names is None else str(class_names[class_id]),
            }
            for box, score, class_id in self
        ]

    @classmethod
    def from_padded(cls, boxes, confidence, classes, num_detections, bounding_box_format="xyxy"):
        """Builds the detections of one image from fixed-size model outputs.

        The end-to-end graph pads its outputs to `max_detections` rows; only
        the first `num_detections` rows are real.

        Args:
            boxes: array-like `[max_det, 4]`.
            confidence: array-like `[max_det]`.
            classes: array-like `[max_det]`.
            num_detections: int or scalar array. Number of valid rows.
            bounding_box_format: str. Format of `boxes`. Defaults to `"xyxy"`.
        """
        boxes = _to_numpy(boxes, "boxes")
        count = _to_numpy(num_detections, "num_detections")
        if (
            count.size != 1
            or count.dtype.kind not in "iuf"
            or not float(count.reshape(())).is_integer()
        ):
            raise ValueError(
                f"Expected `num_detections` to be one integer, received {num_detections!r}."
            )
        count = int(count.reshape(()))
        rows = boxes.shape[0] if boxes.ndim else 0
        if not 0 <= count <= rows:
            raise ValueError(
                f"Invalid num_detections: {count}. Expected 0 <= num_detections <= "
                f"{rows} (rows in `boxes`, shape {boxes.shape})."
            )
        confidence = _to_numpy(confidence, "confidence")
        classes = _to_numpy(classes, "classes")
        for name, array in (("confidence", confidence), ("classes", classes)):
            if array.shape != (rows,):
                raise ValueError(
                    f"Expected `{name}` of shape [{rows}] to match `boxes` {boxes.shape}, "
                    f"received shape {array.shape}."
                )
        return cls(boxes[:count], confidence[:count], classes[:count], bounding_box_format)


def batch_from_padded(outputs, bounding_box_format="xyxy"):
    """Splits a batch of padded end-to-end outputs into one `Detections` per image.

    Args:
        outputs: dict with keys `"boxes"` `[B, max_det, 4]`, `"confidence"`
            `[B, max_det]`, `"classes"` `[B, max_det]` and `"num_detections"`
            `[B]` (numpy arrays or anything `np.asarray` accepts).
        bounding_box_format: str. Format of the boxes. Defaults to `"xyxy"`.

    Returns:
        A list of B `Detections`.
    """
    if not isinstance(outputs, dict):
        raise ValueError(
            f"Expected a dict of outputs with keys {list(PADDED_KEYS)}, "
            f"received {type(outputs).__name__}."
        )
    missing = [k for k in PADDED_KEYS if k not in outputs]
    if missing:
        raise ValueError(
            f"Model outputs are missing {missing}. Expected keys {list(PADDED_KEYS)}, "
            f"received {sorted(outputs)}."
        )
    arrays = {k: _to_numpy(outputs[k], k) for k in PADDED_KEYS}
    batch = arrays["num_detections"].reshape(-1).shape[0]
    for key in PADDED_KEYS[:3]:
        if arrays[key].ndim < 1 or arrays[key].shape[0] != batch:
            raise ValueError(
                f"Output `{key}` has shape {arrays[key].shape}; expected a batch of {batch} "
                "to match `num_detections`."
            )
    counts = arrays["num_detections"].reshape(-1)
    return [
        Detections.from_padded(
            arrays["boxes"][i],
            arrays["confidence"][i],
            arrays["classes"][i],
            counts[i],
            bounding_box_format,
        )
        for i in range(batch)
    ]
