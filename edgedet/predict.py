"""`edgedet predict` as a library function: images in, JSON + annotated images out."""

import json
import pathlib

from edgedet.draw import draw_detections
from edgedet.files import atomic_output_dir
from edgedet.images import list_images, load_image


def _unique_stems(paths):
    """Output names per image; `a/x.jpg` and `b/x.jpg` become `x` and `x_1`."""
    seen, stems = {}, []
    for path in paths:
        stem = pathlib.Path(path).stem
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count}")
    return stems


def predict_images(runtime, sources, out_dir, force=False, progress=None):
    """Runs a runtime on image files and writes one JSON and one PNG per image.

    Args:
        runtime: an entered `edgedet.runtimes` runtime (any artifact or the
            Keras reference).
        sources: list of image files and/or folders of images.
        out_dir: str or path. Output folder, written atomically.
        force: bool. Replace an existing `out_dir`. Defaults to False.
        progress: callable or None. Called with `(index, total, path)`.

    Returns:
        A list of per-image result dicts (what the JSON files hold).
    """
    paths = list_images(sources)
    metadata = runtime.metadata
    class_names = list(metadata.class_names)
    box_format = metadata.inference.bounding_box_format
    results = []
    with atomic_output_dir(out_dir, force=force) as tmp:
        tmp = pathlib.Path(tmp)
        for index, (path, stem) in enumerate(zip(paths, _unique_stems(paths))):
            if progress:
                progress(index, len(paths), path)
            image = load_image(path)
            (detections,) = runtime.predict([image])
            result = {
                "image": str(path),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "bounding_box_format": box_format,
                "detections": detections.to_dict(class_names),
            }
            (tmp / f"{stem}.json").write_text(json.dumps(result, indent=2))
            draw_detections(image, detections, class_names).save(tmp / f"{stem}.png")
            results.append(result)
    return results
