"""Make the golden fixture of `tests/models/test_ultralytics_import.py` with real Ultralytics.

Run by hand (not in CI), in a virtual environment of its own that has torch
and ultralytics (edgedet is not needed). The committed fixture was made with
ultralytics 8.4.190 and torch 2.13.0+cpu (recorded in each file's `config`):

    python3 -m venv /work/venv-ul
    /work/venv-ul/bin/pip install torch==2.13.0 ultralytics
    YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/ul-config \\
        /work/venv-ul/bin/python tools/make_ultralytics_fixture.py tests/fixtures/ultralytics

(Naming cases after the folder, e.g. `... tests/fixtures/ultralytics yolo11n
yolo11s`, writes only those and leaves the shapes file as it is; the name
`shapes` writes the shapes file.)

(`torch==2.13.0` is the CPU wheel on these machines; an unpinned `torch`
may pull a multi-GB CUDA build.) No weights are downloaded: the models are
built from Ultralytics' packaged yaml files with random weights. The output
is deterministic: running it again reproduces the same arrays.

It writes, into the output folder:

- `golden_<case>.npz`, one per case: a random-weight model built by
  Ultralytics' own `DetectionModel`: YOLOv8 from `yolov8.yaml` at a reduced
  scale, or the real `yolo11n.yaml` / `yolo11s.yaml`,
  the uint8 input images, and Ultralytics' eval-mode outputs (raw DFL box
  logits `[B, 64, A]`, raw class logits `[B, nc, A]`, and the decoded
  `[B, 4 + nc, A]`: xywh in pixels and sigmoid scores). A YOLO26 case
  (`yolo26n.yaml`, `yolo26s.yaml`: two heads, reg_max 1) has the
  one-to-many head's outputs under those names (raw boxes `[B, 4, A]`, the
  four distances), the one-to-one head's raw outputs as `one2one_raw_boxes`
  and `one2one_raw_scores`, and `one2one_detections` `[B, 300, 6]`: what
  Ultralytics' eval-mode forward returns with `model.end2end = True`, its
  NMS-free selection (top 300 anchors by best class score, then top 300 of
  their 300 x nc scores; x1, y1, x2, y2 in input pixels, score, class). The
  weights are not
  stored (about 4 MB per case): every float tensor except the DFL
  conv is drawn by `synthetic_weights` from numpy's frozen `RandomState`
  stream, which the test calls again; a sha256 of the drawn weights is
  stored so the test knows it rebuilt exactly what Ultralytics ran.
- `state_dict_shapes.json.gz`: the state_dict keys and shapes of real
  Ultralytics models (YOLOv8 n-x, YOLO11n and YOLO26 n-x at 80 classes, and
  the models edgedet refuses: YOLOv5u, YOLOv10, YOLOv8-p2, segmentation, pose,
  OBB, classification), for the importer's layout and error tests.

This module imports only numpy at import time: the test loads
`synthetic_weights` and `weights_digest` from it without torch.
"""

import gzip
import hashlib
import json
import os
import sys

import numpy as np

# name: (depth, width, max_channels, num_classes, batch, height, width_px, seed[, yaml])
# Without a yaml the case is `yolov8.yaml` at that reduced scale; with one,
# the yaml's own scale (depth, width, max_channels are recorded only).
CASES = {
    # yolov8n's depths (C2f repeats 1, 2, 2, 1; neck 1) at 1/8 width (channels
    # 16, 32, 64, 128): 3 classes, so the class branch is as wide as P3 (32).
    "n_w8": (0.33, 0.125, 1024, 3, 2, 64, 96, 0),
    # yolov8m's depths (2, 4, 4, 2; neck 2) and channel cap (768) at 1/8 width
    # (16, 32, 64, 96): 40 classes, so the class branch is min(nc, 100) = 40
    # wide, not P3's 32.
    "m_w8": (0.67, 0.125, 768, 40, 1, 96, 64, 1),
    # The real yolo11n (80 classes: class branch 80 wide, P3 is 64) and
    # yolo11s (3 classes: class branch as wide as P3, 128); C2PSA, C3k and
    # the depthwise class branch all run. The input is small (the attention
    # runs on the 1/32 map), the weights full size.
    "yolo11n": (0.50, 0.25, 1024, 80, 2, 64, 96, 2, "yolo11n.yaml"),
    "yolo11s": (0.50, 0.50, 1024, 3, 1, 96, 128, 3, "yolo11s.yaml"),
    # The real yolo26n (80 classes) and yolo26s (3 classes, two images): both
    # heads. The images give more than 300 anchors (630), so the NMS-free
    # output has its full 300 rows.
    "yolo26n": (0.50, 0.25, 1024, 80, 1, 160, 192, 4, "yolo26n.yaml"),
    "yolo26s": (0.50, 0.50, 1024, 3, 2, 192, 160, 5, "yolo26s.yaml"),
}

# Models whose state_dict keys and shapes are recorded (yaml, task, nc).
SHAPE_MODELS = {
    "yolov8n": ("yolov8n.yaml", "detect", 80),
    "yolov8s": ("yolov8s.yaml", "detect", 80),
    "yolov8m": ("yolov8m.yaml", "detect", 80),
    "yolov8l": ("yolov8l.yaml", "detect", 80),
    "yolov8x": ("yolov8x.yaml", "detect", 80),
    "yolov5nu": ("yolov5n.yaml", "detect", 80),
    "yolo11n": ("yolo11n.yaml", "detect", 80),
    "yolo26n": ("yolo26n.yaml", "detect", 80),
    "yolo26s": ("yolo26s.yaml", "detect", 80),
    "yolo26m": ("yolo26m.yaml", "detect", 80),
    "yolo26l": ("yolo26l.yaml", "detect", 80),
    "yolo26x": ("yolo26x.yaml", "detect", 80),
    "yolov10n": ("yolov10n.yaml", "detect", 80),
    "yolov8n-p2": ("yolov8n-p2.yaml", "detect", 80),
    "yolov8n-seg": ("yolov8n-seg.yaml", "segment", 80),
    "yolov8n-pose": ("yolov8n-pose.yaml", "pose", 1),
    "yolov8n-obb": ("yolov8n-obb.yaml", "obb", 15),
    "yolov8n-cls": ("yolov8n-cls.yaml", "classify", 1000),
}


def is_random(key):
    """Whether `synthetic_weights` draws this state_dict entry (else it is stored as is)."""
    return not key.endswith("num_batches_tracked") and ".dfl." not in key


def synthetic_weights(shapes, seed):
    """Draws a YOLOv8 state_dict's float tensors from numpy's frozen `RandomState` stream.

    Values are chosen so that the activations keep a useful range through the
    network: convolutions `U(-1, 1) * sqrt(3 / fan_in)`, BatchNorm gamma
    `U(0.5, 1.5)`, beta and running mean `U(-0.5, 0.5)`, running variance
    `U(0.5, 2)`, and biases `U(-1, 1)`.

    Args:
        shapes: list of `(key, shape)` in state_dict order (only the keys for
            which `is_random` is true are drawn, in this order).
        seed: int.

    Returns:
        dict `{key: float32 array}`.
    """
    rng = np.random.RandomState(seed)
    out = {}
    for key, shape in shapes:
        shape = tuple(shape)
        if key.endswith(".bn.weight"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith(".bn.running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif key.endswith((".bn.bias", ".bn.running_mean")):
            value = rng.uniform(-0.5, 0.5, shape)
        elif len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            value = rng.uniform(-1.0, 1.0, shape) * np.sqrt(3.0 / fan_in)
        else:
            value = rng.uniform(-1.0, 1.0, shape)
        out[key] = value.astype(np.float32)
    return out


def weights_digest(weights):
    """sha256 of a dict of arrays (keys in sorted order, float32 little-endian bytes)."""
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(weights[key], dtype="<f4").tobytes())
    return digest.hexdigest()


def _build(yaml_name, nc, scale=None):
    from ultralytics.nn.tasks import (
        ClassificationModel,
        DetectionModel,
        OBBModel,
        PoseModel,
        SegmentationModel,
        yaml_model_load,
    )

    cfg = yaml_model_load(yaml_name)
    if scale is not None:
        cfg["scales"] = {"n": list(scale)}
        cfg["scale"] = "n"
    task = cfg.get("task") or next(
        (t for t in ("seg", "pose", "obb", "cls") if f"-{t}" in yaml_name), "detect"
    )
    model_class = {
        "seg": SegmentationModel,
        "pose": PoseModel,
        "obb": OBBModel,
        "cls": ClassificationModel,
    }.get(task, DetectionModel)
    return model_class(cfg=cfg, nc=nc, verbose=False)


def make_case(name, out_dir):
    import torch

    depth, width, max_channels, nc, batch, height, width_px, seed, *yaml = CASES[name]
    if yaml:
        model = _build(yaml[0], nc).eval()
    else:
        model = _build("yolov8.yaml", nc, (depth, width, max_channels)).eval()
    state = model.state_dict()
    shapes = [(k, list(v.shape)) for k, v in state.items() if is_random(k)]
    drawn = synthetic_weights(shapes, seed)
    new_state = {k: (torch.from_numpy(drawn[k]) if k in drawn else v) for k, v in state.items()}
    model.load_state_dict(new_state)
    eps = {float(m.eps) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert eps == {1e-3}, eps

    rng = np.random.RandomState(100 + seed)
    images = rng.randint(0, 256, (batch, height, width_px, 3)).astype(np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        model.end2end = False  # a YOLO26's one-to-many head, as for the other families
        decoded, raw = model(x)
    two_heads = "one2one" in raw
    if two_heads:
        raw, one2one = raw["one2many"], raw["one2one"]
        model.end2end = True
        with torch.no_grad():
            detections = model(x)[0]
    fixed = {k: v.numpy() for k, v in state.items() if not is_random(k)}
    arrays = {
        "images": images,
        "decoded": decoded.numpy().astype(np.float32),
        "raw_boxes": raw["boxes"].numpy().astype(np.float32),
        "raw_scores": raw["scores"].numpy().astype(np.float32),
        **({
            "one2one_raw_boxes": one2one["boxes"].numpy().astype(np.float32),
            "one2one_raw_scores": one2one["scores"].numpy().astype(np.float32),
            "one2one_detections": detections.numpy().astype(np.float32),
        } if two_heads else {}),
        "random_keys": np.array(json.dumps(shapes)),
        "fixed_keys": np.array(json.dumps(sorted(fixed))),
        "config": np.array(
            json.dumps(
                {
                    "depth": depth,
                    "width": width,
                    "max_channels": max_channels,
                    "num_classes": nc,
                    "seed": seed,
                    "yaml": yaml[0] if yaml else "yolov8.yaml",
                    "weights_sha256": weights_digest(drawn),
                    "state_dict_order": list(state),
                    "ultralytics": _version(),
                }
            )
        ),
    }
    for i, key in enumerate(sorted(fixed)):
        arrays[f"fixed_{i}"] = fixed[key]
    path = os.path.join(out_dir, f"golden_{name}.npz")
    np.savez_compressed(path, **arrays)
    scores = decoded[:, 4:]
    print(
        f"{path}: {sum(v.numel() for v in state.values())} values, "
        f"boxes {tuple(decoded.shape)} range [{float(decoded[:, :4].min()):.1f}, "
        f"{float(decoded[:, :4].max()):.1f}], scores range [{float(scores.min()):.4f}, "
        f"{float(scores.max()):.4f}], {os.path.getsize(path)} bytes"
    )


def _version():
    import torch
    import ultralytics

    return {"ultralytics": ultralytics.__version__, "torch": torch.__version__}


def make_shapes(out_dir):
    records = {}
    for name, (yaml_name, task, nc) in SHAPE_MODELS.items():
        model = _build(yaml_name, nc)
        records[name] = {
            "task": task,
            "num_classes": nc,
            "shapes": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        }
        print(f"{name}: {len(records[name]['shapes'])} tensors")
    records["_versions"] = _version()
    path = os.path.join(out_dir, "state_dict_shapes.json.gz")
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(json.dumps(records, sort_keys=True).encode())
    print(f"{path}: {os.path.getsize(path)} bytes")


def main(argv):
    """`OUT_DIR [CASE ...]`: every case and the shapes file, or only the named cases
    (`shapes`: the shapes file)."""
    if not argv or any(name not in CASES and name != "shapes" for name in argv[1:]):
        print(__doc__)
        print(f"Cases: {list(CASES)}")
        return 2
    out_dir = argv[0]
    os.makedirs(out_dir, exist_ok=True)
    import torch

    torch.manual_seed(0)
    for name in [n for n in argv[1:] if n != "shapes"] or ([] if argv[1:] else CASES):
        make_case(name, out_dir)
    if not argv[1:] or "shapes" in argv[1:]:
        make_shapes(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
