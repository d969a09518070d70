"""`report.html`: one self-contained page (no network; images inlined as base64).

The page holds the verdict, the summary table, per artifact its checks
(value, limit, pass/fail) or the reason it was skipped, and a gallery of the
images that disagree most, drawn side by side: the reference's detections on
the left, the artifact's on the right. Matched boxes are green on both
sides, reference boxes the artifact missed are magenta (left), artifact
boxes the reference does not have are orange (right); each box is labelled
with its class and score. Every piece of text that comes from outside (file
names, class names, reasons) is HTML-escaped.
"""

import base64
import html
import io

import numpy as np

from edgedet.detections import Detections
from edgedet.files import printable
from edgedet.parity.result import LATENCY_NOTE, pair_text

MATCHED_COLOR = "#00C853"
MISSING_COLOR = "#D500F9"
EXTRA_COLOR = "#FF6D00"
PANEL_SIDE = 480
MAX_UPSCALE = 4.0
DEFAULT_GALLERY_SIZE = 8

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{margin:0 0 8px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;font-size:14px}th{background:#f4f4f4}
.pass{color:#fff;background:#2e7d32;padding:2px 8px;border-radius:4px}
.fail{color:#fff;background:#c62828;padding:2px 8px;border-radius:4px}
.skip{color:#fff;background:#757575;padding:2px 8px;border-radius:4px}
.legend span.sw{display:inline-block;width:14px;height:14px;margin:0 4px 0 12px;
vertical-align:middle;border:1px solid #0003}
.pair{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
figure{margin:0}figcaption{font-size:13px;color:#444;max-width:480px;word-break:break-all}
.note{font-size:13px;color:#555}code{background:#f4f4f4;padding:1px 4px}
"""


def _e(value):
    return html.escape(printable(str(value)), quote=True)


def _num(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _scaled(detections, shape, scale):
    xyxy = detections.to_format("xyxy", image_shape=shape)
    return Detections(xyxy.boxes * scale, xyxy.confidence, xyxy.classes, "xyxy")


def _subset(detections, indices):
    indices = np.asarray(indices, np.int64)
    return Detections(detections.boxes[indices], detections.confidence[indices],
                      detections.classes[indices], detections.bounding_box_format)


def _panel(image, groups, class_names):
    """Draws `(detections, colour)` groups on a scaled copy; returns a data URI."""
    from PIL import Image

    from edgedet.draw import draw_detections

    height, width = image.shape[:2]
    scale = min(PANEL_SIDE / max(height, width), MAX_UPSCALE)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.fromarray(np.asarray(image, np.uint8)).resize(size, Image.BILINEAR)
    for detections, color in groups:
        if len(detections):
            canvas = draw_detections(canvas, _scaled(detections, (height, width), scale),
                                     class_names, color=color, width=3)
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_loader(result):
    """`(load, None)` to reload the result's images by index, or `(None, why not)`.

    The images come back from `result.images` (a folder, files, a synthetic
    spec, or arrays / a dataset kept in memory), looked up by name; `load`
    raises `ValueError` for an image that is gone or changed size.
    """
    from edgedet.parity.inputs import ImageSource

    if result.images is None:
        return None, ("the images were given in memory and a saved run record does not keep "
                      "them")
    try:
        source = ImageSource(result.images)
    except (ValueError, OSError) as error:
        return None, f"the images cannot be reloaded from {printable(result.image_source)}: {error}"
    position = {name: i for i, name in enumerate(source.names)}

    def load(index):
        name = result.image_names[index]
        if name not in position:
            raise ValueError(f"{name} is no longer in {source.describe()}")
        image = source.load(position[name])
        shape = tuple(result.image_shapes[index]) if result.image_shapes else None
        if shape is not None and tuple(image.shape[:2]) != shape:
            raise ValueError(f"{name} is now {image.shape[1]}x{image.shape[0]}, the run saw "
                             f"{shape[1]}x{shape[0]}")
        return image

    return load, None


def _gallery(result, artifact, limit, images):
    flagged = artifact.flagged_images[:limit]
    if not flagged:
        return "<p>No image disagrees with the reference.</p>"
    load, why_not = images
    if load is None:
        return f"<p>Images are not drawn: {_e(why_not)}.</p>"
    run = result.reference_runs[artifact.reference_run]
    parts = [f"<p>The {len(flagged)} worst of {len(artifact.flagged_images)} flagged images "
             "(missing or extra detections first, then the largest box shift, then the largest "
             "score delta).</p>"]
    for record in flagged:
        index = record["index"]
        try:
            image = load(index)
        except (ValueError, OSError) as error:
            parts.append(f'<h4 class="image-name">{_e(record["image"])}</h4>'
                         f"<p>Not drawn: {_e(error)}.</p>")
            continue
        match = artifact.matches[index]
        ref, art = run.detections[index], artifact.detections[index]
        left = _panel(image, [(_subset(ref, match.pairs[:, 1]), MATCHED_COLOR),
                              (_subset(ref, match.missing), MISSING_COLOR)], result.class_names)
        right = _panel(image, [(_subset(art, match.pairs[:, 0]), MATCHED_COLOR),
                               (_subset(art, match.extra), EXTRA_COLOR)], result.class_names)
        caption = (f"{record['missing']} missing, {record['extra']} extra, "
                   f"{record['matched']} matched; worst IoU {_num(record['worst_iou'])}, "
                   f"worst corner shift {_num(record['worst_corner_shift_px'], 2)} px, "
                   f"worst score delta {_num(record['worst_score_delta'])}")
        name = _e(record["image"])
        parts.append(
            f'<h4 class="image-name">{name}</h4><div class="pair">'
            f'<figure><img src="{left}" alt="reference: {name}">'
            f"<figcaption>reference ({_e(result.reference_name)})</figcaption></figure>"
            f'<figure><img src="{right}" alt="{_e(artifact.name)}: {name}">'
            f"<figcaption>{_e(artifact.name)}: {_e(caption)}</figcaption></figure></div>")
    return "\n".join(parts)


def _badge(status):
    cls, text = {"passed": ("pass", "PASS"), "failed": ("fail", "FAIL"),
                 "skipped": ("skip", "SKIPPED")}[status]
    return f'<span class="{cls}">{text}</span>'


def _summary_table(result):
    labelled = result.labels is not None
    head = ["Artifact", "Target", "Precision", "Result", "Recall", "Precision vs ref",
            "Mean IoU", "Shift px p95 / worst", "Score delta p95 / worst", "mAP vs ref",
            "Disagreeing images"]
    if labelled:
        head += ["mAP50-95 (labels)", "mAP drop"]
    head.append("Latency ms (median / p90)")
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, run in enumerate(result.reference_runs):
        cells = [_e("reference" + (f" #{i}" if len(result.reference_runs) > 1 else "")),
                 _e(run.target), _e(run.precision)] + [""] * 8
        if labelled:
            cells += [_num((run.labels_map or {}).get("map50_95")), ""]
        lat = run.latency_ms
        cells.append(f"{lat['median']:.1f} / {lat['p90']:.1f}" if lat else "n/a")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    for i, a in enumerate(result.artifacts):
        s = a.summary or {}
        cells = [f'<a href="#artifact-{i}">{_e(a.name)}</a>']
        cells += [_e(a.target), _e(a.precision), _badge(a.status)]
        if a.summary is None:
            cells += [""] * (7 + (2 if labelled else 0) + 1)
        else:
            cells += [_num(s.get("recall")), _num(s.get("precision")), _num(s.get("mean_iou")),
                      _e(pair_text(s, "corner_shift_px", 2)), _e(pair_text(s, "score_delta")),
                      _num(s.get("map50_95_vs_reference")),
                      f"{s.get('disagreeing_images', 0)}/{s.get('num_images', 0)}"]
            if labelled:
                cells += [_num(s.get("labels_map50_95")), _num(s.get("map50_95_drop"))]
            lat = a.latency_ms
            cells.append(f"{lat['median']:.1f} / {lat['p90']:.1f}" if lat else "n/a")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _checks_table(artifact):
    rows = ["<tr><th>Metric</th><th>Value</th><th>Limit</th><th>Result</th></tr>"]
    for c in artifact.checks:
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[c["passed"]]
        rows.append(f"<tr><td>{_e(c['metric'])}</td><td>{_num(c['value'], 4)}</td>"
                    f"<td>{_e(c['op'])} {c['limit']:g}</td><td>{verdict}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def render_html(result, max_gallery=DEFAULT_GALLERY_SIZE, images=None):
    """Returns the self-contained HTML text of a `ParityResult`.

    Args:
        result: `ParityResult`.
        max_gallery: int. Images drawn per artifact, worst first.
            Defaults to 8.
        images: `(load, why_not)` from `image_loader`, or None to build it
            from `result.images` (only when there is a gallery to draw).
            Without images the page says why and draws none.
    """
    if images is None:
        wanted = any(a.summary is not None and a.flagged_images for a in result.artifacts)
        images = image_loader(result) if wanted and max_gallery else (None, "not needed")
    verdict = ('<span class="pass">PASSED</span>' if result
               else '<span class="fail">FAILED</span>')
    legend = (
        '<p class="legend"><b>Legend:</b>'
        f'<span class="sw" style="background:{MATCHED_COLOR}"></span>matched'
        f'<span class="sw" style="background:{MISSING_COLOR}"></span>missing '
        "(in the reference, not in the artifact)"
        f'<span class="sw" style="background:{EXTRA_COLOR}"></span>extra '
        "(in the artifact, not in the reference). Labels show class and score.</p>")
    machine = ", ".join(f"{k}: {v}" for k, v in result.machine.items())
    body = [
        f"<h1>edgedet parity {verdict}</h1>",
        f"<p>Reference: <b>{_e(result.reference_name)}</b>. "
        f"{len(result.image_names)} images from <code>{_e(result.image_source)}</code>"
        + (f"; labels <code>{_e(result.labels)}</code>" if result.labels else "")
        + f". Matching: same class, IoU &ge; {result.iou_threshold:g}, greedy by score, "
        f"one-to-one. Created {_e(result.created)}.</p>",
        f'<p class="note">{_e(result.labels_note())}</p>' if result.labels_note() else "",
        _summary_table(result),
        f'<p class="note">Latency: {_e(LATENCY_NOTE)} Machine: {_e(machine)}.</p>',
        legend,
    ]
    if not result.compared:
        body.append("<p><b>No artifact could be compared, so nothing was verified.</b></p>")
    unreadable = list(getattr(result, "unreadable_images", ()))
    if unreadable:
        items = "".join(f"<li><code>{_e(u['image'])}</code>: {_e(u['reason'])}</li>"
                        for u in unreadable)
        body.append(f"<p><b>{len(unreadable)} image(s) could not be read</b> (the run fails; "
                    f"the other images were compared):</p><ul>{items}</ul>")
    for i, a in enumerate(result.artifacts):
        body.append(f'<h2 id="artifact-{i}">{_e(a.name)} {_badge(a.status)}</h2>')
        body.append(f"<p>Path <code>{_e(a.path)}</code>; target {_e(a.target)}, "
                    f"precision {_e(a.precision)}.</p>")
        if a.summary is None:
            body.append(f"<p>{'Skipped' if a.status == 'skipped' else 'Failed'}: "
                        f"{_e(a.reason)}</p>")
            continue
        for note in a.notes:
            body.append(f"<p><b>Note:</b> {_e(note)}</p>")
        body.append(_checks_table(a))
        body.append(_gallery(result, a, max_gallery, images))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>edgedet parity: {'passed' if result else 'failed'}</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
