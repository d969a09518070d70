"""`edgedet predict` as a library function: images in, JSON + annotated images out."""

import json
import os
import pathlib

from edgedet.draw import draw_detections
from edgedet.files import atomic_output_dir, printable
from edgedet.images import ImageError
from edgedet.sources import ImageSource

#: Written into the output folder when some images could not be read.
FAILURES_NAME = "failures.json"


def _unique_stems(paths):
    """Output names per image; `a/x.jpg` and `b/x.jpg` become `x` and `x_1`."""
    seen, stems = {}, []
    for path in paths:
        stem = printable(pathlib.Path(path).stem).replace("\\", "_")
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count}")
    return stems


def predict_images(runtime, sources, out_dir, force=False, progress=None, protected=(),
                   failures=None):
    """Runs a runtime on image files and writes one JSON and one PNG per image.

    An image that cannot be read is skipped and reported (file and reason)
    in `OUT/failures.json` and in `failures`; the others are still
    processed and written. When no image can be read, nothing is written.

    Args:
        runtime: an entered `edgedet.runtimes` runtime (any artifact or the
            Keras reference).
        sources: an image file or folder, or a list of them (read by
            `edgedet.sources.ImageSource`).
        out_dir: str or path. Output folder, written atomically.
        force: bool. Replace an existing `out_dir` (only an edgedet output
            folder, see `edgedet.files`). Defaults to False.
        progress: callable or None. Called with `(index, total, path)`.
        protected: iterable of paths. Other inputs `out_dir` must not
            replace (the model); `sources` always are. Defaults to `()`.
        failures: list or None. Receives one `{"image", "reason"}` dict per
            unreadable image. Defaults to None.

    Returns:
        A list of per-image result dicts (what the JSON files hold).

    Raises:
        ImageError: no image could be read (naming each and why).
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    images = ImageSource(sources, naming="path")
    paths = images.paths
    metadata = runtime.metadata
    class_names = list(metadata.class_names)
    box_format = metadata.inference.bounding_box_format
    results, failed = [], [] if failures is None else failures
    with atomic_output_dir(out_dir, force=force, protected=[*sources, *protected]) as tmp:
        tmp = pathlib.Path(tmp)
        for index, (path, stem) in enumerate(zip(paths, _unique_stems(paths))):
            if progress:
                progress(index, len(paths), path)
            image = images.read(index)
            if image is None:
                failed.append(images.failures[-1])
                continue
            (detections,) = runtime.predict([image])
            result = {
                "image": images.names[index],
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "bounding_box_format": box_format,
                "detections": detections.to_dict(class_names),
            }
            (tmp / f"{stem}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
            draw_detections(image, detections, class_names).save(tmp / f"{stem}.png")
            results.append(result)
        if not results:
            reasons = "; ".join(f["reason"] for f in failed[:5])
            raise ImageError(f"None of the {len(paths)} image(s) could be read: {reasons}")
        if failed:
            document = {"failed": len(failed), "processed": len(results), "images": failed}
            (tmp / FAILURES_NAME).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return results
