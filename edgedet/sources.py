"""One image source: where the images of predict, parity, calibration and benchmark come from.

`ImageSource(images)` resolves any accepted input to a fixed, ordered list of
named images, decoded on demand:

- a folder (its image files, sorted by path, hidden files skipped), one image
  file, a list of folders and files, or a glob (`"shots/*.jpg"`, sorted);
- `"synthetic:shapes?..."` (`edgedet.data.synthetic.from_spec`) or an
  `edgedet.data.DetectionDataset`; with `datasets=True` also a dataset path
  (COCO JSON, YOLO `data.yaml`, VOC root, see `edgedet.data.load_dataset`),
  and a folder without images of its own is read as a dataset, else with its
  sub-folders;
- in-memory uint8 `[H, W, 3]` arrays: a list, a list of `(name, array)`, or
  one `[N, H, W, 3]` array.

Names: a folder's images are named by their path relative to it, other files
by their file name (`naming="path"`: by the path as listed), arrays
`image_0000`, ..., dataset images by their `file_name`. `sample(n, seed)`
is the one sampling rule (numpy PCG64, without replacement, sorted), the one
INT8 calibration has always used, so calibration sets and cache keys stay put.

A file that cannot be decoded is never raised mid-run by `read` or
iteration: it is recorded in `failures` (`{"image", "reason"}`) and skipped;
callers decide (predict and benchmark list them and exit 3, parity fails).
`load` raises `edgedet.images.ImageError`.

`check_image` / `check_batch` are THE checks of what every runtime and the
calibration take: uint8 RGB `[H, W, 3]` (or `[B, H, W, 3]`).

Example:

```python
from edgedet.sources import ImageSource

source = ImageSource("photos/")
for name, image in source:  # uint8 [H, W, 3]
    ...
source.failures             # [{"image": "broken.jpg", "reason": "..."}]
subset = source.sample(8, seed=0)
```
"""

import glob
import os
import pathlib

import numpy as np

from edgedet.config import MAX_IMAGE_SIDE
from edgedet.files import printable
from edgedet.sampling import draw_indices

_GLOB_CHARACTERS = frozenset("*?[")


class SourceError(ValueError):
    """An image source that cannot be opened: a bad kind, a glob matching nothing."""


def check_image(image, what="image", error=ValueError):
    """Checks one image: a numpy uint8 `[H, W, 3]` RGB array.

    Args:
        image: `np.ndarray`, or a tensor with `.numpy()`.
        what: str. How errors name the image, e.g. `"images[3]"`.
            Defaults to `"image"`.
        error: exception class to raise. Defaults to `ValueError`.

    Returns:
        The image as a C-contiguous `np.ndarray`.

    Raises:
        error: naming `what`, what was received and what was expected.
    """
    array = _as_array(image, what, error)
    if array.ndim != 3:
        raise error(
            f"Expected {what} of shape [H, W, 3], received shape {array.shape}; expected "
            "[H, W, 3] RGB, one image (convert grayscale to RGB; give a batch image by image)."
        )
    _check_pixels(array, what, error)
    return np.ascontiguousarray(array)


def check_batch(batch, what="images", error=ValueError):
    """Checks a uint8 `[B, H, W, 3]` batch (B >= 1); returns it as a numpy array.

    Args:
        batch: `np.ndarray`, or a tensor with `.numpy()`.
        what: str. How errors name the batch. Defaults to `"images"`.
        error: exception class to raise. Defaults to `ValueError`.
    """
    array = _as_array(batch, what, error)
    if array.ndim != 4:
        hint = " For one image, pass image[None] or [image]." if array.ndim == 3 else ""
        raise error(f"Expected {what} of shape [B, H, W, 3], received shape {array.shape}.{hint}")
    if array.shape[0] < 1:
        raise error(f"Expected at least one image in {what}, received shape {array.shape}.")
    _check_pixels(array, what, error)
    return array


def _as_array(value, what, error):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy"):  # tf.Tensor and friends
        return value.numpy()
    kind = type(value).__name__
    raise error(
        f"Expected {what} as a numpy uint8 array, received {kind}: {what} is a {kind}, not "
        "decoded pixels (read image files with edgedet.images.load_image)."
    )


def _check_pixels(array, what, error):
    if array.dtype != np.uint8:
        raise error(
            f"Expected {what} with dtype uint8, received dtype {array.dtype}; expected uint8 RGB "
            "pixels 0-255 (the letterbox and scaling are inside the graph: feed raw images). "
            "Convert with np.clip(x, 0, 255).astype(np.uint8)."
        )
    height, width, channels = array.shape[-3:]
    if channels != 3:
        raise error(
            f"Expected {what} with 3 channels (RGB) in the last axis, received {channels} "
            f"(shape {array.shape}). Convert grayscale or RGBA images to RGB first."
        )
    if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
        raise error(
            f"Expected {what} with height and width between 1 and {MAX_IMAGE_SIDE}, "
            f"received {height}x{width} (shape {array.shape})."
        )


def sample_indices(total, size, seed=0):
    """`size` distinct indices of `range(total)`, sorted, fixed by `seed`.

    Drawn by `edgedet.sampling.draw_indices`, the rule of
    `edgedet.data.sample` too. Every index, in order, when `size` is None
    or >= `total`.

    Raises:
        ValueError: `size` is not an int >= 1.
    """
    if size is None or (isinstance(size, (int, np.integer)) and size >= total):
        return list(range(total))
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"Invalid sample size: {size!r}. Expected an int >= 1.")
    return draw_indices(total, size, seed)


class ImageSource:
    """A fixed, ordered list of named images, decoded on demand.

    Args:
        images: a folder, image file or glob (str / `os.PathLike`), a list of
            folders and files, a `"synthetic:shapes?..."` spec, an
            `edgedet.data.DetectionDataset`, a list of uint8 `[H, W, 3]`
            arrays or of `(name, array)`, or a uint8 `[N, H, W, 3]` array.
        split: str. Split of a synthetic spec or dataset path. Defaults to
            `"train"`.
        datasets: bool. Also open dataset paths (COCO JSON, YOLO `data.yaml`,
            VOC root); a folder without images of its own is read as a
            dataset, else with its sub-folders. Defaults to False.
        naming: str. `"relative"`: files are named relative to the folder
            given, else by file name; `"path"`: by the path as listed.
            Defaults to `"relative"`.
        cache_bytes: int. Keep decoded images in memory up to this many
            bytes (so several runtimes read the same pixels once).
            Defaults to 0.

    Attributes:
        names: list of str, one per image (printable).
        paths: list of `pathlib.Path` for file sources, else None.
        root: `pathlib.Path` of the folder given, else None.
        dataset: the `DetectionDataset` of a dataset source, else None.
        positions: list of int, the dataset index of each image (dataset
            sources), else None.
        label: str. What the images came from (`"folder 'x'"`,
            `"dataset 'x'"`, the spec, `"arrays"`).
        failures: list of `{"image", "reason"}`, one per image `read` or
            iteration could not decode.

    Raises:
        edgedet.images.ImageError: a path does not exist or a folder holds no
            images.
        edgedet.data.DatasetError: a dataset cannot be read.
        SourceError: an unsupported kind of input, a glob matching nothing.
        ValueError: a bad array or synthetic spec.
    """

    def __init__(self, images, split="train", datasets=False, naming="relative", cache_bytes=0):
        if naming not in ("relative", "path"):
            raise ValueError(f"Invalid naming {naming!r}. Expected 'relative' or 'path'.")
        self.root = self.dataset = self.paths = None
        self.failures = []
        self.dropped = set()  # Names of the images `drop_unreadable` dropped.
        self._arrays = self.positions = None
        self._naming = naming
        self._cache_bytes = cache_bytes
        self._cache, self._cached = {}, 0
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        from edgedet.data import DetectionDataset

        if isinstance(images, (str, os.PathLike)):
            self._open_path(os.fspath(images), split, datasets)
        elif isinstance(images, DetectionDataset):
            self._open_dataset(images, repr(images))
        elif is_path_list(images):
            self._open_files(_list_images(images), None)
        elif isinstance(images, (list, tuple)):
            self._open_arrays(images)
        else:
            raise SourceError(
                "Expected images as a folder, image files, a glob, a 'synthetic:shapes?...' "
                f"spec, a dataset or uint8 arrays; received {type(images).__name__}."
            )

    # Resolution: one private method per kind.

    def _open_path(self, text, split, datasets):
        if text.startswith("synthetic:"):
            from edgedet.data import load_dataset

            self._open_dataset(load_dataset(text, split=split), text)
            return
        path = pathlib.Path(text)
        if not path.exists() and _GLOB_CHARACTERS & set(text):
            files = sorted(pathlib.Path(p) for p in glob.glob(text) if os.path.isfile(p))
            if not files:
                raise SourceError(f"No image files match {text!r}.")
            self._open_files(files, None, f"glob '{text}'")
            return
        if datasets and path.exists():
            self._open_with_datasets(path, split)
            return
        root = path if path.is_dir() else None
        self._open_files(_list_images(text), root, f"folder '{path}'" if root else str(path))

    def _open_with_datasets(self, path, split):
        from edgedet.data import load_dataset
        from edgedet.images import ImageError, list_images

        if path.is_file():
            self._open_dataset(load_dataset(str(path), split=split), f"dataset '{path}'")
            return
        try:
            self._open_files(list_images(path), path, f"folder '{path}'")
            return
        except ImageError:
            pass
        try:
            self._open_dataset(load_dataset(str(path), split=split), f"dataset '{path}'")
            return
        except ValueError:
            pass
        try:
            files = list_images(path, recursive=True)
        except ImageError:
            raise SourceError(
                f"Folder '{path}' is empty: no image files in it or its sub-folders, and it is "
                "not a COCO / YOLO / VOC dataset."
            ) from None
        self._open_files(files, path, f"folder '{path}' (recursive)")

    def _open_files(self, paths, root, label=None):
        self.root, self.paths = root, list(paths)
        self.label = label or f"{len(self.paths)} files"
        if self._naming == "path":
            self.names = [printable(p) for p in self.paths]
        elif root is not None:
            self.names = [printable(p.relative_to(root).as_posix()) for p in self.paths]
        else:
            self.names = [printable(p.name) for p in self.paths]

    def _open_dataset(self, dataset, label):
        self.dataset, self.label = dataset, label
        self.positions = list(range(len(dataset)))
        self.names = [_dataset_name(dataset, i) for i in self.positions]

    def _open_arrays(self, items):
        self._arrays, self.names, self.label = [], [], "arrays"
        for i, item in enumerate(items):
            name, array = item if isinstance(item, tuple) else (f"image_{i:04d}", item)
            array = np.asarray(array) if isinstance(array, list) else array
            self._arrays.append(check_image(array, f"image {name!r}", SourceError))
            self.names.append(printable(name))

    # Access.

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return f"ImageSource({len(self)} images from {self.label})"

    def describe(self):
        """A short description for reports: the folder, the dataset or the count."""
        if self.root is not None:
            return printable(self.root)
        if self.dataset is not None:
            return printable(repr(self.dataset))
        return f"{len(self)} images"

    def load(self, index):
        """Image `index` as a uint8 `[H, W, 3]` array.

        Raises:
            edgedet.images.ImageError: the file cannot be decoded.
            ValueError: a dataset image is not a uint8 `[H, W, 3]` array.
        """
        if self._arrays is not None:
            return self._arrays[index]
        if index in self._cache:
            return self._cache[index]
        if self.dataset is not None:
            image = self.dataset.get(self.positions[index])["image"]
            image = check_image(image, f"image {self.names[index]!r}")
        else:
            from edgedet.images import load_image

            image = load_image(self.paths[index])
        if self._cached + image.nbytes <= self._cache_bytes:
            self._cache[index] = image
            self._cached += image.nbytes
        return image

    def read(self, index):
        """Image `index`, or None when it cannot be read (recorded in `failures`)."""
        try:
            return self.load(index)
        except (ValueError, OSError) as error:
            self.failures.append({"image": self.names[index], "reason": printable(error)})
            return None

    def __iter__(self):
        """Yields `(name, image)` for every readable image, in order."""
        for index in range(len(self)):
            image = self.read(index)
            if image is not None:
                yield self.names[index], image

    @property
    def class_names(self):
        """The dataset's class names, or None when the source has no labels."""
        return None if self.dataset is None else tuple(self.dataset.class_names)

    def labels(self, index):
        """Image `index`'s annotation (`boxes` xyxy pixels, `classes`, `file_name`), or None."""
        if self.dataset is None:
            return None
        return self.dataset.annotation(self.positions[index])

    # Subsets.

    def subset(self, indices):
        """A new source holding images `indices` (in that order) of this one."""
        indices = [int(i) for i in indices]
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.names = [self.names[i] for i in indices]
        if self.paths is not None:
            other.paths = [self.paths[i] for i in indices]
        if self.positions is not None:
            other.positions = [self.positions[i] for i in indices]
        if self._arrays is not None:
            other._arrays = [self._arrays[i] for i in indices]
        other._cache = {new: self._cache[old] for new, old in enumerate(indices)
                        if old in self._cache}
        other._cached = sum(image.nbytes for image in other._cache.values())
        other.failures, other.dropped = [], set(self.dropped)
        return other

    def sample(self, n, seed=0):
        """`n` images drawn by `sample_indices` (all, in order, when n is None or >= len)."""
        return self.subset(sample_indices(len(self), n, seed))

    def drop_unreadable(self):
        """Decodes every image once; keeps only those that can be read.

        Returns:
            A list of `{"image": name, "reason": str}`, one per dropped image.

        Raises:
            SourceError: no image can be read.
        """
        if self._arrays is not None:
            return []
        start = len(self.failures)
        keep = [index for index in range(len(self)) if self.read(index) is not None]
        failures = self.failures[start:]
        if not keep:
            reasons = "; ".join(f"{f['image']}: {f['reason']}" for f in failures[:5])
            raise SourceError(f"None of the {len(self)} images can be read: {reasons}")
        if failures:
            kept = self.subset(keep)
            self.names, self.paths, self.positions = kept.names, kept.paths, kept.positions
            self._cache, self._cached = kept._cache, kept._cached
            self.dropped |= {f["image"] for f in failures}
        return failures


def is_path_list(value):
    """Whether `value` is a non-empty list or tuple of paths (not of arrays)."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    )


def _list_images(folder_or_files):
    from edgedet.images import list_images

    return list_images(folder_or_files)


def _dataset_name(dataset, index):
    from edgedet.data import SyntheticShapes

    if isinstance(dataset, SyntheticShapes):  # Its file_name, without generating the image.
        return f"shapes_{dataset.split}_{dataset.seed}_{index:06d}.png"
    return printable(str(dataset.annotation(index).get("file_name") or f"image_{index:04d}"))
