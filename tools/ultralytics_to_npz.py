"""Write an Ultralytics checkpoint's weights as a state_dict `.npz` (float16 by default).

Run by hand, with torch and ultralytics installed (not in CI). Reads the EMA
weights when the checkpoint has them (what Ultralytics validates and
exports), else its model; float tensors are stored as float16 (`--dtype`) to
keep a committed fixture small, integer ones as they are. `edgedet import
ultralytics FILE.npz` reads the result with no torch.

    python tools/ultralytics_to_npz.py runs/train/weights/last.pt out.npz

The fixture `tests/fixtures/ultralytics/yolov8n_shapes160.npz` was made this
way; its README says how it was trained.
"""

import sys

import numpy as np


def main(argv):
    import torch

    source, target = argv[:2]
    dtype = np.dtype(argv[3]) if len(argv) > 3 and argv[2] == "--dtype" else np.float16
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    model = checkpoint.get("ema") or checkpoint["model"]
    arrays = {}
    for key, value in model.float().state_dict().items():
        value = value.detach().cpu().numpy()
        arrays[key] = value.astype(dtype) if value.dtype == np.float32 else value
    np.savez_compressed(target, **arrays)
    print(f"wrote {len(arrays)} tensors to {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
