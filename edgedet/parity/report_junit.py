"""`junit.xml`: one test case per artifact, for CI test-report views.

A failed artifact gets a `<failure>` whose message lists the failed checks
and whose text lists every image that disagrees; a skipped artifact gets a
`<skipped>` with its reason. Latency goes into `time` (seconds, total of
the timed calls). ElementTree does the XML escaping.
"""

import xml.etree.ElementTree as ET

SUITE = "edgedet.parity"


def _fmt(value):
    return "n/a" if value is None else f"{value:.4g}"


def render_junit(result):
    """Returns the JUnit XML text of a `ParityResult`."""
    suites = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(
        suites, "testsuite", name=SUITE,
        tests=str(len(result.artifacts)), failures=str(len(result.failed)),
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
            lines = [f"{len(flagged)} of {len(artifact.images)} images disagree with the reference:"]
            for r in flagged:
                lines.append(
                    f"  {r['image']}: {r['missing']} missing, {r['extra']} extra, "
                    f"worst corner shift {_fmt(r['worst_corner_shift_px'])} px, "
                    f"worst IoU {_fmt(r['worst_iou'])}")
            failure = ET.SubElement(case, "failure", message=message or "parity failed",
                                    type="ParityFailure")
            failure.text = "\n".join(lines)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
