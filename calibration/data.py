"""Calibration data: raw uint8 images, fed one at a time, from one reader protocol.

The preprocessing (letterbox) is inside every edgedet graph, so calibration
feeds what a user feeds: `{"images": uint8 [1, H, W, 3]}` of any size. A
`CalibrationData` is an iterable of such feeds (Polygraphy's data-loader
protocol); `ort_reader()` adapts it to ONNX Runtime's `get_next()` protocol
and `representative_dataset()` to TFLite's.

Sources (`calibration_data(source, ...)`, opened by `edgedet.sources.ImageSource`
with `datasets=True`):
- a folder of images (sorted, hidden files skipped; sub-folders when the
  folder has no images of its own);
- a dataset: COCO JSON, YOLO `data.yaml`, a VOC root (see `edgedet.data`);
- `synthetic:shapes?...` (the generator in `edgedet.data.synthetic`);
- None: `DEFAULT_SOURCE`, the synthetic shapes the built-in model is trained
  on (the training split, never the held-out validation split);
- a list of uint8 `[H, W, 3]` arrays.

Sampling is deterministic: `size` images are drawn without replacement with
numpy's PCG64 generator seeded by `seed` (`edgedet.sources.sample_indices`,
the same rule as `edgedet.data.sample`). Fewer than `MIN_RECOMMENDED` images gives a
warning; none is an error.

Example:

```python
from edgedet.calibration.data import calibration_data

data = calibration_data("calib_images/", size=300, seed=0)
for feed in data:
    feed["images"].shape  # (1, H, W, 3), uint8
data.image_records()       # [{"name": ..., "sha256": ..., "shape": [H, W, 3]}, ...]
```
"""

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from edgedet import sources
from edgedet.sources import sample_indices  # noqa: F401 - the one sampling rule, re-exported.

INPUT_NAME = "images"
DEFAULT_SIZE = 300
MIN_RECOMMENDED = 100
# What the built-in model is trained on (the `edgedet train` recipe of the
# built-in weights: synthetic shapes, 224 px images, seed 0, split "train"), so the
# default calibration set matches it; its held-out split ("holdout", another
# seed) stays unseen. Keep in sync with that recipe.
DEFAULT_SOURCE = "synthetic:shapes?n=6000&seed=0&size=224"
# An image whose pixels span fewer levels than this is "flat" (e.g. all black).
_FLAT_RANGE = 2


class CalibrationDataError(ValueError):
    """Calibration images are missing, unreadable or of the wrong kind."""


class FewImagesWarning(UserWarning):
    """Fewer calibration images than recommended."""


class DegenerateDataWarning(UserWarning):
    """The calibration images (or the ranges they give) carry almost no signal."""


class CalibrationData:
    """A fixed, ordered list of calibration images, loaded lazily.

    Iterating yields `{input_name: uint8 [1, H, W, 3]}`, one image per feed.
    Every image is checked when loaded (dtype uint8, shape `[H, W, 3]`); a bad
    one raises `CalibrationDataError` naming it. Each full pass records the
    images' sha256 and how many were flat (`flat_images`).

    Args:
        items: list of `(name, loader)`: a display name (file path, dataset
            index) and a callable returning the image.
        source: str. What the images came from, for reports.
        input_name: str. The graph input to feed. Defaults to `"images"`.
        seed: int. The sampling seed, for reports. Defaults to 0.
    """

    def __init__(self, items, source="", input_name=INPUT_NAME, seed=0):
        self.items = list(items)
        if not self.items:
            raise CalibrationDataError(
                f"No calibration images in {source or 'the given source'}. Give a folder "
                "of images, a dataset (COCO JSON, YOLO data.yaml, VOC root) or "
                "'synthetic:shapes'."
            )
        self.source = str(source)
        self.input_name = input_name
        self.seed = seed
        self._hashes = {}
        self.flat_images = []

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"CalibrationData({len(self)} images from {self.source!r})"

    def load(self, index):
        """Image `index` as a checked uint8 `[H, W, 3]` array."""
        name, loader = self.items[index]
        try:
            image = loader()
        except CalibrationDataError:
            raise
        except (OSError, ValueError) as error:
            raise CalibrationDataError(
                f"Cannot read calibration image '{name}': {error} Remove or replace it."
            ) from error
        image = check_image(image, name)
        digest = hashlib.sha256(str(image.shape).encode() + image.tobytes()).hexdigest()
        self._hashes[index] = (digest, list(image.shape))
        flat = int(image.max()) - int(image.min()) < _FLAT_RANGE
        if flat and name not in self.flat_images:
            self.flat_images.append(name)
        return image

    def images(self):
        """Every image, loaded: a list of uint8 `[H, W, 3]` arrays (for small sets)."""
        return [self.load(index) for index in range(len(self))]

    def __iter__(self):
        for index in range(len(self)):
            yield {self.input_name: self.load(index)[None]}

    def image_records(self):
        """`[{"name", "sha256", "shape"}]` of the images loaded so far, in order."""
        return [
            {"name": str(self.items[i][0]), "sha256": self._hashes[i][0],
             "shape": self._hashes[i][1]}
            for i in sorted(self._hashes)
        ]

    def key(self):
        """A cheap fingerprint of WHICH images these are (names, and file sizes and
        modification times for files), known before any image is decoded."""
        digest = hashlib.sha256(self.source.encode())
        for name, _ in self.items:
            digest.update(str(name).encode())
            path = Path(str(name))
            if path.is_file():
                stat = path.stat()
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()

    def check_degenerate(self):
        """Warns when most images seen so far were flat (e.g. all black).

        Returns:
            True when a warning was given.
        """
        seen = len(self._hashes)
        if seen and len(self.flat_images) * 2 > seen:
            warnings.warn(
                f"{len(self.flat_images)} of {seen} calibration images are flat (every pixel "
                f"about the same, e.g. all black; first: '{self.flat_images[0]}'). The "
                "quantization ranges will be degenerate and the INT8 model inaccurate: "
                "calibrate with images like the ones the model will see.",
                DegenerateDataWarning,
                stacklevel=2,
            )
            return True
        return False

    def ort_reader(self):
        """This data as an ONNX Runtime `CalibrationDataReader` (a fresh pass)."""
        return _OrtReader(self)

    def representative_dataset(self, input_name=None):
        """A TFLite `representative_dataset` callable over this data.

        Args:
            input_name: str or None. Signature input name. Defaults to
                `self.input_name`.
        """

        def generate():
            for feed in self:
                yield {(input_name or self.input_name): feed[self.input_name]}

        return generate

    def chunks(self, size):
        """Readers over consecutive slices of `size` images (to bound memory)."""
        for start in range(0, len(self), size):
            yield _OrtReader(self, start, min(start + size, len(self)))


class _OrtReader:
    """ONNX Runtime's reader protocol (`get_next`, `__len__`, `set_range`)."""

    def __init__(self, data, start=0, end=None):
        self.data = data
        self.set_range(start, len(data) if end is None else end)

    def set_range(self, start_index, end_index):
        self._indices = iter(range(start_index, end_index))
        self._length = end_index - start_index

    def __len__(self):
        return self._length

    def get_next(self):
        index = next(self._indices, None)
        if index is None:
            return None
        return {self.data.input_name: self.data.load(index)[None]}


def check_image(image, name="image"):
    """Checks one calibration image (the rule: `edgedet.sources.check_image`).

    Raises:
        CalibrationDataError: naming the image, the received dtype or shape,
            and what was expected.
    """
    return sources.check_image(image, f"calibration image '{name}'", CalibrationDataError)


def calibration_data(source=None, size=DEFAULT_SIZE, seed=0, input_name=INPUT_NAME,
                     split="train", min_images=MIN_RECOMMENDED):
    """Opens calibration images from a folder, a dataset, a synthetic spec or arrays.

    Args:
        source: str, path, `edgedet.data.DetectionDataset`, list of uint8
            arrays, or None for `DEFAULT_SOURCE`. Defaults to None.
        size: int or None. How many images to sample; None uses all.
            Defaults to 300.
        seed: int. Sampling seed. Defaults to 0.
        input_name: str. Graph input name. Defaults to `"images"`.
        split: str. Dataset split to read (YOLO / VOC / COCO file name,
            synthetic stream). Defaults to `"train"`.
        min_images: int. Warn (`FewImagesWarning`) below this many images.
            Defaults to 100.

    Returns:
        A `CalibrationData`.

    Raises:
        CalibrationDataError: the source does not exist, holds no images, or
            is not a folder of images or a dataset edgedet reads.
    """
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"Invalid calibration size: {size!r}. Expected an int >= 1.")
    images = _open(DEFAULT_SOURCE if source is None else source, split)
    total, label = len(images), images.label
    if total == 0:
        raise CalibrationDataError(f"No calibration images found in {label}.")
    chosen = images.sample(size, seed)
    if size is not None and size > total:
        warnings.warn(
            f"Asked for {size} calibration images, {label} has only {total}: using all of them.",
            FewImagesWarning,
            stacklevel=2,
        )
    if len(chosen) < min_images:
        warnings.warn(
            f"Calibrating on {len(chosen)} images (from {label}); at least {min_images} "
            "representative images are recommended for stable INT8 ranges.",
            FewImagesWarning,
            stacklevel=2,
        )
    return CalibrationData(_items(chosen), source=label, input_name=input_name, seed=seed)


def _open(source, split):
    """The `edgedet.sources.ImageSource` of any supported calibration source."""
    from edgedet.data import DetectionDataset
    from edgedet.images import ImageError

    if isinstance(source, np.ndarray) and source.ndim != 4:
        raise CalibrationDataError(
            f"Expected calibration arrays of shape [N, H, W, 3], received {source.shape}."
        )
    if isinstance(source, np.ndarray) or (
            isinstance(source, (list, tuple)) and not sources.is_path_list(source)):
        # Named by position, as calibration cache keys always have been.
        source = [(f"array[{i}]", a) for i, a in enumerate(source)]
    elif not isinstance(source, (str, os.PathLike, DetectionDataset, list, tuple)):
        raise CalibrationDataError(
            f"Unsupported calibration source {type(source).__name__}: expected a folder, a "
            "dataset path, 'synthetic:shapes?...', or a list of uint8 arrays."
        )
    path = Path(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else None
    if path is not None and not str(path).startswith("synthetic:") and not path.exists():
        raise CalibrationDataError(
            f"Calibration data not found: '{path}'. Expected a folder of images, a COCO JSON, "
            "a YOLO data.yaml, a VOC root, or 'synthetic:shapes?n=300'."
        )
    try:
        return sources.ImageSource(source, split=split, datasets=True)
    except (ImageError, sources.SourceError) as error:
        raise CalibrationDataError(str(error)) from error
    except ValueError as error:
        if path is not None and path.is_file():
            raise CalibrationDataError(
                f"Calibration source '{path}' is a file but not a dataset edgedet reads "
                f"({error})."
            ) from error
        raise


def _items(images):
    """`(name, loader)` per image; the names are what calibration cache keys hash."""
    if images.paths is not None:
        names = [str(path) for path in images.paths]
    elif images.dataset is not None:
        names = [_dataset_name(images.dataset, position) for position in images.positions]
    else:
        names = list(images.names)
    return [(name, (lambda i=i: images.load(i))) for i, name in enumerate(names)]


def _dataset_name(dataset, index):
    from edgedet.data import SyntheticShapes

    if isinstance(dataset, SyntheticShapes):  # Generating the image just to name it is wasteful.
        return f"synthetic[{dataset.split}:{dataset.seed}:{index}]"
    try:
        item = dataset.annotation(index)
        return str(item.get("file_name") or item.get("path") or f"{dataset!r}[{index}]")
    except Exception:  # noqa: BLE001 - names are cosmetic.
        return f"sample {index}"
