"""Writes every parity report into one output folder, atomically."""

import pathlib

from edgedet.parity.report_html import DEFAULT_GALLERY_SIZE, render_html
from edgedet.parity.report_json import render_json
from edgedet.parity.report_junit import render_junit
from edgedet.parity.report_md import render_markdown

REPORT_FILES = ("parity.json", "parity.md", "junit.xml", "report.html")
RECORD_FILES = ("run.json", "run.npz")


def write_reports(result, out_dir, force=False, max_gallery=DEFAULT_GALLERY_SIZE, protected=(),
                  record=None, images=None):
    """Writes `parity.json`, `parity.md`, `junit.xml`, `report.html` (and the run record).

    The folder is built beside `out_dir` and moved into place only when all
    are written (`edgedet.files.atomic_output_dir`).

    Args:
        result: `ParityResult`.
        out_dir: str or path. Output folder.
        force: bool. Replace an existing `out_dir` (an edgedet report folder
            holding only its own files, see `edgedet.files`). Defaults to False.
        max_gallery: int. Images drawn per artifact in the HTML. Defaults to 8.
        protected: iterable of paths. Inputs `out_dir` must not replace; the
            result's artifact paths always are. Defaults to `()`.
        record: `edgedet.parity.record.RunRecord` or None. Saved as
            `run.json` + `run.npz` (`save_run`), to compare again later.
            Defaults to None.
        images: `(load, why_not)` from `report_html.image_loader`, or None
            to reload them from `result.images`. Defaults to None.

    Returns:
        A dict `{file name: final path}`.
    """
    from edgedet.files import atomic_output_dir
    from edgedet.parity.record import save_run

    texts = {
        "parity.json": render_json(result),
        "parity.md": render_markdown(result, html_name="report.html"),
        "junit.xml": render_junit(result),
        "report.html": render_html(result, max_gallery=max_gallery, images=images),
    }
    protected = [*protected, *(a.path for a in result.artifacts)]
    with atomic_output_dir(out_dir, force=force, protected=protected) as tmp:
        for name, text in texts.items():
            # Names are made printable where they are read; a lone surrogate left
            # anywhere is written escaped rather than failing after the whole run.
            (pathlib.Path(tmp) / name).write_bytes(text.encode("utf-8", "backslashreplace"))
        if record is not None:
            save_run(record, pathlib.Path(tmp) / RECORD_FILES[0])
    names = REPORT_FILES + (RECORD_FILES if record is not None else ())
    return {name: pathlib.Path(out_dir) / name for name in names}
