"""The Keras reference runtime: live model or `.keras` file, same graph."""

import numpy as np

from edgedet.metadata import weights_sha256
from edgedet.runtimes.keras_model import KerasRuntime
from edgedet.runtimes.registry import open_runtime


def test_metadata_is_synthesized_from_the_model(detector, config):
    runtime = KerasRuntime(detector, config=config)
    metadata = runtime.metadata
    assert metadata.target == "keras"
    assert metadata.precision == "fp32"
    assert metadata.class_names == ("cat", "dog", "bird")
    assert metadata.inference == config
    assert metadata.source_sha256 == weights_sha256(detector)


def test_default_config_is_the_models(detector):
    runtime = KerasRuntime(detector)
    assert runtime.metadata.inference == detector.default_inference_config()


def test_keras_file_runs_like_the_live_model(detector, reference, images, tmp_path):
    path = tmp_path / "detector.keras"
    detector.save(path)
    batch = images["480x640"][:2]
    with open_runtime(path) as runtime:
        assert runtime.kind == "keras"
        assert runtime.metadata.source_sha256 == weights_sha256(detector)
        # The file's own default config (threshold 0.25) differs from the test's 0.15.
        with KerasRuntime(detector) as live:
            want = live.predict(batch)
        got = runtime.predict(batch)
    assert [len(d) for d in got] == [len(d) for d in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.boxes, w.boxes, atol=1e-4)
        np.testing.assert_array_equal(g.classes, w.classes)


def test_debug_outputs_only_when_asked(detector, config, reference, images):
    batch = images["17x23"][:1]
    assert "pre_nms_boxes" in reference.infer(batch)
    with KerasRuntime(detector, config=config) as runtime:
        assert sorted(runtime.infer(batch)) == [
            "boxes", "classes", "confidence", "num_detections",
        ]
