"""The one runtime interface (Polygraphy-style).

A runtime is a context manager: `__enter__` loads the artifact, `__exit__`
releases it. `metadata` is the artifact's `ArtifactMetadata`; `predict`
returns one `Detections` per image, boxes in original-image pixels in the
metadata's box format. Subclasses implement `_load`, `_release` and
`_infer` (one batch of one image size -> the raw output dict); heavy
libraries are imported inside those.

Example:

```python
from edgedet.runtimes.registry import open_runtime

with open_runtime("out/model.onnx") as runtime:
    detections = runtime.predict([image_a, image_b])  # uint8 [H, W, 3] RGB
    print(runtime.metadata.class_names, runtime.last_inference_seconds)
```
"""

import time

import numpy as np

from edgedet.detections import batch_from_padded
from edgedet.sources import check_batch, check_image

# Not the artifact's fault, and already said in a sentence: a runtime package
# that is not installed (the CLI names it and the install), a server that
# cannot be reached.
_PASSED_THROUGH = (ImportError, ConnectionError)


class ArtifactLoadError(ValueError):
    """A runtime refused to load an artifact: names the file, the runtime and its reason.

    `Runtime.__enter__` raises it for any error of the runtime's own library
    (ONNX Runtime's `InvalidGraph` or "External data path validation
    failed", a LiteRT or TensorFlow parse error, ...), so every command
    reports it as one line
    (the `edgedet` group turns it into a message, exit code 1; `parity`
    counts a reference that cannot load as bad input, exit code 2, and an
    artifact under test that cannot load as a failed artifact, exit code 1).

    Args:
        path: the artifact.
        kind: str. The runtime kind (`"onnx"`, ...).
        error: the runtime's exception.
    """

    def __init__(self, path, kind, error):
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        super().__init__(f"Cannot load '{path}' ({kind} runtime): {type(error).__name__}"
                         + (f": {reason}" if reason else ""))
        self.path = path


def _names(error, path):
    """Whether `error` is a ValueError whose message names `path` (edgedet's own refusals)."""
    return isinstance(error, ValueError) and str(path) in str(error)


class Runtime:
    """Base class of every runtime.

    Args:
        path: str, path or None. The artifact (None for a live model).
    """

    #: Short runtime name, e.g. `"onnx"`.
    kind = "base"

    def __init__(self, path=None):
        self.path = path
        self._metadata = None
        self._loaded = False
        #: Seconds the graph(s) ran during the last `predict`/`infer` call.
        self.last_inference_seconds = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        if not self._loaded:
            try:
                self._load()
            except _PASSED_THROUGH:
                raise
            except Exception as error:
                if self.path is None or _names(error, self.path):
                    raise  # A live model, or already a sentence naming the file.
                raise ArtifactLoadError(self.path, self.kind, error) from error
            self._loaded = True
        return self

    def __exit__(self, *exc_info):
        if self._loaded:
            self._release()
            self._loaded = False
        return False

    @property
    def is_loaded(self):
        return self._loaded

    @property
    def metadata(self):
        """The artifact's `ArtifactMetadata` (read on first access)."""
        if self._metadata is None:
            self._metadata = self._read_metadata()
        return self._metadata

    # -- to implement --------------------------------------------------------

    def _read_metadata(self):
        raise NotImplementedError

    def _load(self):
        raise NotImplementedError

    def _release(self):
        pass

    def _infer(self, batch):
        """Runs one uint8 `[B, H, W, 3]` batch; returns a dict of numpy outputs."""
        raise NotImplementedError

    # -- inference -----------------------------------------------------------

    def infer(self, batch):
        """Runs the artifact on one batch and returns every raw output.

        Args:
            batch: uint8 array `[B, H, W, 3]`, RGB, one image size.

        Returns:
            dict of output name -> numpy array (the padded contract outputs,
            plus debug outputs if the artifact has them).
        """
        batch = check_batch(batch)
        self._require_loaded()
        started = time.perf_counter()
        outputs = self._infer(batch)
        self.last_inference_seconds = time.perf_counter() - started
        return outputs

    def predict(self, images):
        """Detects objects in `images`.

        Args:
            images: uint8 array `[B, H, W, 3]`, or a list of uint8 `[H, W, 3]`
                arrays (RGB). Images of different sizes are run in groups of
                one size (a batch has one size); the results keep the input
                order.

        Returns:
            A list of `Detections`, one per image, boxes in original-image
            pixels in `metadata.inference.bounding_box_format`.

        Raises:
            ValueError: wrong type, dtype, rank, channel count or image size.
        """
        batches = group_by_size(images)
        self._require_loaded()
        box_format = self.metadata.inference.bounding_box_format
        results = [None] * sum(len(indices) for indices, _ in batches)
        total = 0.0
        for indices, batch in batches:
            started = time.perf_counter()
            outputs = self._infer(batch)
            total += time.perf_counter() - started
            for index, detections in zip(indices, batch_from_padded(outputs, box_format)):
                results[index] = detections
        self.last_inference_seconds = total
        return results

    def _require_loaded(self):
        if not self._loaded:
            raise RuntimeError(
                f"{type(self).__name__} is not loaded. Use it as a context manager: "
                f"`with runtime: runtime.predict(images)`."
            )

    def __repr__(self):
        where = f"'{self.path}'" if self.path is not None else "live model"
        return f"{type(self).__name__}({where})"


def group_by_size(images):
    """Validates `images` and groups them into batches of one size.

    Args:
        images: uint8 array `[B, H, W, 3]` or a list/tuple of uint8
            `[H, W, 3]` arrays.

    Returns:
        A list of `(indices, batch)`: the input positions and the stacked
        uint8 `[n, H, W, 3]` batch of each size, in order of first appearance.
    """
    if isinstance(images, (list, tuple)):
        arrays = [check_image(image, f"images[{i}]") for i, image in enumerate(images)]
        groups = {}
        for index, array in enumerate(arrays):
            groups.setdefault(array.shape, []).append(index)
        return [
            (indices, np.ascontiguousarray(np.stack([arrays[i] for i in indices])))
            for indices in groups.values()
        ]
    batch = check_batch(images)
    return [(list(range(batch.shape[0])), np.ascontiguousarray(batch))]
