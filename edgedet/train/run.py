"""`train()`: one call from a dataset spec to a trained `.keras` model.

The run folder holds `best.keras` / `last.keras` (EMA weights, class names
and letterbox inside), `last_state.npz` (resume checkpoint), `results.csv`,
`results.png`, `args.json` and `train_batch.png` (a drawn training batch).
"""

import dataclasses
import json
import os

from edgedet.config import LetterboxConfig


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Args:
        model: the trained `YOLOV8Detector` holding the EMA weights.
        out_dir: str. The run folder.
        history: list of dict. The rows of `results.csv`.
        best_map50_95: float. Best validation mAP50-95 (-1 without validation).
        epochs: int. Epochs completed.
    """

    model: object
    out_dir: str
    history: list
    best_map50_95: float
    epochs: int


def build_model(model, class_names, imgsz, pad_position, pad_value):
    """The detector `train` fits: a preset (head biases initialised) or a model / `.keras`
    file with these classes, rebuilt at `imgsz` when its size differs.

    Args:
        model: str or `YOLOV8Detector`. A preset name, a `.keras` path or a model.
        class_names: list of str. The dataset's classes.
        imgsz: int. Training image size.
        pad_position: str. Letterbox pad position of a preset, or of a model
            rebuilt at `imgsz`.
        pad_value: int. Letterbox pad value, likewise.
    """
    from edgedet.models import families

    letterbox = LetterboxConfig(size=imgsz, pad_position=pad_position, pad_value=pad_value)
    if isinstance(model, str) and not model.endswith(".keras"):
        from edgedet.train.trainer import init_head_biases

        detector = families.family_of_preset(model).model_class().from_preset(
            model, class_names=list(class_names), letterbox=letterbox)
        init_head_biases(detector)
        return detector
    if isinstance(model, str):
        from edgedet.models import load_model

        model = load_model(model)
    if list(model.class_names) != list(class_names):
        raise ValueError(
            f"The model's classes {list(model.class_names)} differ from the dataset's "
            f"{list(class_names)}; fine-tuning to other classes is not supported yet."
        )
    if model.letterbox.size != imgsz:
        config = dict(model.get_config(), letterbox=letterbox.to_dict())
        rebuilt = type(model).from_config(config)
        rebuilt.set_weights(model.get_weights())
        model = rebuilt
    return model


def _default_size(model):
    if isinstance(model, str) and not model.endswith(".keras"):
        from edgedet.models import families

        return families.family_of_preset(model).get_preset(model)["letterbox"]["size"]
    if isinstance(model, str):
        from edgedet.models import load_model

        return load_model(model).letterbox.size
    return model.letterbox.size


def _validation(data, val_data, split_fraction=0.1):
    """Returns `(train, val)` datasets."""
    from edgedet.data import DatasetError, Subset, load_dataset

    train = load_dataset(data, split="train")
    if val_data is not None:
        return train, load_dataset(val_data, split="val")
    if str(data).startswith("synthetic:"):
        val = load_dataset(data, split="val")  # another random stream
        return train, Subset(val, list(range(min(len(val), 200))))
    try:
        return train, load_dataset(data, split="val")
    except (DatasetError, FileNotFoundError, ValueError):
        count = max(1, int(len(train) * split_fraction))
        if len(train) <= count:
            raise
        return Subset(train, list(range(count, len(train)))), Subset(train, list(range(count)))


def train(
    data,
    model="yolov8n",
    imgsz=None,
    epochs=50,
    batch=16,
    out="runs/train",
    val_data=None,
    val_images=None,
    optimizer="adamw",
    lr=None,
    weight_decay=5e-4,
    warmup_epochs=1.0,
    decay="cosine",
    final_lr_fraction=0.01,
    clipnorm=10.0,
    ema_decay=0.9999,
    ema_tau=2000.0,
    augment=None,
    max_boxes=64,
    eval_every=1,
    resume=False,
    mixed_precision="auto",
    jit_compile="auto",
    seed=0,
    verbose=1,
    plot=True,
    callbacks=None,
):
    """Trains a YOLOv8 detector with Keras `fit`.

    Example:

    ```python
    result = train("synthetic:shapes?n=2000&size=256", model="tiny", imgsz=256,
                   epochs=10, out="runs/shapes")
    result.model.save("shapes.keras")
    ```

    Args:
        data: str or `DetectionDataset`. A dataset path or `synthetic:shapes?...`.
        model: str or `YOLOV8Detector`. A preset name, a `.keras` file or a
            live model (to fine-tune; same classes). Defaults to `"yolov8n"`.
        imgsz: int or None. Model input size (multiple of 32); None: the
            preset's or the model's own. Defaults to None.
        epochs: int. Defaults to 50.
        batch: int. Defaults to 16.
        out: str. Run folder. Defaults to `"runs/train"`.
        val_data: str or None. Validation dataset; None uses the `val` split
            (for `synthetic:` specs, 200 images of another random stream), or
            10% of the training images. Defaults to None.
        val_images: int or None. Evaluate on at most this many validation
            images each epoch. Defaults to None (all).
        optimizer: str. `"adamw"` or `"sgd"`. Defaults to `"adamw"`.
        lr: float or None. Peak learning rate; None: 0.002 (AdamW) or 0.01
            (SGD). Defaults to None.
        weight_decay: float. Defaults to 5e-4.
        warmup_epochs: float. Defaults to 1.0.
        decay: str. `"cosine"` or `"linear"`. Defaults to `"cosine"`.
        final_lr_fraction: float. Defaults to 0.01.
        clipnorm: float. `global_clipnorm`. Defaults to 10.0.
        ema_decay: float. Defaults to 0.9999.
        ema_tau: float. Defaults to 2000.
        augment: `AugmentConfig` or None (the defaults). Defaults to None.
        max_boxes: int. Defaults to 64.
        eval_every: int. Defaults to 1.
        resume: bool. Continue the run in `out` from `last_state.npz`.
            Defaults to False.
        mixed_precision: str. `"auto"` (float16 on GPUs of compute
            capability 7.0 or newer), `"on"` or `"off"`. Defaults to `"auto"`.
        jit_compile: bool or str. XLA for the train step (Keras' `"auto"`).
            Defaults to `"auto"`.
        seed: int. Defaults to 0.
        verbose: int. Keras `fit` verbosity (1: a progress bar per epoch).
            Defaults to 1.
        plot: bool. Draw `results.png`. Defaults to True.
        callbacks: list of `keras.callbacks.Callback` or None. Extra
            callbacks for `fit` (e.g. to time steps). Defaults to None.

    Returns:
        `TrainResult`.

    Raises:
        ValueError: bad arguments or data (empty split, unknown preset, ...).
        NonFiniteLossError: the loss became NaN; the message names the last
            good epoch, whose checkpoint is kept.
    """
    from edgedet.backend import keras as _keras
    from edgedet.data import Subset
    from edgedet.train import callbacks as cb
    from edgedet.train.evaluate import Evaluator
    from edgedet.train.pipeline import AugmentConfig, draw_batch, make_dataset
    from edgedet.train.trainer import (
        DetectorTrainer,
        WarmupDecay,
        load_state,
        make_optimizer,
        save_state,
    )

    keras = _keras()
    import tensorflow as tf

    imgsz = _default_size(model) if imgsz is None else imgsz
    for name, value, low in (("epochs", epochs, 1), ("batch", batch, 1), ("imgsz", imgsz, 32)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"Invalid {name}: {value!r}. Expected an int >= {low}.")
    if imgsz % 32:
        raise ValueError(f"Invalid imgsz: {imgsz}. Expected a multiple of 32.")
    out = os.fspath(out)
    state_path = os.path.join(out, "last_state.npz")
    if resume and not os.path.exists(state_path):
        raise ValueError(f"Cannot resume: no checkpoint '{state_path}'. Start a run without "
                         "--resume first.")
    if not resume and os.path.exists(state_path):
        raise ValueError(f"'{out}' already holds a run (last_state.npz). Pass resume=True "
                         "(--resume) to continue it, or choose another folder.")
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    train_set, val_set = _validation(data, val_data)
    if len(train_set) == 0:
        raise ValueError(f"The training split of {data!r} is empty: no image to train on.")
    if val_images is not None and len(val_set) > val_images:
        val_set = Subset(val_set, list(range(val_images)))

    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    use_mixed = mixed_precision == "on" or (mixed_precision == "auto" and _fp16_gpu(gpus))
    if use_mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    steps = max(1, len(train_set) // batch)
    lr = (0.002 if optimizer == "adamw" else 0.01) if lr is None else float(lr)
    with strategy.scope():
        detector = build_model(model if not resume else os.path.join(out, "last.keras"),
                                train_set.class_names, imgsz, "bottom_right", 0)
        trainer = DetectorTrainer(detector, ema_decay=ema_decay, ema_tau=ema_tau)
        schedule = WarmupDecay(lr, epochs * steps, int(warmup_epochs * steps),
                               final_lr_fraction, decay)
        opt = make_optimizer(optimizer, schedule, weight_decay=weight_decay, clipnorm=clipnorm)
        if use_mixed:
            opt = keras.optimizers.LossScaleOptimizer(opt)
        if jit_compile == "auto" and not gpus:
            jit_compile = False  # XLA makes the CPU step slower (docs/benchmarks.md)
        trainer.compile(optimizer=opt, jit_compile=jit_compile)
    initial_epoch, best = 0, -1.0
    if resume:
        state, initial_epoch, extra = load_state(state_path)
        trainer.set_state(state)
        best = extra.get("best", -1.0)
    else:
        with open(os.path.join(out, "args.json"), "w") as f:
            json.dump({"data": str(data), "model": str(model), "imgsz": imgsz, "epochs": epochs,
                       "batch": batch, "optimizer": optimizer, "lr": lr, "seed": seed}, f,
                      indent=2)

    augment = AugmentConfig() if augment is None else augment
    train_data = make_dataset(train_set, batch, detector.letterbox, max_boxes, augment,
                              shuffle=True, seed=seed, repeat=True, drop_remainder=True)
    if not resume:
        images, labels = next(iter(train_data))
        draw_batch(images[:16], labels, os.path.join(out, "train_batch.png"),
                   train_set.class_names)
    evaluator = Evaluator(detector, val_set) if len(val_set) else None
    monitor = cb.EpochMonitor(trainer, out, evaluator, steps * batch, save_state,
                              eval_every=eval_every, best=best, plot=plot, total_epochs=epochs)
    if initial_epoch < epochs:
        # shuffle=False: the tf.data pipeline shuffles; Keras would warn that its
        # default shuffle=True is ignored for a dataset.
        trainer.fit(train_data, epochs=epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
                    callbacks=[monitor, *(callbacks or [])], verbose=verbose, shuffle=False)
    if evaluator is not None:
        evaluator.close()
    if monitor.failure is not None:
        last = monitor.last_good_epoch or initial_epoch
        where = (f"the checkpoint of epoch {last} is kept in '{out}' (last.keras, "
                 "last_state.npz)" if last else "no epoch finished, so there is no checkpoint")
        raise cb.NonFiniteLossError(
            f"Training stopped: the {monitor.failure}. Last good epoch: {last}; {where}. "
            "Try a lower --lr or check the labels."
        )
    with trainer.swap_ema():
        final = _float32_copy(detector) if use_mixed else _clone(detector)
    history = cb.read_history(os.path.join(out, "results.csv"))
    return TrainResult(final, out, history, monitor.best, max(initial_epoch,
                       monitor.last_good_epoch or 0))


def _fp16_gpu(gpus):
    import tensorflow as tf

    for gpu in gpus:
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and capability >= (7, 0):
            return True
    return False


def _clone(detector):
    copy = type(detector).from_config(detector.get_config())
    copy.set_weights(detector.get_weights())
    return copy


def _float32_copy(detector):
    from edgedet.backend import keras as _keras

    keras = _keras()
    keras.mixed_precision.set_global_policy("float32")
    config = detector.get_config()
    copy = type(detector).from_config(config)
    copy.set_weights([w.astype("float32") if hasattr(w, "astype") else w
                      for w in detector.get_weights()])
    return copy


def holdout_spec(spec, n, seed):
    """`spec` (a `synthetic:` spec) with `n` images and another `seed`."""
    import urllib.parse

    head, _, query = str(spec).partition("?")
    if not head.startswith("synthetic:"):
        raise ValueError(f"A held-out set needs a synthetic: spec; received {spec!r}.")
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k not in ("n", "seed")]
    pairs += [("n", str(n)), ("seed", str(seed))]
    return head + "?" + urllib.parse.urlencode(pairs, safe=",-")


def holdout_metrics(out_dir, spec, n=500, seed=1000, batch_size=16):
    """Scores `best.keras` (else `last.keras`) of a run on fresh synthetic images.

    The images come from `holdout_spec(spec, n, seed)`, split `"holdout"`, so
    they share no image with training or validation. Writes
    `final_metrics.json` in the run folder.

    Returns:
        `{"map50_95", "map50", "images", "spec", "model"}`.
    """
    from edgedet.data import load_dataset
    from edgedet.models import load_model
    from edgedet.train.evaluate import evaluate

    path = os.path.join(out_dir, "best.keras")
    if not os.path.exists(path):
        path = os.path.join(out_dir, "last.keras")
    held_out = holdout_spec(spec, n, seed)
    metrics = evaluate(load_model(path), load_dataset(held_out, split="holdout"),
                       batch_size=batch_size)
    metrics.update(images=n, spec=held_out, model=os.path.basename(path))
    with open(os.path.join(out_dir, "final_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


__all__ = ["TrainResult", "holdout_metrics", "holdout_spec", "train"]
