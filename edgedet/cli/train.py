"""`edgedet train`: train a YOLOv8 or YOLO11 on a dataset or on synthetic shapes."""

import click

from edgedet.cli.common import user_errors
from edgedet.models.families import preset_summary


@click.command("train")
@click.option("--data", required=True, metavar="PATH|synthetic:shapes[?...]",
              help="Training data: a COCO JSON / YOLO data.yaml / VOC folder, or "
                   "synthetic:shapes?n=2000&size=256 (options: n, seed, size, min_objects, "
                   "max_objects, min_object_size, max_object_size, ...).")
@click.option("--model", "-m", default="yolov8n", show_default=True, metavar="PRESET|FILE",
              help=f"Architecture preset ({preset_summary()}) or a .keras file to "
                   "fine-tune (same classes).")
@click.option("--imgsz", type=int, default=None,
              help="Model input size (multiple of 32). Default: the preset's / model's own.")
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--out", "-o", default="runs/train", show_default=True, type=click.Path(),
              help="Run folder: best.keras, last.keras, results.csv, results.png, ...")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last_state.npz.")
@click.option("--val-data", default=None, metavar="PATH|SPEC",
              help="Validation data. Default: the 'val' split (synthetic: 200 images of "
                   "another stream), else 10% of the training images.")
@click.option("--val-images", type=click.IntRange(min=1), default=None,
              help="Evaluate on at most this many validation images per epoch.")
@click.option("--eval-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluate every N epochs (and after the last).")
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw",
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate. Default: 0.002 (AdamW), 0.01 (SGD).")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--decay", type=click.Choice(["cosine", "linear"]), default="cosine",
              show_default=True)
@click.option("--ema-tau", type=click.FloatRange(min=1), default=2000.0, show_default=True,
              help="EMA warm-up in steps (decay 0.9999 * (1 - exp(-step / tau))).")
@click.option("--mosaic", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Probability of a 4-image mosaic.")
@click.option("--scale", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Random zoom range (1 +- scale).")
@click.option("--flip", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--hsv", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Colour jitter strength (0 turns it off).")
@click.option("--max-boxes", type=click.IntRange(min=1), default=64, show_default=True,
              help="Boxes per training image after augmentation (extra ones are dropped).")
@click.option("--holdout", type=click.IntRange(min=0), default=0, show_default=True,
              help="synthetic: data only: after training, score best.keras on this many "
                   "fresh images of another seed (final_metrics.json).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_command(data, model, imgsz, epochs, batch, out, resume, val_data, val_images,
                  eval_every, optimizer, lr, warmup_epochs, decay, ema_tau, mosaic, scale, flip,
                  hsv, max_boxes, holdout, seed, quiet):
    """Train a YOLOv8 or YOLO11 detector with Keras fit.

    Shows a progress bar per epoch, evaluates the EMA weights each epoch
    (COCO mAP50-95 / mAP50 through the same end-to-end graph as `predict`),
    keeps best.keras and last.keras (class names and letterbox inside), and
    writes results.csv and results.png in --out.

    \b
    Examples:
      edgedet train --data synthetic:shapes?n=2000&size=256 --model pico --epochs 20
      edgedet train --data coco/ --model yolov8n --imgsz 320 --out runs/coco
      edgedet train --data coco/ --out runs/coco --resume
    """
    with user_errors():
        from edgedet.train.callbacks import NonFiniteLossError
        from edgedet.train.pipeline import AugmentConfig
        from edgedet.train.run import holdout_metrics, train

        augment = AugmentConfig(mosaic=mosaic, scale=scale, flip=flip, hsv_h=0.015 * hsv,
                                hsv_s=0.5 * hsv, hsv_v=0.3 * hsv)
        try:
            result = train(
                data, model=model, imgsz=imgsz, epochs=epochs, batch=batch, out=out,
                val_data=val_data, val_images=val_images, optimizer=optimizer, lr=lr,
                warmup_epochs=warmup_epochs, decay=decay, ema_tau=ema_tau, augment=augment,
                eval_every=eval_every, max_boxes=max_boxes, resume=resume, seed=seed,
                verbose=0 if quiet else 1,
            )
        except NonFiniteLossError as e:
            raise click.ClickException(str(e)) from e
        click.echo(f"Trained {result.epochs} epochs; best validation mAP50-95 "
                   f"{result.best_map50_95:.4f}. Models in {result.out_dir}/ (best.keras, "
                   "last.keras).")
        if holdout:
            metrics = holdout_metrics(result.out_dir, data, holdout, seed=seed + 1000)
            click.echo(f"Held-out ({holdout} images, seed {seed + 1000}): "
                       f"mAP50-95 {metrics['map50_95']:.4f}, mAP50 {metrics['map50']:.4f}.")


if __name__ == "__main__":  # pragma: no cover
    train_command()
