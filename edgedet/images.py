"""Reading and writing images as the artifacts expect them: uint8 RGB.

Every artifact takes `uint8 [B, H, W, 3]` RGB input (see DESIGN.md), so the
one thing to get right on the host side is turning any image file into
exactly that. `load_image` does it with Pillow:

- EXIF orientation is applied (`ImageOps.exif_transpose`), so a phone photo
  comes out the way it is displayed.
- Grayscale (`1`, `L`) is repeated to three channels; palette (`P`, with or
  without transparency), `CMYK`, `YCbCr`, `LAB`, `HSV` are converted to RGB.
- Alpha (`RGBA`, `LA`, `PA`, transparent palettes) is DROPPED, not
  composited: the colour channels are kept as stored, which is what Pillow's
  `convert("RGB")`, OpenCV's `imread` and `tf.io.decode_image(channels=3)`
  do, so detections match those pipelines.
- High bit depth is scaled, not clipped: 16-bit (`I;16*`, and `I` with
  values in 0..65535) maps 0..65535 to 0..255 (`round(v / 257)`); float
  (`F`) in [0, 1] maps to 0..255; other `I` or `F` ranges are stretched
  linearly from their min..max to 0..255.
- Only the first frame of an animated image is read. ICC profiles are not
  applied.

Any problem with a file raises `ImageError` (a `ValueError`) naming it.
"""

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgedet.files import atomic_write_bytes

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image file is missing, unreadable, corrupt, or not an image."""


def _scale_to_uint8(array, mode, path):
    """Maps a high-bit-depth single-channel array to uint8 (see module doc)."""
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ImageError(f"Image '{path}' (mode {mode}) contains NaN or infinite values.")
    if mode.startswith("I;16") or (mode == "I" and array.min() >= 0 and array.max() <= 65535):
        scaled = array / 257.0
    elif mode == "F" and array.min() >= 0 and array.max() <= 1:
        scaled = array * 255.0
    else:
        low, high = array.min(), array.max()
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)  # Round half up.


def _to_rgb(image, path):
    """Converts a loaded Pillow image to a uint8 [H, W, 3] RGB array."""
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8)
    if mode.startswith("I") or mode == "F":
        gray = _scale_to_uint8(np.asarray(image), mode, path)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        # Via RGBA so the transparency is read (and then dropped) as Pillow intends.
        image = image.convert("RGBA")
    try:
        return np.array(image.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as error:
        raise ImageError(
            f"Cannot convert image '{path}' from mode {mode} to RGB: {error}"
        ) from error


def load_image(path):
    """Loads an image file as a uint8 [H, W, 3] RGB array.

    See the module docstring for how each Pillow mode is converted.

    Example:

    ```python
    image = load_image("photo.jpg")  # np.ndarray, uint8, [H, W, 3]
    ```

    Args:
        path: str or `os.PathLike`. The image file.

    Returns:
        A new, writable, C-contiguous `np.ndarray` of dtype uint8 and shape
        `[height, width, 3]`, displayed orientation, RGB channel order.

    Raises:
        ImageError: the file is missing, a folder, not an image, truncated
            or corrupt, empty (0 pixels), or too large for Pillow's
            decompression-bomb limit.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"Image file not found: '{path}'.")
    if path.is_dir():
        raise ImageError(f"Expected an image file, received a folder: '{path}'.")
    try:
        with Image.open(path) as image:
            image.load()
            if image.width == 0 or image.height == 0:
                raise ImageError(f"Image '{path}' is empty ({image.width}x{image.height} pixels).")
            image = ImageOps.exif_transpose(image)
            return np.ascontiguousarray(_to_rgb(image, path))
    except ImageError:
        raise
    except UnidentifiedImageError as error:
        raise ImageError(
            f"Cannot read '{path}': not an image, or an image format Pillow does not "
            f"support (supported suffixes: {', '.join(IMAGE_SUFFIXES)})."
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageError(f"Cannot read '{path}': {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(
            f"Cannot read '{path}': the image is truncated or corrupt ({error})."
        ) from error


def _is_image_name(path):
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder_or_files, recursive=False):
    """Lists image files, in a deterministic order.

    A folder contributes its image files (by suffix, case-insensitive,
    hidden files skipped), sorted by path; with `recursive`, those of its
    sub-folders too. A file is taken as given (its content is checked when
    loaded), in the order given.

    Args:
        folder_or_files: str or `os.PathLike`, a folder or one file, or a
            sequence of folders and files.
        recursive: bool. Also search sub-folders. Defaults to False.

    Returns:
        A list of `pathlib.Path`.

    Raises:
        ImageError: a path does not exist, or a folder holds no images.
    """
    if isinstance(folder_or_files, (str, os.PathLike)):
        folder_or_files = [folder_or_files]
    found = []
    for entry in folder_or_files:
        entry = Path(entry)
        if entry.is_dir():
            walk = entry.rglob("*") if recursive else entry.iterdir()
            images = sorted(
                p for p in walk if _is_image_name(p) and p.is_file() and not _hidden_below(p, entry)
            )
            if not images:
                raise ImageError(
                    f"No images found in folder '{entry}'"
                    + (" or its sub-folders" if recursive else "")
                    + f". Expected files ending in {', '.join(IMAGE_SUFFIXES)}."
                )
            found.extend(images)
        elif entry.exists():
            found.append(entry)
        else:
            raise ImageError(f"Image file or folder not found: '{entry}'.")
    return found


def _hidden_below(path, root):
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def save_image(array, path, quality=95):
    """Saves a uint8 RGB (or grayscale) array as an image file, atomically.

    The format follows the suffix (`.jpg`, `.png`, ...). The file is written
    to a temporary file first, so `path` is never left half-written.

    Args:
        array: array-like, uint8, `[H, W, 3]` RGB or `[H, W]` grayscale.
        path: str or `os.PathLike`. Destination file.
        quality: int. JPEG/WebP quality, 1-100. Defaults to 95.

    Returns:
        `path` as a `pathlib.Path`.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise ValueError(
            f"Expected a uint8 array of shape [H, W, 3] or [H, W] to save as '{path}', "
            f"received dtype {array.dtype} and shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"Cannot save an empty image (shape {array.shape}) as '{path}'.")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(
            f"Cannot tell the image format of '{path}' from its suffix. "
            f"Expected one of {', '.join(IMAGE_SUFFIXES)}."
        )
    buffer = io.BytesIO()
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=image_format, **options)
    return atomic_write_bytes(path, buffer.getvalue())


def image_size(path):
    """Returns `(width, height)` of an image file as displayed, reading its header only.

    EXIF orientations 5-8 swap the sides, as `load_image` (which applies the
    orientation) does.

    Args:
        path: str or `os.PathLike`. An image file.
    """
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            width, height = height, width
    return width, height
