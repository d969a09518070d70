"""Fixtures shared by the CLI tests."""

import pytest


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    from edgedet.models import YOLOV8Detector

    model = YOLOV8Detector.from_preset("tiny", class_names=["circle", "square"])
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path
