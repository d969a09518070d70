"""Collect once, compare again: the saved run record, with no runtime opened the second time."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgedet.cli import parity as parity_cli
from edgedet.cli.parity import parity_command
from edgedet.files import read_marker
from edgedet.parity import ParityInputError, Thresholds, collect, compare, load_run, save_run
from edgedet.parity.report_html import render_html

SHIFTED = {"img_01.png", "img_03.png"}


def _runtimes(fakes, table):
    """A passing FP32 artifact, an INT8 one shifted 1 px, one that cannot predict, one skipped."""

    def broken(name, detections):
        raise RuntimeError("kernel crashed")

    return {
        "good.onnx": lambda: fakes.FakeRuntime(table, target="onnx", name="good.onnx"),
        "int8.onnx": lambda: fakes.FakeRuntime(
            table, target="onnx", precision="int8", name="int8.onnx",
            transform=fakes.shift_boxes(SHIFTED, 1.0)),
        "broken.onnx": lambda: fakes.FakeRuntime(table, target="onnx", name="broken.onnx",
                                                 transform=broken),
        "m.engine": lambda: fakes.FakeRuntime(
            table, name="m.engine", fail_on_enter=ImportError("No module named 'tensorrt'")),
    }


@pytest.fixture
def no_runtime(monkeypatch, fakes):
    """Makes opening or running any runtime raise, to prove a step runs none."""
    from edgedet.runtimes import keras_model, registry

    def refuse(*args, **kwargs):
        raise AssertionError("a runtime was used")

    monkeypatch.setattr(registry, "open_runtime", refuse)
    monkeypatch.setattr(keras_model.KerasRuntime, "__init__", refuse)
    monkeypatch.setattr(fakes.FakeRuntime, "predict", refuse)
    monkeypatch.setattr(fakes.FakeRuntime, "__enter__", refuse)
    monkeypatch.setattr(parity_cli, "load_reference", refuse)


def test_saved_record_compares_again_field_by_field(case, image_dir, fakes, tmp_path, request):
    _, table = case
    made = _runtimes(fakes, table)
    record = collect(fakes.FakeRuntime(table, name="ref"), [make() for make in made.values()],
                     image_dir, skip_missing_runtimes=True)
    first = compare(record)
    assert [a.status for a in first.artifacts] == ["passed", "passed", "failed", "skipped"]
    json_path, npz_path = save_run(record, tmp_path / "rec" / "run.json")
    assert npz_path.name == "run.npz" and npz_path.exists()

    request.getfixturevalue("no_runtime")  # No runtime opens or runs from here on.
    loaded = load_run(json_path)
    again = compare(loaded)
    assert again.to_dict() == first.to_dict()
    for run_a, run_b in zip(first.reference_runs, again.reference_runs):
        assert run_a.detections == run_b.detections  # Bit for bit through the .npz.
    for a, b in zip(first.artifacts, again.artifacts):
        assert a.detections == b.detections
    assert loaded.images == str(image_dir.resolve())

    # A stricter limit fails the INT8 artifact it passed; nothing ran again.
    strict = compare(loaded, thresholds={"int8": {"max_corner_shift_px": 0.5}})
    int8 = strict["int8.onnx"]
    assert int8.status == "failed" and [c["metric"] for c in int8.failed_checks] == [
        "worst_corner_shift_px"]
    assert {r["image"] for r in int8.flagged_images} == SHIFTED
    assert strict["good.onnx"].status == "passed"
    # Gate rules stay: with every check off the artifact that could not predict still fails,
    # and the skipped one stays skipped.
    lax = compare(loaded, thresholds=Thresholds())
    assert not lax and lax["broken.onnx"].status == "failed"
    assert "kernel crashed" in lax["broken.onnx"].reason
    assert lax["m.engine"].status == "skipped"


def test_saved_records_follow_the_shipped_schema(case, image_dir, fakes, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from edgedet.parity.schemas import RUN_SCHEMA, schema, validate

    images, table = case
    on_disk = collect(fakes.FakeRuntime(table, name="ref"),
                      [make() for make in _runtimes(fakes, table).values()], image_dir,
                      skip_missing_runtimes=True)
    in_memory = collect(fakes.FakeRuntime(table, name="ref"),
                        [fakes.FakeRuntime(table, target="onnx", name="a.onnx")], images)
    documents = []
    for name, record in (("disk", on_disk), ("memory", in_memory)):
        path, _ = save_run(record, tmp_path / name / "run.json")
        documents.append(json.loads(path.read_text()))
        validate(documents[-1], RUN_SCHEMA)
    disk, memory = documents
    assert {a["status"] for a in disk["artifacts"]} == {"ran", "failed", "skipped"}
    assert isinstance(disk["images"]["reload"], str) and memory["images"]["reload"] is None
    assert schema(RUN_SCHEMA)["properties"]["version"]["const"] == 1

    # The schema is strict enough to catch what load_run refuses.
    ran = next(i for i, a in enumerate(disk["artifacts"]) if a["status"] == "ran")
    for path, value in ((("artifacts", ran, "status"), "done"),
                        (("artifacts", ran, "detections"), None),
                        (("npz", "sha256"), "not-a-hash"),
                        (("images", "shapes", 0), [10]),
                        (("reference", "extra"), 1)):
        broken = json.loads(json.dumps(disk))
        *parents, last = path
        target = broken
        for key in parents:
            target = target[key]
        target[last] = value
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, RUN_SCHEMA)
    del disk["machine"]
    with pytest.raises(jsonschema.ValidationError, match="'machine' is a required property"):
        validate(disk, RUN_SCHEMA)


def test_only_skipped_artifacts_still_do_not_pass(case, fakes, tmp_path):
    images, table = case
    skipped = fakes.FakeRuntime(table, name="m.engine", fail_on_enter=ImportError("tensorrt"))
    record = collect(fakes.FakeRuntime(table, name="ref"), [skipped], images,
                     skip_missing_runtimes=True)
    path, _ = save_run(record, tmp_path / "run.json")
    assert not compare(load_run(path), thresholds=Thresholds())


def test_in_memory_images_are_not_saved_and_the_gallery_says_so(case, fakes, tmp_path):
    images, table = case
    art = fakes.FakeRuntime(table, target="onnx", name="bad.onnx",
                            transform=fakes.shift_boxes(SHIFTED, 12.0))
    record = collect(fakes.FakeRuntime(table, name="ref"), [art], images)
    assert "data:image/jpeg" in render_html(compare(record))  # In memory: drawn.
    path, _ = save_run(record, tmp_path / "run.json")
    loaded = compare(load_run(path))
    assert loaded.images is None and not loaded
    page = render_html(loaded)
    assert "data:image/jpeg" not in page and "Images are not drawn" in page


@pytest.mark.parametrize("damage, message", [
    (lambda j, n: j.write_text("{not json"), "not a JSON file"),
    (lambda j, n: j.write_text(json.dumps({"format": "edgedet-parity-run", "version": 0})),
     "record version 0"),
    (lambda j, n: j.write_text(json.dumps({"format": "something-else"})), "not an edgedet"),
    (lambda j, n: n.unlink(), "cannot be read"),
    (lambda j, n: n.write_bytes(n.read_bytes()[:-7]), "not the one it was written with"),
    (lambda j, n: j.write_text(j.read_text().replace('"artifacts"', '"artefacts"')),
     "missing field 'artifacts'"),
])
def test_corrupt_or_old_record_names_the_file(case, fakes, tmp_path, damage, message):
    images, table = case
    record = collect(fakes.FakeRuntime(table, name="ref"),
                     [fakes.FakeRuntime(table, name="a.onnx")], images)
    json_path, npz_path = save_run(record, tmp_path / "run.json")
    damage(json_path, npz_path)
    with pytest.raises(ParityInputError, match=message) as error:
        load_run(json_path)
    assert str(json_path) in str(error.value)


def _invoke(*args):
    return CliRunner().invoke(parity_command, [str(a) for a in args],
                                              catch_exceptions=False)


def test_cli_saves_the_record_and_compares_it_again(case, image_dir, fakes, tmp_path,
                                                    monkeypatch, request):
    from edgedet.runtimes import registry

    _, table = case
    made = _runtimes(fakes, table)
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in ("good.onnx", "int8.onnx"):
        (folder / name).write_bytes(b"")
    monkeypatch.setattr(registry, "open_runtime",
                        lambda path, **options: made[str(path).rsplit("/", 1)[-1]]())
    monkeypatch.setattr(parity_cli, "load_reference", lambda spec: fakes.FakeRuntime(table))
    out = tmp_path / "out"
    first = _invoke("--model", "ref.keras", folder / "good.onnx", folder / "int8.onnx",
                    "--images", image_dir, "--out", out)
    assert first.exit_code == 0, first.output
    assert {"run.json", "run.npz"} <= set(read_marker(out)["files"])

    request.getfixturevalue("no_runtime")
    same = _invoke("--from-run", out / "run.json", "--out", tmp_path / "same")
    assert same.exit_code == 0, same.output
    assert (tmp_path / "same" / "parity.json").read_text() == (out / "parity.json").read_text()

    strict = tmp_path / "strict"
    result = _invoke("--from-run", out / "run.json", "--threshold",
                     "int8:max_corner_shift_px=0.5", "--out", strict)
    assert result.exit_code == 1, result.output
    assert "FAILED int8.onnx: worst_corner_shift_px" in result.output
    assert "data:image/jpeg" in (strict / "report.html").read_text()  # Images reloaded.
    assert (strict / "run.json").exists()  # The new folder holds its record too.

    for image in image_dir.iterdir():  # Images gone: a report without the gallery.
        image.unlink()
    image_dir.rmdir()
    result = _invoke("--from-run", out / "run.json", "--threshold",
                     "int8:max_corner_shift_px=0.5", "--out", strict, "--force")
    assert result.exit_code == 1, result.output
    assert "report.html draws no images" in result.stderr
    page = (strict / "report.html").read_text()
    assert "data:image/jpeg" not in page and "Images are not drawn" in page

    usage = _invoke("--from-run", out / "run.json", "--images", tmp_path, "--out",
                    tmp_path / "x")
    assert usage.exit_code == 2 and "drop --images" in usage.stderr
    typo = _invoke("--from-run", out / "run.json", "--threshold", "int9:min_recall=1",
                   "--out", tmp_path / "x")
    assert typo.exit_code == 2 and "match no artifact" in typo.stderr
    (out / "run.npz").unlink()
    broken = _invoke("--from-run", out / "run.json", "--out", tmp_path / "x")
    assert broken.exit_code == 2 and str(out / "run.json") in broken.stderr


def test_tiny_model_record_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from edgedet.models import YOLOV8Detector
    from edgedet.parity.report_html import image_loader
    from edgedet.runtimes.keras_model import KerasRuntime

    model = YOLOV8Detector.from_preset("tiny", num_classes=3)
    spec = "synthetic:shapes?n=3&size=64&seed=5"
    with KerasRuntime(model) as runtime:  # One traced graph as reference and artifact.
        record = collect(runtime, [runtime], spec)
    first = compare(record)
    path, _ = save_run(record, tmp_path / "run.json")
    monkeypatch.setattr(KerasRuntime, "__init__", None)  # Nothing runs from here on.
    again = compare(load_run(path))
    assert first and again.to_dict() == first.to_dict()
    assert sum(len(d) for d in again.reference_runs[0].detections) > 0
    load, why_not = image_loader(again)  # The synthetic spec regenerates the images.
    assert why_not is None
    assert [load(i).shape[:2] for i in range(3)] == [tuple(s) for s in again.image_shapes]
    assert np.array_equal(load(1), load(1))
