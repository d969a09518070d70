"""Tests for edgedet.models.YOLO26Detector: presets, both heads, decode, the importer's checks.

The golden comparison with Ultralytics (both heads, random weights) is in
`test_ultralytics_import.py` (cases `yolo26n`, `yolo26s`); the exports in
`test_yolo26_export.py`.
"""

import math
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edgedet.models import YOLO26Detector, families, load_model  # noqa: E402
from edgedet.models.ultralytics_import import (  # noqa: E402
    UltralyticsImportError,
    from_ultralytics,
    infer_layout,
    matching_preset,
)

# Ultralytics' unfused model summaries (ultralytics/cfg/models/26/yolo26.yaml, 80
# classes, both heads; counted in Ultralytics 8.4.190). reg_max 1: no DFL weights.
ULTRALYTICS_PARAMS = {
    "yolo26n": 2_572_280,
    "yolo26s": 10_009_784,
    "yolo26m": 21_896_248,
    "yolo26l": 26_299_704,
    "yolo26x": 58_993_368,
}
OUTPUTS = ("boxes", "classes", "one2one_boxes", "one2one_classes")


@pytest.fixture(scope="module")
def tiny():
    return YOLO26Detector.from_preset("yolo26_tiny", num_classes=3)


@pytest.mark.parametrize(
    "name",
    [
        "yolo26n",
        pytest.param("yolo26s", marks=pytest.mark.slow),
        pytest.param("yolo26m", marks=pytest.mark.slow),
        pytest.param("yolo26l", marks=pytest.mark.slow),
        pytest.param("yolo26x", marks=pytest.mark.slow),
    ],
)
def test_preset_parameter_counts_match_ultralytics(name):
    model = YOLO26Detector.from_preset(name, num_classes=80)
    assert sum(math.prod(w.shape) for w in model.trainable_weights) == ULTRALYTICS_PARAMS[name]


def test_presets_follow_the_yaml_scales():
    get = families.get_family("yolo26").get_preset
    assert get("yolo26n")["stackwise_channels"] == [16, 32, 64, 128, 256]
    assert get("yolo26x")["stackwise_channels"] == [96, 192, 384, 768, 768]
    assert get("yolo26s")["c3k"] == [False, False, True, True, True, True, True, True]
    assert get("yolo26m")["c3k"] == [True] * 8  # parse_model forces c3k for m/l/x
    assert get("yolo26n")["c3k2_depths"] == [1] * 8
    assert get("yolo26l")["c3k2_depths"] == [2] * 7 + [1] and get("yolo26l")["psa_depth"] == 2


def test_both_heads_are_returned_and_the_family_row_says_so(tiny):
    family = families.get_family("yolo26")
    assert family.heads == ("one2many", "one2one")
    assert families.get_family("yolo11").heads == ("one2many",)
    assert families.family_of_model(tiny) is family and tiny.reg_max == 1
    out = tiny(np.zeros((2, 96, 64, 3), "float32"))
    anchors = sum((96 // s) * (64 // s) for s in (8, 16, 32))
    assert {k: tuple(v.shape)[1:] for k, v in out.items()} == {
        "boxes": (anchors, 4), "classes": (anchors, 3),
        "one2one_boxes": (anchors, 4), "one2one_classes": (anchors, 3)}
    # The end-to-end graph's checks read "boxes" / "classes" of the dict.
    from edgedet.end_to_end import split_outputs

    boxes, classes, reg_max = split_outputs(out, anchors, tiny.reg_max)
    assert boxes is out["boxes"] and classes is out["classes"] and reg_max == 1


def test_head_output_layers_are_both_heads_last_convolutions():
    family = families.get_family("yolo26")
    model = YOLO26Detector.from_preset("yolo26_tiny", num_classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    assert all(np.abs(model(images)[k]).max() > 0 for k in OUTPUTS)
    assert [model.get_layer(n).filters for n in family.head_output_layers] == [4, 3] * 6
    for name in family.head_output_layers:
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    outputs = model(images)
    assert not any(np.any(outputs[k]) for k in OUTPUTS)


def test_decode_distances_is_ultralytics_dist2bbox_times_stride():
    from edgedet.decode import decode, decode_distances, make_anchors

    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 3, (1, 84, 4)).astype("float32")
    classes = rng.normal(size=(1, 84, 2)).astype("float32")
    boxes, scores = decode_distances(raw, classes, 64)
    centers, strides = make_anchors(64)
    grid = centers / strides[:, None]  # Ultralytics' anchors, in grid cells (+0.5)
    expected = np.concatenate([grid - raw[0, :, :2], grid + raw[0, :, 2:]], -1) * strides[:, None]
    np.testing.assert_allclose(np.asarray(boxes)[0], expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores), 1 / (1 + np.exp(-classes)), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(decode(raw, classes, 64, reg_max=1)[0]), boxes)
    with pytest.raises(ValueError, match="reg_max 16.*edgedet.decode.decode"):
        decode_distances(np.zeros((1, 84, 64), "float32"), classes, 64, reg_max=16)


def test_keras_save_load_round_trip_after_import_edgedet(tiny, tmp_path):
    path = tmp_path / "tiny26.keras"
    tiny.save(path)
    images = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    loaded = load_model(path)
    assert isinstance(loaded, YOLO26Detector) and loaded.get_config() == tiny.get_config()
    for key in OUTPUTS:
        np.testing.assert_allclose(loaded(images)[key], tiny(images)[key], atol=1e-5)
    # A fresh process: `import edgedet` is enough for Keras to find the classes.
    code = (f"import edgedet, keras; m = keras.saving.load_model({str(path)!r}); "
            "print(type(m).__name__, m.preset, sorted(m.output_names))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("YOLO26Detector yolo26_tiny")


def test_describe_model_names_the_family(tiny):
    from edgedet.models import describe_model

    info = describe_model(tiny)
    assert info["model"] == "YOLO26Detector" and info["family"] == "yolo26"
    assert info["layout"]["reg_max"] == 1 and info["layout"]["strides"] == [8, 16, 32]
    assert info["layout"]["heads"] == ["one2many", "one2one"]


# --- the importer: layouts of real Ultralytics models ---------------------------------


@pytest.mark.parametrize("size", ["n", "s", "m", "l", "x"])
def test_real_ultralytics_scales_are_edgedet_presets(size, trained_like_ultralytics_state):
    layout = infer_layout(trained_like_ultralytics_state(f"yolo26{size}"))
    assert matching_preset(layout, "yolo26") == f"yolo26{size}" and layout["num_classes"] == 80


def test_what_the_yolo26_importer_refuses(trained_like_ultralytics_state):
    with pytest.raises(UltralyticsImportError,
                       match=r"not YOLO11: it has an NMS-free one-to-one head.*"
                             r"not YOLO26: 'model.23.cv2.0.2.weight' has 64 output channels"):
        from_ultralytics(trained_like_ultralytics_state("yolov10n"))
    state = trained_like_ultralytics_state("yolo26n")
    fused = {k: v for k, v in state.items() if ".one2one_" not in k}  # end2end: False
    with pytest.raises(UltralyticsImportError, match="only the one-to-many.*needs both heads"):
        from_ultralytics(fused)
    # Fused for NMS-free inference: Ultralytics drops cv2/cv3 and keeps one2one_*.
    fused = {k: v for k, v in state.items() if not k.startswith(("model.23.cv2", "model.23.cv3"))}
    with pytest.raises(UltralyticsImportError, match="only the one-to-one"):
        from_ultralytics(fused)
    plain = {k: v for k, v in state.items() if not k.startswith("model.22.m.0.1.")}
    with pytest.raises(UltralyticsImportError, match=r"model.22\) has no attention block"):
        from_ultralytics(plain)


def test_unactivated_sppf_is_checked_per_family(tiny):
    from edgedet.models.ultralytics_weights import UltralyticsWeights, check_activations

    acts = {"model.9.cv1": "Identity", "model.10.m.0.attn.qkv": "Identity",
            "model.8.cv1": "SiLU"}
    check_activations(UltralyticsWeights({}, activations=acts), ("model.9.cv1",))  # YOLO26
    with pytest.raises(UltralyticsImportError, match="'model.9.cv1' uses activation Identity"):
        check_activations(UltralyticsWeights({}, activations=acts))  # YOLOv8, YOLO11
    with pytest.raises(UltralyticsImportError, match="'model.9.cv1' uses activation SiLU"):
        check_activations(UltralyticsWeights({}, activations=dict(acts, **{
            "model.9.cv1": "SiLU"})), ("model.9.cv1",))
    check_activations(UltralyticsWeights({}))  # a bare state_dict: nothing to check


def test_training_a_yolo26_is_refused_with_the_way_out(tiny):
    from edgedet.train.trainer import DetectorTrainer

    with pytest.raises(ValueError, match=r"reg_max 1, YOLO26.*edgedet import ultralytics"):
        DetectorTrainer(tiny)
