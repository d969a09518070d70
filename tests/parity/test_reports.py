"""Reports: JSON against its schema, Markdown, JUnit, HTML (escaping, and a real browser)."""

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from edgedet.parity import run_parity, write_reports
from edgedet.parity.report_html import EXTRA_COLOR, MATCHED_COLOR, MISSING_COLOR, render_html
from edgedet.parity.report_json import schema, validate

HOSTILE = "<b>x</b>.png"


@pytest.fixture
def result(fakes):
    """A run with a passing, a failing (named with HTML) and a skipped artifact."""
    images, table = fakes.make_case(n=6, size=(120, 160))
    # Plain grey images with the same detections: easy to find colours in a screenshot.
    plain, plain_table = [], {}
    for i, (name, image) in enumerate(images):
        grey = np.full_like(image, 90 + 10 * i)
        new_name = HOSTILE if name == "img_03.png" else name
        plain.append((new_name, grey))
        plain_table[fakes.image_key(grey)] = (new_name, table[fakes.image_key(image)][1])
    ref = fakes.FakeRuntime(plain_table, name="reference")
    good = fakes.FakeRuntime(plain_table, name="good.onnx", target="onnx",
                             source_sha256="b" * 64)  # Other weights: a note, not a failure.
    partial = {HOSTILE: None}

    def transform(name, detections):  # Moves 2 of 3 boxes far: 2 missing + 2 extra, 1 match.
        if name not in partial or not len(detections):
            return detections
        boxes = detections.boxes.copy()
        boxes[1:] += np.float32([40, 30, 40, 30])
        return type(detections)(boxes, detections.confidence, detections.classes,
                                detections.bounding_box_format)

    bad = fakes.FakeRuntime(plain_table, name="<i>bad</i>.tflite", target="tflite",
                            transform=transform)
    skipped = fakes.FakeRuntime(plain_table, name="m.engine",
                                fail_on_enter=ImportError("No module named 'tensorrt'"))
    return run_parity(ref, [good, bad, skipped], plain, skip_missing_runtimes=True)


def test_json_validates_against_the_schema(result, tmp_path):
    pytest.importorskip("jsonschema")
    paths = write_reports(result, tmp_path / "out")
    document = json.loads(paths["parity.json"].read_text())
    validate(document)
    assert document["schema_version"] == 2 and document["passed"] is False
    assert document["counts"] == {"artifacts": 3, "passed": 1, "failed": 1, "skipped": 1}
    bad = document["artifacts"][1]
    assert bad["status"] == "failed" and bad["failing_images"] == [HOSTILE]
    assert document["artifacts"][2]["reason"].endswith("No module named 'tensorrt'")
    assert "other weights" in document["artifacts"][0]["notes"][0]
    assert document["artifacts"][1]["notes"] == []
    # The schema is strict enough to catch a broken document.
    import jsonschema

    broken = json.loads(json.dumps(document))
    broken["artifacts"][0]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    del broken["artifacts"][0]["status"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    assert schema()["properties"]["schema_version"]["const"] == 2


def test_markdown_and_junit(result, tmp_path):
    paths = write_reports(result, tmp_path / "out")
    md = paths["parity.md"].read_text()
    assert "Parity failed" in md and "1 passed, 1 failed, 1 skipped" in md
    assert "| good.onnx | onnx | fp32 | ✅ pass |" in md
    assert "\\<i\\>bad\\</i\\>.tflite" in md and "<i>" not in md  # Escaped for Markdown.
    assert "No module named 'tensorrt'" in md
    assert "**good.onnx** note: exported from other weights" in md
    root = ET.parse(paths["junit.xml"]).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"good.onnx", "<i>bad</i>.tflite", "m.engine"}
    assert cases["good.onnx"].find("failure") is None
    failure = cases["<i>bad</i>.tflite"].find("failure")
    assert "recall" in failure.get("message") and HOSTILE in failure.text
    assert "tensorrt" in cases["m.engine"].find("skipped").get("message")
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")


def test_outputs_are_atomic_and_refuse_to_overwrite(result, tmp_path):
    out = tmp_path / "out"
    write_reports(result, out)
    with pytest.raises(FileExistsError, match="--force"):
        write_reports(result, out)
    write_reports(result, out, force=True)  # Its own report folder: replaced.
    assert sorted(p.name for p in out.iterdir()) == [
        ".edgedet-output.json", "junit.xml", "parity.json", "parity.md", "report.html"]
    (out / "stale.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match="stale.txt"):
        write_reports(result, out, force=True)
    assert (out / "stale.txt").read_text() == "a user's file"


def test_html_escapes_every_name(result):
    page = render_html(result)
    assert "<b>x</b>" not in page and "<i>bad</i>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;.png" in page and "&lt;i&gt;bad&lt;/i&gt;.tflite" in page
    assert "http://" not in page and "https://" not in page  # Self-contained.
    assert page.count("data:image/jpeg;base64,") == 2  # One flagged image, two panels.
    for color in (MATCHED_COLOR, MISSING_COLOR, EXTRA_COLOR):
        assert color in page  # The legend.


def test_html_escapes_file_names_from_a_folder(fakes, tmp_path):
    images, table = fakes.make_case(n=2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    name = "<img src=x onerror=alert(1)>.png"
    Image.fromarray(images[1][1]).save(folder / name)
    ref = fakes.FakeRuntime(table)
    bad = fakes.FakeRuntime(table, name="a.onnx", transform=fakes.shift_boxes({images[1][0]}, 30))
    # The fake looks detections up by pixels; its names come from the table.
    result = run_parity(ref, [bad], str(folder))
    assert result.image_names == [name]
    page = render_html(result)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.png" in page


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _count_near(pixels, hex_color, tolerance=40):
    target = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], np.int32)
    distance = np.abs(pixels[..., :3].astype(np.int32) - target).sum(axis=-1)
    return int((distance <= tolerance).sum())


def test_html_renders_in_a_headless_browser(result, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium).")
    paths = write_reports(result, tmp_path / "out")
    shot = tmp_path / "shot.png"
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1200,2000", paths["report.html"].resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert shot.exists(), "Chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 10, "blank screenshot"
    # Legend swatches are 14x14 px; the drawn boxes and labels add thousands more.
    swatch = 14 * 14
    assert _count_near(pixels, MISSING_COLOR) > 5 * swatch
    assert _count_near(pixels, EXTRA_COLOR) > 5 * swatch
    assert _count_near(pixels, MATCHED_COLOR) > 3 * swatch
    # The grey image panels rendered (decoded base64 JPEGs, not broken-image icons).
    grey = np.array([120, 120, 120])
    assert int((np.abs(pixels.astype(np.int32) - grey).sum(-1) <= 6).sum()) > 100_000
