"""`junit.xml`: one test case per artifact, for CI test-report views.

A failed artifact gets a `<failure>` whose message lists the failed checks
and whose text lists every image that disagrees; a skipped artifact gets a
`<skipped>` with its reason; images that could not be read make one more
failed test case, `inputs`. Latency goes into `time` (seconds, total of
the timed calls). ElementTree does the XML escaping; characters XML
forbids whatever the escaping (control characters in a file name, say)
are written as visible `\\xNN` escapes, so the file always parses.
"""

import re
import xml.etree.ElementTree as ET

SUITE = "edgedet.parity"
# Characters outside XML 1.0's `Char` production (ElementTree writes them as is).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text):
    """`text` with every character XML 1.0 forbids written as a visible escape."""
    if text is None:
        return None
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii")
                        if ord(m.group()) < 0xD800 else f"\\u{ord(m.group()):04x}", text)


def _sanitize(root):
    for element in root.iter():
        element.text = _xml_text(element.text)
        element.tail = _xml_text(element.tail)
        for key, value in list(element.attrib.items()):
            element.attrib[key] = _xml_text(value)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4g}"


def render_junit(result):
    """Returns the JUnit XML text of a `ParityResult`."""
    suites = ET.Element("testsuites", name=SUITE)
    unreadable = list(getattr(result, "unreadable_images", ()))
    suite = ET.SubElement(
        suites, "testsuite", name=SUITE,
        tests=str(len(result.artifacts) + bool(unreadable)),
        failures=str(len(result.failed) + bool(unreadable)),
        errors="0", skipped=str(len(result.skipped)), timestamp=result.created)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("reference", result.reference_name),
        ("images", f"{len(result.image_names)} from {result.image_source}"),
        ("labels", result.labels or ""),
        ("iou_threshold", f"{result.iou_threshold:g}"),
    ):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for artifact in result.artifacts:
        latency = artifact.latency_ms
        seconds = latency["median"] * latency["images"] / 1000.0 if latency else 0.0
        case = ET.SubElement(
            suite, "testcase", classname=f"{SUITE}.{artifact.target}.{artifact.precision}",
            name=artifact.name, time=f"{seconds:.3f}")
        if artifact.status == "skipped":
            ET.SubElement(case, "skipped", message=artifact.reason or "skipped")
            continue
        if artifact.summary is None:  # Failed before any comparison (predict crashed).
            failure = ET.SubElement(case, "failure", message=artifact.reason or "parity failed",
                                    type="ParityError")
            failure.text = artifact.reason
            continue
        summary = artifact.summary
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join([f"note: {note}" for note in artifact.notes] + [
            f"{k} = {_fmt(v) if isinstance(v, float) else v}" for k, v in summary.items()])
        if artifact.status == "failed":
            failed = artifact.failed_checks
            message = "; ".join(
                f"{c['metric']} = {_fmt(c['value'])} (limit {c['op']} {c['limit']:g})"
                for c in failed)
            flagged = artifact.flagged_images
            lines = [f"{len(flagged)} of {len(artifact.images)} images "
                     "disagree with the reference:"]
            for r in flagged:
                lines.append(
                    f"  {r['image']}: {r['missing']} missing, {r['extra']} extra, "
                    f"worst corner shift {_fmt(r['worst_corner_shift_px'])} px, "
                    f"worst score delta {_fmt(r['worst_score_delta'])}, "
                    f"worst IoU {_fmt(r['worst_iou'])}")
            failure = ET.SubElement(case, "failure", message=message or "parity failed",
                                    type="ParityFailure")
            failure.text = "\n".join(lines)
    if unreadable:
        case = ET.SubElement(suite, "testcase", classname=f"{SUITE}.inputs", name="inputs",
                             time="0.000")
        failure = ET.SubElement(
            case, "failure", type="UnreadableImages",
            message=f"{len(unreadable)} image(s) could not be read; the others were compared")
        failure.text = "\n".join(f"{u['image']}: {u['reason']}" for u in unreadable)
    _sanitize(suites)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
