"""`parity.md`: a Markdown summary fit for a pull-request comment."""

from edgedet.files import printable
from edgedet.parity.result import LATENCY_NOTE, pair_text

STATUS = {"passed": "✅ pass", "failed": "❌ FAIL", "skipped": "⏭️ skipped"}
PLAIN_STATUS = {"passed": "pass", "failed": "FAIL", "skipped": "skipped"}
MAX_LISTED_IMAGES = 10


def _cell(value):
    """Escapes a value for Markdown text and table cells.

    Control characters become visible escapes (`\\x1b`), and `&` is
    escaped too, so `&lt;` in a name stays `&lt;` rather than rendering `<`.
    """
    text = printable(str(value).replace("\n", " "))
    for char in ("\\", "|", "`", "*", "_", "<", ">", "[", "]", "&"):
        text = text.replace(char, "\\" + char)
    return text


def _code(value):
    """A Markdown code span of `value` (shown literally; no backticks inside)."""
    return "`" + printable(str(value)).replace("`", "'") + "`"


def _num(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _latency(latency):
    if not latency:
        return "n/a"
    return f"{latency['median']:.1f} / {latency['p90']:.1f}"


def summary_table(result, markdown=True):
    """The one-row-per-artifact table.

    Args:
        result: `ParityResult`.
        markdown: bool. Escape cells and use emoji for Markdown; False gives
            the plain text the CLI prints. Defaults to True.
    """
    status = STATUS if markdown else PLAIN_STATUS
    cell = _cell if markdown else (lambda v: printable(str(v).replace("\n", " ")))
    labelled = result.labels is not None
    header = ["Artifact", "Target", "Precision", "Result", "Recall", "Precision vs ref",
              "Mean IoU", "Shift px p95 / worst", "Score delta p95 / worst", "mAP vs ref",
              "Disagreeing images"]
    if labelled:
        header += ["mAP50-95 (labels)", "mAP drop"]
    header.append("Latency ms median / p90")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run_index, run in enumerate(result.reference_runs):
        name = "reference" + (f" #{run_index}" if len(result.reference_runs) > 1 else "")
        row = [name, run.target, run.precision] + [""] * 8
        if labelled:
            row += [_num((run.labels_map or {}).get("map50_95")), ""]
        row.append(_latency(run.latency_ms))
        rows.append("| " + " | ".join(cell(c) for c in row) + " |")
    for a in result.artifacts:
        s = a.summary or {}
        if a.summary is None:  # Skipped, or failed before any comparison.
            row = [a.name, a.target, a.precision, status[a.status]] + [""] * 7
            if labelled:
                row += ["", ""]
            row.append("")
        else:
            row = [
                a.name, a.target, a.precision, status[a.status],
                _num(s.get("recall")), _num(s.get("precision")), _num(s.get("mean_iou")),
                pair_text(s, "corner_shift_px", 2), pair_text(s, "score_delta"),
                _num(s.get("map50_95_vs_reference")),
                f"{s.get('disagreeing_images', 0)}/{s.get('num_images', 0)}",
            ]
            if labelled:
                row += [_num(s.get("labels_map50_95")), _num(s.get("map50_95_drop"))]
            row.append(_latency(a.latency_ms))
        rows.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(rows)


def render_markdown(result, html_name="report.html"):
    """Returns the Markdown text of `parity.md`.

    Args:
        result: `ParityResult`.
        html_name: str. File name of the HTML report, linked at the end.
            Defaults to `"report.html"`.
    """
    verdict = "✅ **Parity passed**" if result else "❌ **Parity failed**"
    counts = (f"{len(result.compared) - len(result.failed)} passed, {len(result.failed)} failed, "
              f"{len(result.skipped)} skipped")
    lines = [
        "## edgedet parity",
        "",
        f"{verdict}: {counts}. Reference: {_cell(result.reference_name)}; "
        f"{len(result.image_names)} images from {_code(result.image_source)}"
        + (f"; labels {_code(result.labels)}" if result.labels else "") + ".",
        "",
        summary_table(result),
        "",
        f"Matching: same class, IoU >= {result.iou_threshold:g}, greedy by score, one-to-one. "
        f"Latency: {LATENCY_NOTE}",
        "",
        _cell(result.machine_text()),
    ]
    if result.labels_note():
        lines += ["", _cell(result.labels_note())]
    if not result.compared:
        lines += ["", "No artifact could be compared, so nothing was verified."]
    unreadable = list(getattr(result, "unreadable_images", ()))
    if unreadable:
        lines += ["", f"**{len(unreadable)} image(s) could not be read** (the run fails; the "
                  "other images were compared):"]
        lines += [f"- {_cell(u['image'])}: {_cell(u['reason'])}" for u in unreadable]
    for a in result.artifacts:
        if a.status == "skipped":
            lines += ["", f"**{_cell(a.name)}** skipped: {_cell(a.reason)}"]
        elif a.status == "failed" and a.summary is None:
            lines += ["", f"**{_cell(a.name)}** failed: {_cell(a.reason)}"]
        elif a.status == "failed":
            lines += ["", f"**{_cell(a.name)}** failed:"]
            for c in a.failed_checks:
                lines.append(
                    f"- {c['metric']} = {_num(c['value'], 4)} (limit {c['op']} {c['limit']:g})")
            flagged = a.flagged_images
            if flagged:
                names = ", ".join(_cell(r["image"]) for r in flagged[:MAX_LISTED_IMAGES])
                more = f" and {len(flagged) - MAX_LISTED_IMAGES} more" if len(
                    flagged) > MAX_LISTED_IMAGES else ""
                lines.append(f"- images that disagree: {names}{more}")
        for note in a.notes:
            lines += ["", f"**{_cell(a.name)}** note: {_cell(note)}"]
    lines += ["", f"Details and drawn disagreements: `{html_name}`.", ""]
    return "\n".join(lines)
