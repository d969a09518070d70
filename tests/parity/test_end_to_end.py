"""End to end: real SavedModel / ONNX / TFLite artifacts of a tiny YOLOv8 against Keras.

Kept fast: the "tiny" preset (64 px input, 3 classes), a handful of small
synthetic images, one export shared by the module's tests.

A randomly initialised YOLOv8 scores every anchor about 0.5 (class logits
near 0), so which class wins and which box NMS keeps is decided by
differences of 1e-5, which different runtimes legitimately round
differently. The fixture therefore gives the model decisive outputs
(BatchNorm statistics drawn at random, class-head kernels scaled up and
biased down) so that parity means what it does for a trained model.
"""

import json

import numpy as np
import pytest

IMAGES = "synthetic:shapes?n=5&size=64-128&seed=3"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, make_decisive_tiny_model):
    from edgedet.export import export

    model = make_decisive_tiny_model(num_classes=3)
    folder = tmp_path_factory.mktemp("e2e")
    model_path = folder / "tiny.keras"
    model.save(model_path)
    results = export(model, ["savedmodel", "onnx", "tflite"], folder / "artifacts")
    return model, model_path, [str(r.path) for r in results]


class WrongPad:
    """Wraps a real runtime but letterboxes like Ultralytics (centred, grey) by hand.

    It pads every image with a 114-grey border before the artifact (whose own
    letterbox pads bottom-right with 0) and maps the boxes back, the classic
    mistake of preprocessing twice.
    """

    def __init__(self, runtime, border=24):
        self.runtime, self.border, self.name = runtime, border, "wrong_pad.onnx"

    @property
    def metadata(self):
        return self.runtime.metadata

    def __enter__(self):
        self.runtime.__enter__()
        return self

    def __exit__(self, *exc):
        return self.runtime.__exit__(*exc)

    def predict(self, images):
        from edgedet.detections import Detections

        b = self.border
        padded = [np.pad(im, ((b, b), (b, b), (0, 0)), constant_values=114) for im in images]
        out = []
        for det in self.runtime.predict(padded):
            xyxy = det.to_format("xyxy")
            out.append(Detections(xyxy.boxes - b, xyxy.confidence, xyxy.classes, "xyxy"))
        return out


def test_cpu_artifacts_pass_and_a_wrongly_padded_one_fails(exported):
    from edgedet.parity import run_parity
    from edgedet.runtimes.registry import open_runtime

    model, _, paths = exported
    onnx_path = next(p for p in paths if p.endswith(".onnx"))
    broken = WrongPad(open_runtime(onnx_path))
    result = run_parity(model, [*paths, broken], IMAGES)
    by_target = {a.target: a for a in result.artifacts if a.name != "wrong_pad.onnx"}
    assert set(by_target) == {"savedmodel", "onnx", "tflite"}
    reference_count = result.reference_runs[0].detections
    assert sum(len(d) for d in reference_count) >= 10, "too few detections to test anything"
    for target, artifact in by_target.items():
        assert artifact.status == "passed", (target, artifact.failed_checks)
        assert artifact.summary["recall"] == 1.0 and artifact.summary["precision"] == 1.0
        assert artifact.summary["worst_corner_shift_px"] < 0.05
    bad = result["wrong_pad.onnx"]
    assert bad.status == "failed" and not result
    flagged = {r["image"] for r in bad.flagged_images}
    disagreeing = {r["image"] for r in bad.images if r["missing"] or r["extra"]}
    assert flagged and disagreeing <= flagged <= set(result.image_names)


def test_cli_end_to_end(exported, tmp_path):
    from click.testing import CliRunner

    from edgedet.cli.parity import parity_command

    _, model_path, paths = exported
    out = tmp_path / "report"
    result = CliRunner().invoke(
        parity_command,
        ["--model", str(model_path), *paths, "--images", IMAGES, "--out", str(out)],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "parity.json").read_text())
    assert document["passed"] and document["counts"]["passed"] == 3
    assert (out / "report.html").stat().st_size > 0
