"""Keras `compile`/`fit` training of a `YOLOV8Detector`: loss, schedule, EMA.

`DetectorTrainer` wraps the detector in a `keras.Model` whose `train_step`
computes the YOLOv8 loss on the raw head and keeps an exponential moving
average of every float weight (trainable weights and BatchNorm statistics,
as Ultralytics' `ModelEMA`): `decay = ema_decay * (1 - exp(-updates / tau))`.
The EMA weights are what is evaluated and saved (`swap_ema`).
"""

import contextlib
import math

import numpy as np

from edgedet.backend import keras as _keras
from edgedet.train.losses import DetectionLoss

keras = _keras()


@keras.saving.register_keras_serializable(package="edgedet")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then cosine or linear decay to `final_fraction * lr`.

    Args:
        learning_rate: float. Peak learning rate.
        total_steps: int. Steps of the whole run.
        warmup_steps: int. Defaults to 0.
        final_fraction: float. Final learning rate as a fraction of the peak.
            Defaults to 0.01.
        decay: str. `"cosine"` or `"linear"`. Defaults to `"cosine"`.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0, final_fraction=0.01,
                 decay="cosine"):
        if decay not in ("cosine", "linear"):
            raise ValueError(f"Invalid decay: {decay!r}. Expected 'cosine' or 'linear'.")
        self.learning_rate = float(learning_rate)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.final_fraction = float(final_fraction)
        self.decay = decay

    def __call__(self, step):
        import tensorflow as tf

        step = tf.cast(step, tf.float32)
        peak, final = self.learning_rate, self.learning_rate * self.final_fraction
        warm = float(max(self.warmup_steps, 1))
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            decayed = final + (peak - final) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            decayed = peak + (final - peak) * progress
        warming = peak * tf.minimum(step + 1.0, warm) / warm
        return tf.where(step < self.warmup_steps, warming, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_fraction": self.final_fraction,
            "decay": self.decay,
        }


def make_optimizer(name, schedule, weight_decay=5e-4, momentum=0.937, clipnorm=10.0):
    """SGD (Nesterov momentum) or AdamW with a schedule and `global_clipnorm`.

    BatchNorm parameters and biases get no weight decay.

    Args:
        name: str. `"sgd"` or `"adamw"`.
        schedule: learning rate or `LearningRateSchedule`.
        weight_decay: float. Defaults to 5e-4.
        momentum: float. SGD momentum, AdamW `beta_1`. Defaults to 0.937.
        clipnorm: float or None. Global gradient-norm clip. Defaults to 10.0.
    """
    if name == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=momentum, nesterov=True, weight_decay=weight_decay,
            global_clipnorm=clipnorm,
        )
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(
            schedule, beta_1=momentum, beta_2=0.999, weight_decay=weight_decay,
            global_clipnorm=clipnorm,
        )
    else:
        raise ValueError(f"Invalid optimizer: {name!r}. Expected 'sgd' or 'adamw'.")
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def init_head_biases(detector, objects_per_image=5.0):
    """Initialises a fresh detector's head biases with its family's hook.

    For the `Detect`-head families this is Ultralytics' `Detect.bias_init`
    (`edgedet.models.heads.init_detect_head_biases`).

    Raises:
        ValueError: for a model of no registered family.
    """
    from edgedet.models import families

    family = families.family_of_model(detector)
    if family is None:
        raise ValueError(
            f"{type(detector).__name__} is not a model of a registered family "
            f"({[f.name for f in families.families()]}); cannot initialise its head."
        )
    family.init_head_biases(detector, objects_per_image)


class DetectorTrainer(keras.Model):
    """Trains a `YOLOV8Detector` with `fit`; keeps the EMA of its weights.

    Example:

    ```python
    trainer = DetectorTrainer(detector)
    trainer.compile(optimizer=make_optimizer("adamw", 1e-3))
    trainer.fit(make_dataset(data, 16, detector.letterbox, repeat=True), epochs=10,
                steps_per_epoch=50)
    with trainer.swap_ema():
        detector.save("model.keras")
    ```

    Args:
        detector: `edgedet.models.YOLOV8Detector`.
        loss_config: `edgedet.train.losses.LossConfig` or None. Defaults to None.
        ema_decay: float. Defaults to 0.9999.
        ema_tau: float. EMA warm-up, in updates. Defaults to 2000.
    """

    def __init__(self, detector, loss_config=None, ema_decay=0.9999, ema_tau=2000.0, **kwargs):
        super().__init__(**kwargs)
        self.detector = detector
        self.loss_fn = DetectionLoss(
            detector.letterbox.size, detector.num_classes, detector.strides, detector.reg_max,
            loss_config,
        )
        self.ema_decay = float(ema_decay)
        self.ema_tau = float(ema_tau)
        self.ema_weights = [
            keras.Variable(v.numpy(), trainable=False, name=f"ema_{i}",
                           aggregation="only_first_replica")
            for i, v in enumerate(self._ema_sources)
        ]
        self.ema_updates = keras.Variable(0.0, trainable=False, name="ema_updates",
                                          aggregation="only_first_replica")
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "box_loss", "cls_loss", "dfl_loss")
        }

    def compile(self, *args, **kwargs):
        """`keras.Model.compile`, then creates the optimizer's variables.

        An optimizer left unbuilt creates its variables inside the first
        traced train step, and TensorFlow then traces the step a second time
        (measured: the first yolov8n step at 320 px took 88 s instead of 27 s
        on 2 cores).
        """
        super().compile(*args, **kwargs)
        self.loss_fn.trim_padding = not self.jit_compile  # XLA needs static shapes
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.detector.trainable_variables)

    @property
    def _ema_sources(self):
        """The detector's float weights (trainable and BatchNorm statistics), in order."""
        return [v for v in self.detector.weights if "float" in str(v.dtype)]

    def call(self, images, training=False):
        return self.detector(images, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        import tensorflow as tf

        images, labels = data[0], data[1]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            outputs = self.detector(images, training=True)
            loss, parts = self.loss_fn(labels, outputs)
            scaled = self.optimizer.scale_loss(loss / replicas)
        variables = self.detector.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        self.update_ema()
        self.trackers["loss"].update_state(loss)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def update_ema(self):
        """One EMA step of every float weight (run by `train_step` after the optimizer)."""
        import tensorflow as tf

        self.ema_updates.assign_add(1.0)
        decay = self.ema_decay * (1.0 - tf.exp(-self.ema_updates / self.ema_tau))
        for ema, source in zip(self.ema_weights, self._ema_sources):
            ema.assign(decay * ema + (1.0 - decay) * tf.cast(source, ema.dtype))

    @contextlib.contextmanager
    def swap_ema(self):
        """Context in which the detector holds the EMA weights (restored after)."""
        raw = [v.numpy() for v in self._ema_sources]
        try:
            for source, ema in zip(self._ema_sources, self.ema_weights):
                source.assign(ema.numpy())
            yield self.detector
        finally:
            for source, value in zip(self._ema_sources, raw):
                source.assign(value)

    def get_state(self):
        """Everything needed to resume: raw weights, EMA, optimizer variables."""
        return {
            "raw": [v.numpy() for v in self._ema_sources],
            "ema": [v.numpy() for v in self.ema_weights],
            "ema_updates": float(self.ema_updates.numpy()),
            "optimizer": [v.numpy() for v in self.optimizer.variables],
        }

    def set_state(self, state):
        """Restores `get_state()` (the optimizer must be compiled)."""
        if not self.optimizer.built:
            self.optimizer.build(self.detector.trainable_variables)
        groups = (
            ("weights", self._ema_sources, state["raw"]),
            ("EMA weights", self.ema_weights, state["ema"]),
            ("optimizer variables", self.optimizer.variables, state["optimizer"]),
        )
        for what, variables, values in groups:
            if len(variables) != len(values):
                raise ValueError(
                    f"Cannot resume: the checkpoint has {len(values)} {what}, the model "
                    f"{len(variables)}. Was it written for another architecture?"
                )
            for variable, value in zip(variables, values):
                if tuple(variable.shape) != tuple(np.shape(value)):
                    raise ValueError(
                        f"Cannot resume: {what} '{variable.name}' has shape "
                        f"{tuple(variable.shape)}, the checkpoint {np.shape(value)}."
                    )
                variable.assign(value)
        self.ema_updates.assign(state["ema_updates"])


def save_state(path, trainer, epoch, extra=None):
    """Writes a resume checkpoint (`.npz`) atomically."""
    import json
    import os

    state = trainer.get_state()
    arrays = {"ema_updates": np.float64(state["ema_updates"]), "epoch": np.int64(epoch)}
    for key in ("raw", "ema", "optimizer"):
        for i, value in enumerate(state[key]):
            arrays[f"{key}_{i:05d}"] = value
    arrays["extra"] = np.array(json.dumps(extra or {}))
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_state(path):
    """Reads `save_state`; returns `(state, epoch, extra)`."""
    import json

    with np.load(path, allow_pickle=False) as data:
        state = {key: [] for key in ("raw", "ema", "optimizer")}
        for name in sorted(data.files):
            key = name.split("_")[0]
            if key in state and name[len(key) + 1:].isdigit():
                state[key].append(data[name])
        state["ema_updates"] = float(data["ema_updates"])
        epoch = int(data["epoch"])
        extra = json.loads(str(data["extra"]))
    return state, epoch, extra
