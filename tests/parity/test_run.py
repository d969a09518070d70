"""run_parity with fake runtimes: pass, fail naming the right images, skip, bad input."""

import json

import numpy as np
import pytest

from edgedet.detections import Detections
from edgedet.parity import ParityInputError, Thresholds, run_parity


def test_identical_artifact_passes(case, fakes):
    images, table = case
    ref = fakes.FakeRuntime(table, name="ref")
    art = fakes.FakeRuntime(table, target="onnx", name="model.onnx")
    result = run_parity(ref, [art], images)
    assert result and bool(result["model.onnx"])
    s = result["model.onnx"].summary
    assert s["recall"] == 1.0 and s["precision"] == 1.0 and s["worst_corner_shift_px"] == 0.0
    assert s["map50_95_vs_reference"] == pytest.approx(1.0)
    assert s["disagreeing_images"] == 0 and result["model.onnx"].flagged_images == []
    assert result["model.onnx"].latency_ms["images"] == len(images)
    assert art.entered == 0 and ref.entered == 0  # Both were entered and exited.
    json.dumps(result.to_dict())  # Serializable.


def test_shifted_artifact_fails_and_names_the_images(case, fakes):
    images, table = case
    broken = {"img_01.png", "img_03.png"}  # Images with 1 and 3 detections.
    ref = fakes.FakeRuntime(table, name="ref")
    good = fakes.FakeRuntime(table, target="tflite", name="good.tflite")
    bad = fakes.FakeRuntime(table, target="onnx", name="bad.onnx",
                            transform=fakes.shift_boxes(broken, dx=12.0))
    result = run_parity(ref, [good, bad], images)
    assert not result
    assert result["good.tflite"].status == "passed"
    art = result["bad.onnx"]
    assert art.status == "failed" and not art
    assert {r["image"] for r in art.flagged_images} == broken
    assert art.to_dict()["failing_images"][0] == "img_03.png"  # Worst (most misses) first.
    failed = {c["threshold"] for c in art.failed_checks}
    assert {"min_recall", "min_precision"} <= failed
    # 16x20 boxes moved by 12 px: IoU 80/240 < 0.5, so each is one miss + one extra.
    s = art.summary
    assert (s["missing"], s["extra"], s["disagreeing_images"]) == (4, 4, 2)
    record = next(r for r in art.images if r["image"] == "img_01.png")
    assert record["missing_detections"][0]["class_name"] == "circle"


def test_thresholds_depend_on_precision_and_overrides(case, fakes):
    images, table = case
    ref = fakes.FakeRuntime(table)
    shift = fakes.shift_boxes({"img_02.png"}, 2.0)  # Two 16x20 boxes moved 2 px: IoU 280/360.

    def run(precision="fp32", **kwargs):
        art = fakes.FakeRuntime(table, name="a.onnx", precision=precision, transform=shift)
        return run_parity(ref, [art], images, **kwargs)

    result = run("fp32")
    a = result["a.onnx"]
    assert {c["threshold"] for c in a.failed_checks} == {
        "min_mean_iou", "max_corner_shift_px", "min_map_vs_reference"}
    assert a.summary["worst_corner_shift_px"] == pytest.approx(2.0)
    assert a.summary["mean_iou"] == pytest.approx((5 + 2 * 280 / 360) / 7)
    assert a.summary["recall"] == 1.0  # Still matched: no miss, no extra.
    assert [r["image"] for r in a.flagged_images] == ["img_02.png"]
    assert "max_corner_shift_px" not in {
        c["threshold"] for c in run("fp16")["a.onnx"].failed_checks}
    assert run("int8")
    overrides = {"a.onnx": {"max_corner_shift_px": 3, "min_mean_iou": 0.9},
                 "fp32": {"min_map_vs_reference": 0.8}}
    assert run("fp32", thresholds=overrides)
    assert run("fp32", thresholds=Thresholds(min_recall=1.0))


def test_box_format_mismatch_with_a_runtime_reference_stops(case, fakes):
    images, table = case
    ref = fakes.FakeRuntime(table, name="ref")
    art = fakes.FakeRuntime(table, name="x.onnx", box_format="xyxy")
    art_cxcy = fakes.FakeRuntime(table, name="y.onnx", box_format="center_xywh")
    # A runtime reference fixes the box format: a different one stops the run.
    with pytest.raises(ParityInputError, match=r"y\.onnx: box formats differ.*center_xywh"):
        run_parity(ref, [art, art_cxcy], images)


def test_class_list_mismatch_stops_and_names_the_artifact(case, fakes):
    images, table = case
    ref = fakes.FakeRuntime(table)
    art = fakes.FakeRuntime(table, name="other.tflite", class_names=("cat", "dog", "bird"))
    with pytest.raises(ParityInputError, match=r"other\.tflite: class names differ"):
        run_parity(ref, [art], images)


def test_unloadable_artifacts_fail_and_missing_runtimes_skip_only_when_asked(
        case, fakes, tmp_path):
    images, table = case
    ref = fakes.FakeRuntime(table)
    missing_lib = fakes.FakeRuntime(table, name="m.tflite",
                                    fail_on_enter=ImportError("No module named 'ai_edge_litert'"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx file")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0")
    good = fakes.FakeRuntime(table, name="good.onnx")
    artifacts = [missing_lib, str(corrupt), str(engine), good]
    result = run_parity(ref, artifacts, images)
    assert not result  # A named artifact that cannot load fails the run.
    assert [a.status for a in result.artifacts] == ["failed", "failed", "failed", "passed"]
    assert "ai_edge_litert" in result["m.tflite"].reason
    assert "--skip-missing-runtimes" in result["m.tflite"].reason
    assert "cannot load" in result["corrupt.onnx"].reason
    assert "not a valid ONNX model" in result["corrupt.onnx"].reason
    assert "TensorRT" in result["model.engine"].reason
    # Asked to, a missing runtime is skipped; a corrupt file or an engine without its
    # sidecar still fails.
    result = run_parity(ref, artifacts, images, skip_missing_runtimes=True)
    assert [a.status for a in result.artifacts] == ["skipped", "failed", "failed", "passed"]
    assert not result
    assert run_parity(ref, [missing_lib, good], images, skip_missing_runtimes=True)
    # Nothing compared: nothing verified, so the run does not pass.
    assert not run_parity(ref, [missing_lib], images, skip_missing_runtimes=True)


def test_bad_inputs(case, fakes, tmp_path):
    images, table = case
    ref = fakes.FakeRuntime(table)
    art = fakes.FakeRuntime(table, name="a.onnx")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParityInputError, match="No images found"):
        run_parity(ref, [art], str(empty))
    with pytest.raises(ParityInputError, match="empty"):
        run_parity(ref, [art], [])
    with pytest.raises(ParityInputError, match="Artifact not found"):
        run_parity(ref, [str(tmp_path / "nope.onnx")], images)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ParityInputError, match="Cannot tell which runtime"):
        run_parity(ref, [str(tmp_path / "notes.txt")], images)
    with pytest.raises(ParityInputError, match="No artifacts"):
        run_parity(ref, [], images)
    with pytest.raises(ParityInputError, match="uint8"):
        run_parity(ref, [art], [np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ParityInputError, match="iou_threshold"):
        run_parity(ref, [art], images, iou_threshold=1.5)


def _coco(tmp_path, entries, categories):
    path = tmp_path / "labels.json"
    images, annotations = [], []
    for i, (name, boxes) in enumerate(entries, start=1):
        images.append({"id": i, "file_name": name, "width": 64, "height": 48})
        for box, cat in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))
    return path


def test_real_labels_give_coco_map_and_drop(case, fakes, image_dir, tmp_path):
    images, table = case
    # Labels: the reference's own boxes, so the reference scores mAP 1.0.
    entries = []
    for name, image in images:
        det = table[fakes.image_key(image)][1]
        boxes = [([float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], int(c) + 1)
                 for b, c in zip(det.boxes, det.classes)]
        entries.append((name, boxes))
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(fakes.CLASS_NAMES)]
    labels = _coco(tmp_path, entries, categories)
    ref = fakes.FakeRuntime(table)
    lost = {"img_03.png"}

    def drop_all(name, detections):
        return Detections.empty(detections.bounding_box_format) if name in lost else detections

    art = fakes.FakeRuntime(table, name="a.onnx", precision="int8", transform=drop_all)
    result = run_parity(ref, [art], str(image_dir), labels=str(labels))
    assert result.reference_runs[0].labels_map["map50_95"] == pytest.approx(1.0)
    s = result["a.onnx"].summary
    # 6 boxes in all, 3 lost (all of img_03): AP per class drops.
    assert s["labels_map50_95"] < 1.0 and s["map50_95_drop"] == pytest.approx(
        1.0 - s["labels_map50_95"])
    assert any(c["threshold"] == "max_map_drop" and c["passed"] is False
               for c in result["a.onnx"].checks)

    # Labels naming an image that is not in the folder: a clear input error.
    bad = _coco(tmp_path, entries + [("elsewhere.png", [])], categories)
    with pytest.raises(ParityInputError, match="elsewhere.png"):
        run_parity(ref, [art], str(image_dir), labels=str(bad))
    # Labels whose classes the model does not have.
    odd = _coco(tmp_path, entries[:1], [{"id": 1, "name": "zebra"}])
    with pytest.raises(ParityInputError, match="zebra"):
        run_parity(ref, [art], str(image_dir), labels=str(odd))


def _ground_truth_table(dataset, fakes):
    table = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        n = len(sample["boxes"])
        det = Detections(sample["boxes"], np.linspace(0.9, 0.6, n, dtype=np.float32),
                         sample["classes"])
        table[fakes.image_key(sample["image"])] = (sample["file_name"], det)
    return table


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_labels_from_yolo_and_voc_files(fmt, fakes, tmp_path):
    from edgedet.data import SyntheticShapes, load_dataset

    dataset = SyntheticShapes(num_images=4, image_size=64, seed=1, min_objects=1,
                              classes=("circle", "square", "triangle"))
    labels = dataset.write(tmp_path / fmt, format=fmt, split="val")
    image_dir = {"yolo": tmp_path / fmt / "images" / "val",
                 "voc": tmp_path / fmt / "JPEGImages"}[fmt]
    table = _ground_truth_table(load_dataset(labels, split="val"), fakes)
    ref = fakes.FakeRuntime(table)
    art = fakes.FakeRuntime(table, name="a.onnx")
    result = run_parity(ref, [art], str(image_dir), labels=str(labels))
    assert result.reference_runs[0].labels_map["map50_95"] == pytest.approx(1.0)
    assert result["a.onnx"].summary["map50_95_drop"] == pytest.approx(0.0)


def test_a_dataset_is_both_images_and_labels(fakes):
    from edgedet.data import SyntheticShapes

    dataset = SyntheticShapes(num_images=3, image_size=64, seed=2, min_objects=1,
                              classes=("circle", "square", "triangle"))
    table = _ground_truth_table(dataset, fakes)
    ref = fakes.FakeRuntime(table)
    art = fakes.FakeRuntime(table, name="a.onnx", transform=fakes.shift_boxes(
        {dataset[0]["file_name"]}, dx=200.0))
    result = run_parity(ref, [art], dataset, labels=dataset)
    assert result.image_names == [dataset[i]["file_name"] for i in range(3)]
    assert result.reference_runs[0].labels_map["map50_95"] == pytest.approx(1.0)
    assert result["a.onnx"].summary["labels_map50_95"] < 1.0
    assert [r["image"] for r in result["a.onnx"].flagged_images] == [dataset[0]["file_name"]]


def test_an_artifact_that_crashes_in_predict_fails_alone(case, fakes):
    images, table = case
    ref = fakes.FakeRuntime(table)

    def crash(name, detections):
        raise ValueError("Expected images of 64x64, received 48x64.")

    broken = fakes.FakeRuntime(table, name="fixed.tflite", transform=crash)
    good = fakes.FakeRuntime(table, name="good.onnx")
    result = run_parity(ref, [broken, good], images)
    assert not result and result["good.onnx"].status == "passed"
    bad = result["fixed.tflite"]
    assert bad.status == "failed" and bad.summary is None
    assert bad.reason == "predict failed: ValueError: Expected images of 64x64, received 48x64."
    pytest.importorskip("jsonschema")
    from edgedet.parity.report_json import validate

    validate(json.loads(json.dumps(result.to_dict())))
    from edgedet.parity.report_html import render_html
    from edgedet.parity.report_junit import render_junit
    from edgedet.parity.report_md import render_markdown

    assert "predict failed" in render_markdown(result) and "predict failed" in render_junit(result)
    assert "Failed: predict failed" in render_html(result)
