"""Make `tests/fixtures/ultralytics/one2one_postprocess.npz`: Ultralytics' NMS-free selection.

Run by hand (not in CI) with a Python that has torch and ultralytics (edgedet
is not needed); the committed file was made with ultralytics 8.4.190:

    /work/sidevenv/bin/python tools/make_one2one_fixture.py tests/fixtures/ultralytics

It draws decoded predictions `[B, A, 4 + nc]` (xyxy boxes, class scores in
(0, 1), no two scores equal) from numpy's seeded generator, and stores
Ultralytics' `Detect.postprocess` output `[B, max_det, 6]` (x1, y1, x2, y2,
score, class) for the class-aware default and for `agnostic_nms=True`.
`tests/test_topk.py` checks `edgedet.topk` against it. Deterministic.
"""

import sys
from pathlib import Path

import numpy as np

BATCH, ANCHORS, CLASSES, MAX_DET, SEED = 2, 84, 5, 30, 2026


def predictions():
    rng = np.random.default_rng(SEED)
    xy = rng.uniform(0, 60, (BATCH, ANCHORS, 2))
    wh = rng.uniform(1, 20, (BATCH, ANCHORS, 2))
    boxes = np.concatenate([xy, xy + wh], -1)
    scores = rng.permutation(BATCH * ANCHORS * CLASSES).reshape(BATCH, ANCHORS, CLASSES)
    scores = (scores + 0.5) / scores.size  # distinct, in (0, 1)
    return np.concatenate([boxes, scores], -1).astype(np.float32)


def main(out_dir):
    import torch
    import ultralytics
    from ultralytics.nn.modules.head import Detect

    head = Detect(nc=CLASSES, reg_max=1, end2end=True, ch=(16, 16, 16)).eval()
    head.max_det = MAX_DET
    preds = predictions()
    outputs = {}
    for agnostic in (False, True):
        head.agnostic_nms = agnostic
        with torch.no_grad():
            outputs["agnostic" if agnostic else "aware"] = head.postprocess(
                torch.from_numpy(preds)).numpy()
    path = Path(out_dir) / "one2one_postprocess.npz"
    np.savez_compressed(path, predictions=preds, max_det=MAX_DET,
                        ultralytics=np.array(ultralytics.__version__), **outputs)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
