"""Ultralytics YOLOv8 import: imported weights compute what Ultralytics computes.

The golden fixture (tests/fixtures/ultralytics, made by
tools/make_ultralytics_fixture.py with the real ultralytics package) holds two
reduced-width YOLOv8 layouts, their inputs and Ultralytics' outputs; the
weights are redrawn here from the recorded seed (checked by sha256). The
tests that read PyTorch files skip without torch, the checkpoint test without
ultralytics.
"""

import functools
import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from edgedet.models.ultralytics_import import (  # noqa: E402
    UltralyticsImportError,
    UltralyticsWeights,
    _Copier,
    from_ultralytics,
    import_ultralytics,
    infer_layout,
    matching_preset,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "ultralytics"
CASES = ("n_w8", "m_w8", "yolo11n", "yolo11s", "yolo26n", "yolo26s")
V8_CASES = ("n_w8", "m_w8")
# The preset each case imports as: the YOLOv8 cases are reduced scales.
CASE_PRESETS = {name: name for name in CASES if name not in V8_CASES}
BOX_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-5


@functools.cache
def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_ultralytics_fixture", ROOT / "tools" / "make_ultralytics_fixture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _golden(case):
    with np.load(FIXTURES / f"golden_{case}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    config = json.loads(str(arrays["config"]))
    drawn = _tool().synthetic_weights(json.loads(str(arrays["random_keys"])), config["seed"])
    assert _tool().weights_digest(drawn) == config["weights_sha256"], "weights not reproduced"
    fixed = {k: arrays[f"fixed_{i}"] for i, k in enumerate(json.loads(str(arrays["fixed_keys"])))}
    state = {k: (drawn[k] if k in drawn else fixed[k]) for k in config["state_dict_order"]}
    return config, state, arrays


def golden(case):
    """(config, a fresh copy of the Ultralytics state_dict, fixture arrays)."""
    config, state, arrays = _golden(case)
    return config, dict(state), arrays


@functools.cache
def real_shapes():
    with gzip.open(FIXTURES / "state_dict_shapes.json.gz") as f:
        return json.loads(f.read())


def zeros_like_real(name):
    """A real Ultralytics model's state_dict, all zeros except the fixed DFL projection."""
    state = {k: np.zeros(s, np.float32) for k, s in real_shapes()[name]["shapes"]}
    for key in state:
        if key.endswith("dfl.conv.weight"):
            state[key] = np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)
    return state


def decoded_like_ultralytics(model, images):
    """The Keras raw head decoded by edgedet, as Ultralytics' [B, A, 4 + nc] (xywh, scores)."""
    from edgedet.models import families

    decode = families.family_of_model(model).decoder()
    raw = model(images.astype("float32"))
    boxes, scores = decode(raw["boxes"], raw["classes"], images.shape[1:3], model.strides,
                           model.reg_max)
    boxes = np.asarray(boxes)
    xywh = np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2,
                           boxes[..., 2:] - boxes[..., :2]], axis=-1)
    return raw, np.concatenate([xywh, np.asarray(scores)], axis=-1)


def assert_matches_ultralytics(model, arrays):
    raw, decoded = decoded_like_ultralytics(model, arrays["images"])
    expected = arrays["decoded"].transpose(0, 2, 1)
    nc = expected.shape[-1] - 4
    assert decoded.shape == expected.shape
    np.testing.assert_allclose(np.asarray(raw["boxes"]), arrays["raw_boxes"].transpose(0, 2, 1),
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(raw["classes"]),
                               arrays["raw_scores"].transpose(0, 2, 1), rtol=0, atol=1e-4)
    box_error = np.abs(decoded[..., :4] - expected[..., :4]).max()
    score_error = np.abs(decoded[..., 4:] - expected[..., 4:]).max()
    assert box_error <= BOX_TOLERANCE_PX, box_error
    assert score_error <= SCORE_TOLERANCE, score_error
    assert nc == model.num_classes
    if "one2one_raw_boxes" in arrays:  # YOLO26: the one-to-one head too
        for key, name in (("boxes", "one2one_raw_boxes"), ("classes", "one2one_raw_scores")):
            np.testing.assert_allclose(np.asarray(raw[f"one2one_{key}"]),
                                       arrays[name].transpose(0, 2, 1), rtol=0, atol=1e-4)
    if "one2one_detections" in arrays:  # and its NMS-free output [B, 300, 6]
        assert_one2one_matches_ultralytics(model, raw, arrays)


def assert_one2one_matches_ultralytics(model, raw, arrays):
    """The one-to-one head decoded, then edgedet's top-k selection = Ultralytics' [B, 300, 6]."""
    from edgedet.config import NMSConfig
    from edgedet.models import families
    from edgedet.topk import one_to_one_select

    expected = arrays["one2one_detections"]
    decode = families.family_of_model(model).decoder()
    boxes, scores = decode(raw["one2one_boxes"], raw["one2one_classes"],
                           arrays["images"].shape[1:3], model.strides, model.reg_max)
    config = NMSConfig(confidence_threshold=0.0, max_detections=expected.shape[1])
    out = {k: np.asarray(v) for k, v in one_to_one_select(boxes, scores, config).items()}
    assert (out["num_detections"] == expected.shape[1]).all()
    np.testing.assert_allclose(out["confidence"], expected[..., 4], rtol=0, atol=SCORE_TOLERANCE)
    # Row by row, except that scores equal within float noise (random weights give many
    # 1e-7 apart) may come in either order: each row must have a twin in its tie group.
    for b in range(len(expected)):
        for row, want in enumerate(expected[b]):
            tied = np.abs(out["confidence"][b] - want[4]) <= SCORE_TOLERANCE
            tied &= out["classes"][b] == int(want[5])
            corner = np.abs(out["boxes"][b][tied] - want[:4]).max(-1)
            assert corner.min(initial=np.inf) <= BOX_TOLERANCE_PX, (b, row)


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param


@pytest.fixture(scope="module")
def imported(case):
    _, state, _ = golden(case)
    return from_ultralytics(state)


def test_golden_npz_matches_ultralytics(case, tmp_path):
    config, state, arrays = golden(case)
    path = tmp_path / "weights.npz"
    np.savez(path, **state)
    model = from_ultralytics(str(path))
    assert_matches_ultralytics(model, arrays)
    assert model.num_classes == config["num_classes"]
    assert model.class_names == tuple(f"class_{i}" for i in range(config["num_classes"]))
    assert model.letterbox.to_dict() == {"size": 640, "pad_position": "center", "pad_value": 114}
    assert model.include_rescaling and model.preset == CASE_PRESETS.get(case)


def test_layout_read_from_the_shapes(case, imported):
    config, _, _ = golden(case)
    if case not in V8_CASES:
        from edgedet.models.families import get_preset

        expected = get_preset(case)
        assert list(imported.stackwise_channels) == expected["stackwise_channels"]
        assert list(imported.c3k) == expected["c3k"] and imported.psa_depth == 1
        p3 = expected["stackwise_channels"][2]
        assert imported.head_class_channels == max(p3, min(config["num_classes"], 100))
        return
    expected_depths = {"n_w8": [1, 2, 2, 1], "m_w8": [2, 4, 4, 2]}[case]
    assert list(imported.stackwise_depth) == expected_depths
    assert list(imported.neck_depths) == [expected_depths[0]] * 4
    # Ultralytics' class branch: max(P3 channels, min(nc, 100)).
    assert imported.head_class_channels == max(32, min(config["num_classes"], 100))


@pytest.mark.parametrize("size", ["n", "s", "m", "l", "x"])
def test_real_ultralytics_scales_are_edgedet_presets(size):
    layout = infer_layout(zeros_like_real(f"yolov8{size}"))
    assert matching_preset(layout) == f"yolov8{size}"
    assert layout["num_classes"] == 80


def test_real_yolo11n_is_recognised_and_imports_every_tensor():
    model = from_ultralytics(zeros_like_real("yolo11n"))
    assert type(model).__name__ == "YOLO11Detector" and model.preset == "yolo11n"
    with pytest.raises(UltralyticsImportError, match=r"--size s: yolo11s has stackwise_channels"):
        from_ultralytics(zeros_like_real("yolo11n"), size="s")


def test_full_yolov8n_imports_every_tensor():
    model = from_ultralytics(zeros_like_real("yolov8n"), size="n", num_classes=80)
    assert model.preset == "yolov8n" and model.name == "yolov8n"
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 3_157_200 - 16  # Ultralytics' summary minus the fixed DFL conv


@pytest.mark.parametrize(
    "name, words",
    [
        ("yolov5nu", "YOLOv5u"),
        ("yolov8n-seg", "segmentation"),
        ("yolov8n-pose", "pose"),
        ("yolov8n-obb", "oriented-box"),
        ("yolov8n-cls", "classification"),
        ("yolov8n-p2", "4 levels"),
    ],
)
def test_other_families_and_tasks_are_refused(name, words):
    with pytest.raises(UltralyticsImportError, match=words):
        from_ultralytics(zeros_like_real(name))


def test_size_and_class_checks_name_both_sides():
    state = zeros_like_real("yolov8n")
    with pytest.raises(UltralyticsImportError, match=r"--size s.*\[64, 128, 256, 512\].*yolov8n"):
        from_ultralytics(state, size="s")
    with pytest.raises(UltralyticsImportError, match="Expected 3 classes.*has 80"):
        from_ultralytics(state, num_classes=3)
    with pytest.raises(UltralyticsImportError, match="2 class names"):
        from_ultralytics(state, class_names=["a", "b"])
    with pytest.raises(UltralyticsImportError, match="Invalid size: 'q'"):
        from_ultralytics(state, size="q")


def test_missing_shape_mismatch_and_unused_tensors_are_all_named():
    _, state, _ = golden("n_w8")
    del state["model.4.m.1.cv2.bn.running_var"]
    state["model.12.cv1.conv.weight"] = np.zeros((64, 193, 1, 1), np.float32)
    state["model.9.extra.weight"] = np.zeros((3,), np.float32)
    with pytest.raises(UltralyticsImportError) as info:
        from_ultralytics(state)
    message = str(info.value)
    assert "3 tensor(s)" in message
    assert "missing tensor 'model.4.m.1.cv2.bn.running_var'" in message
    assert "stack2_c2f_pre_1_2_bn" in message
    assert "'model.12.cv1.conv.weight' has shape (64, 193, 1, 1)" in message
    assert "needs (64, 192, 1, 1)" in message and "pa_fpn_p4p5_pre_conv" in message
    assert "'model.9.extra.weight' is not part of a YOLOv8 detector" in message


def test_missing_layout_tensor_and_wrong_reg_max():
    _, state, _ = golden("n_w8")
    del state["model.22.cv3.0.2.weight"]
    with pytest.raises(UltralyticsImportError, match="Missing tensor 'model.22.cv3.0.2.weight'"):
        from_ultralytics(state)
    _, state, _ = golden("n_w8")
    state["model.22.cv2.0.2.weight"] = np.zeros((32, 64, 1, 1), np.float32)
    with pytest.raises(UltralyticsImportError, match="reg_max 8"):
        from_ultralytics(state)
    _, state, _ = golden("n_w8")
    state["model.22.dfl.conv.weight"] = state["model.22.dfl.conv.weight"] * 2
    with pytest.raises(UltralyticsImportError, match="not arange"):
        from_ultralytics(state)


def test_fused_convs_import_as_identity_batchnorm():
    _, state, arrays = golden("n_w8")
    eps = 1e-3
    for prefix in ("model.0", "model.4.m.1.cv1", "model.22.cv3.2.1"):
        gamma, beta, mean, var = (state.pop(f"{prefix}.bn.{p}")
                                  for p in ("weight", "bias", "running_mean", "running_var"))
        state.pop(f"{prefix}.bn.num_batches_tracked")
        scale = gamma / np.sqrt(var.astype(np.float64) + eps)
        state[f"{prefix}.conv.weight"] = (state[f"{prefix}.conv.weight"]
                                          * scale[:, None, None, None]).astype(np.float32)
        state[f"{prefix}.conv.bias"] = (beta - mean * scale).astype(np.float32)
    assert_matches_ultralytics(from_ultralytics(state), arrays)


@pytest.mark.parametrize("torch_eps", [1e-5, 1e-3, 0.1])
def test_batchnorm_eps_is_folded_exactly(torch_eps):
    rng = np.random.default_rng(0)
    gamma, beta, mean = rng.uniform(0.5, 1.5, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6)
    var = np.array([0.0, 1e-6, 1e-4, 0.5, 1.0, 2.0])
    x = rng.normal(0, 1, (10, 6))
    expected = gamma * (x - mean) / np.sqrt(var + torch_eps) + beta
    g, b, m, v = _Copier._fold_eps([gamma, beta, mean, var], torch_eps, 1e-3)
    assert (v >= 0).all()
    got = g * (x - m) / np.sqrt(v.astype(np.float64) + 1e-3) + b
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_eps_read_from_a_model_is_folded_into_the_variance():
    _, state, arrays = golden("n_w8")
    # A model whose BatchNorms use eps 1e-5 and whose variances are larger by
    # the difference computes exactly what the fixture's eps-1e-3 model does.
    eps = {}
    for key in [k for k in state if k.endswith(".bn.running_var")]:
        state[key] = (state[key].astype(np.float64) + 1e-3 - 1e-5).astype(np.float32)
        eps[key[: -len(".running_var")]] = 1e-5
    assert_matches_ultralytics(from_ultralytics(UltralyticsWeights(state, bn_epsilon=eps)), arrays)
    # ... and is not ignored: without the eps, the same tensors give other outputs.
    raw, _ = decoded_like_ultralytics(from_ultralytics(state), arrays["images"])
    assert np.abs(np.asarray(raw["boxes"]) - arrays["raw_boxes"].transpose(0, 2, 1)).max() > 1e-4


def test_names_and_image_size(tmp_path):
    _, state, _ = golden("n_w8")
    weights = UltralyticsWeights(state, class_names=("a", "b", "c"), image_size=320)
    model = from_ultralytics(weights)
    assert model.class_names == ("a", "b", "c") and model.letterbox.size == 320
    model = from_ultralytics(weights, class_names=["x", "y", "z"], image_size=96)
    assert model.class_names == ("x", "y", "z") and model.letterbox.size == 96


def test_import_writes_keras_atomically_and_round_trips(tmp_path):
    from edgedet.files import OutputExistsError
    from edgedet.models import load_model

    _, state, arrays = golden("m_w8")
    out = tmp_path / "sub" / "m.keras"
    path, _ = import_ultralytics(state, out, image_size=96)
    assert path == out and sorted(p.name for p in out.parent.iterdir()) == ["m.keras"]
    loaded = load_model(out)
    assert loaded.letterbox.to_dict() == {"size": 96, "pad_position": "center", "pad_value": 114}
    assert loaded.default_inference_config().nms.class_aware
    assert_matches_ultralytics(loaded, arrays)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="--force"):
        import_ultralytics(state, out)
    assert out.read_bytes() == before
    with pytest.raises(UltralyticsImportError, match="expected a '.keras' file"):
        import_ultralytics(state, tmp_path / "m.h5")


def test_bad_sources(tmp_path):
    with pytest.raises(UltralyticsImportError, match="No such weights file"):
        from_ultralytics(tmp_path / "missing.pt")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(UltralyticsImportError, match="Unsupported weights file"):
        from_ultralytics(tmp_path / "w.onnx")
    with pytest.raises(UltralyticsImportError, match="no 'model.N.' keys"):
        from_ultralytics({"conv.weight": np.zeros((1,))})
    with pytest.raises(UltralyticsImportError, match="Expected a weights path"):
        from_ultralytics(42)


def test_module_imports_neither_torch_nor_tensorflow():
    code = ("import sys, edgedet.models.ultralytics_import, edgedet.cli.import_cmd; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'ultralytics') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


# --- the PyTorch paths (skipped without torch / ultralytics) -----------------------------


@pytest.mark.parametrize("case_name", ["m_w8", "yolo11s", "yolo26n"])
def test_torch_state_dict_file(tmp_path, case_name):
    torch = pytest.importorskip("torch")
    config, state, arrays = golden(case_name)
    path = tmp_path / "state_dict.pt"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    assert_matches_ultralytics(from_ultralytics(path, num_classes=config["num_classes"]), arrays)
    # A half-precision state_dict (as Ultralytics saves) is read as float32.
    torch.save({"model": {k: torch.from_numpy(v).half() if v.dtype == np.float32 else
                          torch.from_numpy(v) for k, v in state.items()}}, path)
    model = from_ultralytics(path)
    kernel = model.get_layer("stem_1_conv").kernel
    expected = state["model.0.conv.weight"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(kernel), expected.transpose(2, 3, 1, 0))


def test_pickled_checkpoint_without_ultralytics_explains(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    path = tmp_path / "best.pt"
    torch.save({"model": torch.nn.Conv2d(1, 1, 1)}, path)
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import ultralytics -> ImportError
    with pytest.raises(UltralyticsImportError, match="--trust-pickle"):
        from_ultralytics(path)
    with pytest.raises(UltralyticsImportError, match="needs the ultralytics package"):
        from_ultralytics(path, trust_pickle=True)


class _FakeTorch:
    """Stands in for `torch` at the one boundary the refusal depends on, `torch.load`.

    Its safe load fails the way torch's does on a pickled checkpoint
    ("Weights only load failed"); a full load would return `full`. Every
    call is recorded, so a test can tell whether pickled code would have run.
    """

    def __init__(self, full):
        self.calls, self.full = [], full

    def load(self, path, map_location=None, weights_only=None):
        self.calls.append(weights_only)
        if weights_only:
            import pickle

            raise pickle.UnpicklingError(
                "Weights only load failed. Re-running `torch.load` with `weights_only` set to "
                "`False` will likely succeed, but it can result in arbitrary code execution.")
        return self.full


def test_a_pickle_is_never_loaded_without_trust_pickle(tmp_path, monkeypatch):
    # Runs without torch: only torch.load is replaced (see _FakeTorch); the
    # decision to refuse or to load is edgedet's own code.
    _, state, _ = golden("n_w8")
    fake = _FakeTorch({"model": dict(state), "train_args": {}})
    monkeypatch.setitem(sys.modules, "torch", fake)
    path = tmp_path / "best.pt"
    path.write_bytes(b"PK\x03\x04 a pickled checkpoint")
    with pytest.raises(UltralyticsImportError) as info:
        from_ultralytics(path)
    message = str(info.value)
    assert "--trust-pickle" in message and "runs code stored in the file" in message
    assert fake.calls == [True]  # Only the safe load was tried.
    # Asked to, the full loader runs (here on a plain dict, with ultralytics importable).
    monkeypatch.setitem(sys.modules, "ultralytics", type(sys)("ultralytics"))
    model = from_ultralytics(path, trust_pickle=True)
    assert fake.calls == [True, True, False]
    assert model.num_classes == golden("n_w8")[0]["num_classes"]


def test_cli_refuses_a_pickle_and_names_the_flag(tmp_path, monkeypatch):
    fake = _FakeTorch(None)
    monkeypatch.setitem(sys.modules, "torch", fake)
    path = tmp_path / "best.pt"
    path.write_bytes(b"pickled")
    out = tmp_path / "m.keras"
    result = _invoke(path, "--out", out)
    assert result.exit_code == 1, result.output
    assert "--trust-pickle" in result.output and "runs code" in result.output
    assert fake.calls == [True] and not out.exists()
    assert "RUNS CODE" in _invoke("--help").output


@pytest.fixture
def ultralytics_env(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-config"))
    torch = pytest.importorskip("torch")
    pytest.importorskip("ultralytics")
    return torch


@pytest.mark.parametrize("case_name", CASES)
def test_ultralytics_checkpoint_live(ultralytics_env, tmp_path, case_name):
    torch = ultralytics_env
    config, state, arrays = golden(case_name)
    if case_name in V8_CASES:
        scale = (config["depth"], config["width"], config["max_channels"])
        model = _tool()._build("yolov8.yaml", config["num_classes"], scale).eval()
    else:
        model = _tool()._build(config["yaml"], config["num_classes"]).eval()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    names = {i: f"thing{i}" for i in range(config["num_classes"])}
    model.names = names
    with torch.no_grad():  # the fixture is still what this ultralytics computes
        x = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0
        np.testing.assert_allclose(model(x)[0].numpy(), arrays["decoded"], atol=1e-4)
    path = tmp_path / "best.pt"
    torch.save({"model": None, "ema": model, "train_args": {"imgsz": 96}}, path)
    imported = from_ultralytics(path, trust_pickle=True)
    assert imported.class_names == tuple(names.values()) and imported.letterbox.size == 96
    assert_matches_ultralytics(imported, arrays)


def test_ultralytics_unactivated_sppf_is_refused(ultralytics_env):
    torch = ultralytics_env
    config, state, _ = golden("n_w8")
    model = _tool()._build("yolov8.yaml", config["num_classes"],
                           (config["depth"], config["width"], config["max_channels"]))
    model.model[9].cv1.act = torch.nn.Identity()
    with pytest.raises(UltralyticsImportError, match="model.9.cv1' uses activation Identity"):
        from_ultralytics(model)


# --- the command line -------------------------------------------------------------------


def _invoke(*args):
    from click.testing import CliRunner

    from edgedet.cli.import_cmd import import_group

    return CliRunner().invoke(import_group, ["ultralytics", *map(str, args)])


def test_cli_import(tmp_path):
    from edgedet.models import load_model

    _, state, _ = golden("n_w8")
    weights = tmp_path / "weights.npz"
    np.savez(weights, **state)
    names = tmp_path / "names.txt"
    names.write_text("cat\n\ndog\nbird\n")
    out = tmp_path / "model.keras"
    result = _invoke(weights, "--out", out, "--classes", names, "--imgsz", 96)
    assert result.exit_code == 0, result.output
    assert "custom YOLOv8 layout, 3 classes" in result.output and "center, pad 114" in result.output
    model = load_model(out)
    assert model.class_names == ("cat", "dog", "bird") and model.letterbox.size == 96

    result = _invoke(weights, "--out", out)
    assert result.exit_code == 1 and "already exists" in result.output
    assert "--force" in result.output
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("names:\n  0: person\n  1: car\n  2: dog\n")
    result = _invoke(weights, "--out", out, "--classes", data_yaml, "--force")
    assert result.exit_code == 0, result.output
    assert load_model(out).class_names == ("person", "car", "dog")


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--classes", "5"], 1, "Expected 5 classes"),
        (["--classes", "five"], 2, "neither a class count nor an existing names file"),
        (["--size", "s"], 1, "--size s"),
        (["--size", "q"], 2, "'q' is not one of"),
        (["--imgsz", "100"], 1, "multiple of 32"),
    ],
)
def test_cli_errors(tmp_path, extra, code, message):
    _, state, _ = golden("n_w8")
    weights = tmp_path / "weights.npz"
    np.savez(weights, **state)
    result = _invoke(weights, "--out", tmp_path / "m.keras", *extra)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "m.keras").exists()


def test_cli_usage(tmp_path):
    result = _invoke(tmp_path / "missing.pt", "--out", tmp_path / "m.keras")
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "w.npz").write_bytes(b"")
    result = _invoke(tmp_path / "w.npz", "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and "expected a .keras file" in result.output
    result = _invoke("--help")
    assert result.exit_code == 0 and "only checkpoints you trust" in " ".join(result.output.split())


# --- every exported artifact of an imported model agrees with it ------------------------


def test_exported_artifacts_pass_parity(tmp_path):
    from edgedet.export import export
    from edgedet.parity import run_parity
    from edgedet.runtimes.registry import open_runtime

    _, state, _ = golden("n_w8")
    # Decisive class scores, as a trained model has: a random head scores every
    # anchor near 0.5, and which near-tie wins is then rounding noise.
    for i in range(3):
        state[f"model.22.cv3.{i}.2.weight"] = state[f"model.22.cv3.{i}.2.weight"] * 15.0
        state[f"model.22.cv3.{i}.2.bias"] = state[f"model.22.cv3.{i}.2.bias"] - 2.0
    model = from_ultralytics(state, class_names=["a", "b", "c"], image_size=64)
    results = export(model, ["onnx", "tflite"], tmp_path / "artifacts")
    paths = [str(r.path) for r in results]
    with open_runtime(next(p for p in paths if p.endswith(".onnx"))) as runtime:
        letterbox = runtime.metadata.inference.letterbox
    assert (letterbox.pad_position, letterbox.pad_value, letterbox.size) == ("center", 114, 64)
    result = run_parity(model, paths, "synthetic:shapes?n=4&size=48-112&seed=7")
    assert result, result.summary_text()
    assert {a.target for a in result.artifacts} == {"onnx", "tflite"}
    assert sum(len(d) for d in result.reference_runs[0].detections) >= 5


def test_cli_import_takes_a_comma_list_of_classes(tmp_path):
    from edgedet.models import load_model

    _, state, _ = golden("n_w8")
    weights = tmp_path / "weights.npz"
    np.savez(weights, **state)
    out = tmp_path / "model.keras"
    result = _invoke(weights, "--out", out, "--classes", " cat , dog,bird ", "--imgsz", 96)
    assert result.exit_code == 0, result.output
    assert load_model(out).class_names == ("cat", "dog", "bird")
    for bad, position in (("cat,,dog", 2), ("cat,dog,", 3), (" ,cat", 1)):
        result = _invoke(weights, "--out", tmp_path / "other.keras", "--classes", bad)
        assert result.exit_code == 2, result.output
        assert "empty class name" in result.output and f"position {position} of" in result.output
    assert not (tmp_path / "other.keras").exists()
