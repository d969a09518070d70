"""The per-epoch callback: evaluate the EMA, checkpoint, CSV, plot, NaN stop.

At the end of every epoch `EpochMonitor` swaps the EMA weights into the
detector, scores them on the validation set (COCO mAP through the end-to-end
graph), saves `last.keras` (and `best.keras` when the mAP50-95 improved),
writes the resume checkpoint `last_state.npz`, appends a row to
`results.csv` and redraws `results.png`. A NaN or infinite loss stops the
run before anything from that epoch is written.
"""

import csv
import math
import os
import time

from edgedet.backend import keras as _keras

keras = _keras()

COLUMNS = ("epoch", "loss", "box_loss", "cls_loss", "dfl_loss", "map50_95", "map50",
           "learning_rate", "seconds", "images_per_second")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite."""


def read_history(path):
    """Rows of a `results.csv` as dicts of floats (empty list if missing)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def plot_history(rows, path):
    """Draws loss and mAP curves per epoch into a PNG (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "box_loss", "cls_loss", "dfl_loss"):
        left.plot(epochs, [r.get(key, math.nan) for r in rows], label=key, marker=".")
    left.set_xlabel("epoch")
    left.set_title("training loss")
    left.legend()
    for key in ("map50_95", "map50"):
        right.plot(epochs, [r.get(key, math.nan) for r in rows], label=key, marker=".")
    right.set_xlabel("epoch")
    right.set_title("validation mAP (EMA weights)")
    right.set_ylim(0, 1)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


class EpochMonitor(keras.callbacks.Callback):
    """Evaluates, checkpoints and logs each epoch (see the module docstring).

    Args:
        trainer: `edgedet.train.trainer.DetectorTrainer`.
        out_dir: str. Run folder.
        evaluator: `edgedet.train.evaluate.Evaluator` or None (no mAP).
        images_per_epoch: int. For the throughput column.
        save_state: callable `(path, trainer, epoch)` writing the resume
            checkpoint.
        eval_every: int. Evaluate every this many epochs (and at the last).
            Defaults to 1.
        best: float. Best mAP50-95 so far (when resuming). Defaults to -1.
        plot: bool. Draw `results.png`. Defaults to True.
    """

    def __init__(self, trainer, out_dir, evaluator, images_per_epoch, save_state,
                 eval_every=1, best=-1.0, plot=True, total_epochs=None):
        super().__init__()
        self.trainer = trainer
        self.out_dir = out_dir
        self.evaluator = evaluator
        self.images_per_epoch = images_per_epoch
        self.save_state = save_state
        self.eval_every = max(int(eval_every), 1)
        self.best = float(best)
        self.plot = plot
        self.total_epochs = total_epochs
        self.last_good_epoch = None
        self.failure = None
        self.csv_path = os.path.join(out_dir, "results.csv")
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"loss became {float(loss)} at batch {batch + 1}"
            self.trainer.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        number = epoch + 1
        if self.failure is not None or not math.isfinite(float(logs.get("loss", 0.0))):
            self.failure = self.failure or f"loss became {logs.get('loss')} in epoch {number}"
            self.trainer.stop_training = True
            return
        seconds = time.perf_counter() - self._started
        row = {key: float(logs[key]) for key in ("loss", "box_loss", "cls_loss", "dfl_loss")
               if key in logs}
        row.update(epoch=number, seconds=round(seconds, 2),
                   images_per_second=round(self.images_per_epoch / max(seconds, 1e-9), 2),
                   learning_rate=_current_lr(self.trainer.optimizer))
        last = self.total_epochs is not None and number >= self.total_epochs
        with self.trainer.swap_ema() as detector:
            if self.evaluator is not None and (number % self.eval_every == 0 or last):
                row.update(self.evaluator())
                logs["val_map50_95"], logs["val_map50"] = row["map50_95"], row["map50"]
            detector.save(os.path.join(self.out_dir, "last.keras"))
            if row.get("map50_95", -math.inf) > self.best:
                self.best = row["map50_95"]
                detector.save(os.path.join(self.out_dir, "best.keras"))
        self.save_state(os.path.join(self.out_dir, "last_state.npz"), self.trainer, number,
                        {"best": self.best})
        self._append(row)
        self.last_good_epoch = number
        if self.plot:
            plot_history(read_history(self.csv_path), os.path.join(self.out_dir, "results.png"))
        summary = ", ".join(f"{k} {row[k]:.4f}" for k in ("loss", "map50_95", "map50") if k in row)
        print(f"epoch {number}: {summary} ({seconds:.0f} s, {row['images_per_second']} img/s)",
              flush=True)

    def _append(self, row):
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({key: row.get(key, "") for key in COLUMNS})


def _current_lr(optimizer):
    rate = optimizer.learning_rate
    try:
        return float(rate.numpy() if hasattr(rate, "numpy") else rate)
    except (TypeError, ValueError):
        return math.nan
