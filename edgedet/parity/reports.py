"""Writes every parity report into one output folder, atomically."""

import pathlib

from edgedet.parity.report_html import DEFAULT_GALLERY_SIZE, render_html
from edgedet.parity.report_json import render_json
from edgedet.parity.report_junit import render_junit
from edgedet.parity.report_md import render_markdown

REPORT_FILES = ("parity.json", "parity.md", "junit.xml", "report.html")


def write_reports(result, out_dir, force=False, max_gallery=DEFAULT_GALLERY_SIZE):
    """Writes `parity.json`, `parity.md`, `junit.xml` and `report.html`.

    The folder is built beside `out_dir` and moved into place only when all
    four are written (`edgedet.files.atomic_output_dir`).

    Args:
        result: `ParityResult`.
        out_dir: str or path. Output folder.
        force: bool. Replace an existing `out_dir`. Defaults to False.
        max_gallery: int. Images drawn per artifact in the HTML. Defaults to 8.

    Returns:
        A dict `{file name: final path}`.
    """
    from edgedet.files import atomic_output_dir

    texts = {
        "parity.json": render_json(result),
        "parity.md": render_markdown(result, html_name="report.html"),
        "junit.xml": render_junit(result),
        "report.html": render_html(result, max_gallery=max_gallery),
    }
    with atomic_output_dir(out_dir, force=force) as tmp:
        for name, text in texts.items():
            (pathlib.Path(tmp) / name).write_text(text, encoding="utf-8")
    return {name: pathlib.Path(out_dir) / name for name in REPORT_FILES}
