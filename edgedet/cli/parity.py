"""`edgedet parity`: check that artifacts detect what the Keras reference detects."""

import pathlib
import tempfile

import click

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _usage(message):
    return click.UsageError(str(message) or "invalid input")


def load_reference(spec):
    """The reference Keras model for `--model` (a `.keras` file or a preset).

    `edgedet export` passes its live model instead, so a preset's random
    weights are the ones that were exported.
    """
    if not isinstance(spec, (str, pathlib.Path)):
        return spec
    from edgedet.cli.common import resolve_model

    return resolve_model(spec)


def _thresholds(config_path, overrides):
    from edgedet import thresholds as T

    config = T.load_config(config_path) if config_path else {}
    for selector, key, value in (T.parse_override(text) for text in overrides):
        config.setdefault(selector, {})[key] = value
    return config or None


def _check_selectors(overrides, artifacts, record=None):
    """Command-line selectors that can match no artifact are typos: say so before any work.

    Args:
        overrides: the --threshold texts.
        artifacts: the artifact paths (or, with `record`, the names in it).
        record: path of the run record the names come from, or None.
    """
    from edgedet import thresholds as T
    from edgedet.exporters.registry import target_names

    selectors = {T.parse_override(text)[0] for text in overrides}
    known = {"*", "keras", *T.DEFAULTS, *target_names()}
    known.update(pathlib.Path(path).name for path in artifacts)
    unused = sorted(selectors - known)
    if unused:
        where = f" of {record}" if record is not None else ""
        raise _usage(
            f"--threshold selector(s) {unused} match no artifact{where}. Use an artifact name "
            f"({sorted(pathlib.Path(p).name for p in artifacts)}), a target "
            f"({sorted(target_names())}) or a precision ({sorted(T.DEFAULTS)}).")


def _export_all(model, out_dir):
    from edgedet.export import export

    def progress(message):
        click.echo(f"export: {message}", err=True)

    results = export(model, "all", out_dir, progress=progress)
    return [str(r.path) for r in results]


@click.command("parity")
@click.option("--model", "-m", "model_spec", default=None, metavar="MODEL",
              help="The reference: a .keras file or a preset name (needs TensorFlow).")
@click.option("--reference", "-r", "reference_spec", default=None, metavar="ARTIFACT|BUNDLE",
              type=click.Path(exists=True),
              help="A reference without TensorFlow, instead of --model: an artifact (e.g. the "
                   "FP32 .onnx, same settings as ARTIFACTS) or a parity bundle folder written by "
                   "`edgedet export --target trt` (<stem>_parity, images + reference detections), "
                   "compared whole: a file missing, altered or added since (its manifest.json "
                   "says) is bad input.")
@click.argument("artifacts", nargs=-1, type=click.Path(exists=True))
@click.option("--images", "-i", default=None, metavar="DIR|synthetic:shapes[?n=..]",
              help="A folder of images, or a synthetic spec such as "
                   "'synthetic:shapes?n=50&size=320'. Default with a bundle --reference: its "
                   "images.")
@click.option("--labels", "-l", type=click.Path(exists=True), default=None,
              help="Real labels for COCO mAP: a COCO JSON (file names relative to --images), "
                   "a YOLO data.yaml or a VOC folder.")
@click.option("--labels-split", default="val", show_default=True,
              help="Split to read from YOLO / VOC labels or a COCO folder.")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="Report folder: parity.json, parity.md, junit.xml, report.html, and the run "
                   "record run.json + run.npz (every runtime's detections, for --from-run).")
@click.option("--from-run", "from_run", default=None, metavar="RUN_JSON",
              type=click.Path(exists=True, dir_okay=False),
              help="Compare a saved run record (OUT/run.json of an earlier `edgedet parity`) "
                   "again, with these --threshold/--config/--match-iou, without running any "
                   "model: no --model, --reference, ARTIFACTS, --images or --labels.")
@click.option("--threshold", "-t", "overrides", multiple=True, metavar="[SEL:]KEY=VALUE",
              help="Override a threshold, e.g. 'min_recall=0.95' (all artifacts) or "
                   "'onnx:min_recall=0.95' (SEL: artifact name, target or precision). "
                   "VALUE 'none' turns a check off. Repeatable.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Thresholds file (JSON or YAML): {SEL: {KEY: VALUE}}.")
@click.option("--match-iou", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True, help="Smallest IoU for a detection to match the reference's.")
@click.option("--gallery", type=click.IntRange(min=0), default=8, show_default=True,
              help="Disagreeing images drawn per artifact in report.html.")
@click.option("--skip-missing-runtimes", is_flag=True,
              help="Skip (rather than fail) an artifact whose runtime is not installed here, "
                   "e.g. a .engine without TensorRT. An artifact that cannot load always fails.")
@click.option("--force", is_flag=True,
              help="Replace the report folder if it exists and is an edgedet report folder "
                   "holding only edgedet's files (never one holding the artifacts or images).")
def parity_command(model_spec, reference_spec, artifacts, images, labels, labels_split, out,
                   overrides, config_path, match_iou, gallery, force, skip_missing_runtimes=False,
                   from_run=None):
    """Compare ARTIFACTS with the Keras reference, detection by detection.

    Every artifact and the reference (the Keras model through the same
    end-to-end graph, float32, with each artifact's own settings) run on the
    same images. Detections are matched per image (same class, IoU >= 0.5,
    greedy by score, one-to-one) and checked against per-precision
    thresholds (fp32 tight, fp16 and int8 looser; see --threshold/--config).
    An artifact that cannot be loaded (truncated, unreadable) fails the run,
    with its reason in every report; so does one whose runtime is not
    installed, unless --skip-missing-runtimes. An image that cannot be read
    is reported (name and reason) and fails the run; the other images are
    still compared. With no ARTIFACTS, every target this machine can build
    is exported to a temporary folder first.

    Every run saves its record (OUT/run.json + run.npz: each runtime's
    detections, latencies, the machine, skipped and failed artifacts).
    --from-run OUT/run.json compares that record again with other
    thresholds, opening no model and no artifact; an artifact that failed
    or could not be loaded in that run still fails. The gallery redraws the
    images from where the run read them when they are still there (not
    when they were given in memory); otherwise report.html says why.

    Exit code: 0 every artifact compared and passed, 1 a parity failure (an
    artifact failed a check, to load or to run; an image could not be read;
    or nothing could be compared), 2 bad input (including a --reference that
    cannot load, or a parity bundle that is not whole).

    \b
    Examples:
      edgedet parity --model model.keras out/model.onnx out/model.tflite \\
          --images val/ --out parity/
      edgedet parity --model model.keras out/*.tflite --images 'synthetic:shapes?n=50' \\
          --threshold int8:min_recall=0.85 --out parity/
      edgedet parity --reference engines/model_parity engines/model.engine --out parity/
      edgedet parity --reference out/model.onnx out/model_int8.onnx --images val/ --out parity/
      edgedet parity --from-run parity/run.json --threshold int8:min_recall=0.95 --out strict/
    """
    from edgedet.cli.common import USER_ERRORS

    try:
        from edgedet.files import check_writable_output

        if from_run is not None:
            result, paths = _compare_again(from_run, out, overrides, config_path, match_iou,
                                           gallery, force, given={
                                               "--model": model_spec,
                                               "--reference": reference_spec,
                                               "ARTIFACTS": artifacts, "--images": images,
                                               "--labels": labels,
                                               "--skip-missing-runtimes": skip_missing_runtimes})
        else:
            given = images if isinstance(images, list) else [images]  # export: a file list
            inputs = [*artifacts, *given, labels, config_path, model_spec, reference_spec]
            reference_spec, images = _reference_and_images(model_spec, reference_spec,
                                                           artifacts, images)
            inputs.extend(images if isinstance(images, list) else [images])
            check_writable_output(out, force, protected=inputs)
            config = _thresholds(config_path, overrides)
            _check_selectors(overrides, artifacts)
            from edgedet.parity.compare import threshold_config

            threshold_config(config)  # Refused before anything runs.
            with tempfile.TemporaryDirectory(prefix="edgedet-parity-") as scratch:
                record = _run(reference_spec, list(artifacts), images, labels, labels_split,
                              match_iou, scratch, skip_missing_runtimes)
                from edgedet.parity import compare, write_reports

                result = compare(record, thresholds=config, iou_threshold=match_iou)
                paths = write_reports(result, out, force=force, max_gallery=gallery,
                                      protected=inputs, record=record)
    except click.ClickException as error:
        if error.exit_code != EXIT_USAGE:
            raise _usage(error.format_message()) from error
        raise
    except USER_ERRORS as error:
        raise _usage(error) from error
    _echo_result(result, paths)


def _compare_again(from_run, out, overrides, config_path, match_iou, gallery, force, given):
    """`(result, report paths)` of a saved run record compared with these thresholds."""
    from edgedet.files import check_writable_output
    from edgedet.parity import compare, load_run, write_reports
    from edgedet.parity.report_html import image_loader

    conflicting = [name for name, value in given.items() if value]
    if conflicting:
        raise _usage(f"--from-run compares a saved run again and runs nothing: drop "
                     f"{', '.join(conflicting)}.")
    record_path = pathlib.Path(from_run)
    check_writable_output(out, force, protected=[record_path, record_path.with_suffix(".npz"),
                                                 config_path])
    record = load_run(record_path)
    config = _thresholds(config_path, overrides)
    _check_selectors(overrides, [a.name for a in record.artifacts], record_path)
    result = compare(record, thresholds=config, iou_threshold=match_iou)
    images = (None, "no image to draw")
    if gallery and any(a.flagged_images for a in result.compared):
        images = image_loader(result)
        if images[0] is None:
            click.echo(f"report.html draws no images: {images[1]}.", err=True)
    paths = write_reports(result, out, force=force, max_gallery=gallery,
                          protected=[record_path, record_path.with_suffix(".npz")],
                          record=record, images=images)
    return result, paths


def _echo_result(result, paths):
    from edgedet.parity.report_md import summary_table

    click.echo(summary_table(result, markdown=False))
    click.echo(result.machine_text())
    if result.labels_note():
        click.echo(result.labels_note())
    for artifact in result.artifacts:
        if artifact.status == "skipped":
            click.echo(f"skipped {artifact.name}: {artifact.reason}")
        elif artifact.status == "failed" and artifact.summary is None:
            click.echo(f"FAILED {artifact.name}: {artifact.reason}")
        elif artifact.status == "failed":
            failed = ", ".join(c["metric"] for c in artifact.failed_checks)
            images_out = [r["image"] for r in artifact.flagged_images]
            shown = ", ".join(images_out[:5]) + (" ..." if len(images_out) > 5 else "")
            click.echo(f"FAILED {artifact.name}: {failed}"
                       + (f"; images: {shown}" if shown else ""))
    for unreadable in result.unreadable_images:
        click.echo(f"FAILED input {unreadable['image']}: {unreadable['reason']}")
    verdict = "PASSED" if result else (
        "FAILED" if result.failed or result.unreadable_images
        else "FAILED: no artifact could be compared")
    click.echo(f"parity {verdict}. Report: {pathlib.Path(paths['report.html']).resolve()}")
    click.get_current_context().exit(EXIT_PASSED if result else EXIT_FAILED)


def _reference_and_images(model_spec, reference_spec, artifacts, images):
    """`(reference, images)`: the Keras model spec, or a runtime for --reference."""
    if (model_spec is None) == (reference_spec is None):
        raise _usage("Give the reference as exactly one of --model (a Keras model) or "
                     "--reference (an artifact or a parity bundle).")
    if model_spec is not None:
        if images is None:
            raise _usage("Missing option '--images': a folder of images or a synthetic spec.")
        return model_spec, images
    from edgedet.runtimes.bundle import IMAGES_DIR, is_bundle
    from edgedet.runtimes.registry import open_runtime

    if not artifacts:
        raise _usage("--reference compares the ARTIFACTS given; none were given.")
    if images is None:
        if not is_bundle(reference_spec):
            raise _usage(f"Missing option '--images' ('{reference_spec}' is not a parity "
                         "bundle, which would bring its own images).")
        images = str(pathlib.Path(reference_spec) / IMAGES_DIR)
    return open_runtime(reference_spec), images


def _run(model_spec, artifacts, images, labels, labels_split, match_iou, scratch,
         skip_missing_runtimes=False):
    """The `RunRecord` of the reference and ARTIFACTS on the images."""
    from edgedet.parity import collect
    from edgedet.parity.compare import check_iou_threshold

    check_iou_threshold(match_iou)

    model = load_reference(model_spec)
    if not artifacts:
        click.echo("No artifacts given: exporting every target this machine can build.", err=True)
        artifacts = _export_all(model, pathlib.Path(scratch) / "artifacts")

    def progress(label, index, total):
        if index == 0:
            click.echo(f"running {label} on {total} image(s)", err=True)

    return collect(model, artifacts, images, labels=labels, labels_split=labels_split,
                   progress=progress, skip_missing_runtimes=skip_missing_runtimes)
