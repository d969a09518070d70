"""Where does an edgedet training step spend its time?

Times, on synthetic shapes at the model size, each part of a training step
alone and then the whole `fit` step:

- pipeline: the tf.data input pipeline alone (decode from the cache,
  letterbox, mosaic, scale/translate, flip, HSV, pad, batch);
- forward: the network's forward pass (training mode) alone;
- forward+backward: forward, a stand-in loss (sum of the head) and its
  gradients, and the optimizer update;
- assigner+loss: the task-aligned assigner and the YOLOv8 loss on fixed head
  outputs, forward and gradient with respect to the head;
- optimizer+ema: the AdamW update of every trainable variable (fixed
  gradients) and the EMA update of every float weight, one traced function:
  the per-variable updates a fused optimizer would save;
- train_step: `DetectorTrainer.fit` on one batch held in memory (model,
  assigner, loss, optimizer, EMA, Keras' loop; no input pipeline);
- fit: `DetectorTrainer.fit` on the real pipeline (what `edgedet train` runs,
  without the per-epoch evaluation).

Each figure is the median of `--steps` timed steps after `--warmup` untimed
ones. `--trace DIR` also writes a TensorFlow profiler trace of a few `fit`
steps (open it with TensorBoard's profile plugin).

Usage:

    python benchmarks/profile_train_step.py [--model yolov8n] [--imgsz 320]
        [--batch 16] [--steps 8] [--warmup 3] [--only pipeline,forward,...]

Not a test: its numbers depend on the machine and its load.
"""

import argparse
import os
import statistics
import time

PARTS = ("pipeline", "forward", "forward+backward", "assigner+loss", "optimizer+ema",
         "train_step", "fit")


def _usage():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime, usage.ru_stime), usage.ru_minflt


def _per_step(start, end, steps):
    (user0, sys0), faults0 = start
    (user1, sys1), faults1 = end
    return (user1 + sys1 - user0 - sys0) / steps, (sys1 - sys0) / steps, (faults1 - faults0) / steps


def _timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    before = _usage()
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return (statistics.median(times), *_per_step(before, _usage(), steps))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--trace", default=None)
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="keep tf.data's malloc setting (to measure what tune_malloc buys)")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; expected some of {list(PARTS)}")

    import tensorflow as tf

    from edgedet.backend import keras as _keras
    from edgedet.data import load_dataset
    from edgedet.train.pipeline import AugmentConfig, make_dataset
    from edgedet.train.run import build_model
    from edgedet.train.trainer import DetectorTrainer, make_optimizer

    if args.no_malloc_tuning:
        from edgedet.train import pipeline as pipeline_module

        pipeline_module.tune_malloc = lambda *a, **k: False
    keras = _keras()
    keras.utils.set_random_seed(0)
    data = load_dataset(f"synthetic:shapes?n={args.images}&size={args.imgsz}", split="train")
    detector = build_model(args.model, data.class_names, args.imgsz, "bottom_right", 0)
    pipeline = make_dataset(data, args.batch, detector.letterbox, 64, AugmentConfig(),
                            shuffle=True, repeat=True, drop_remainder=True)
    images, labels = next(iter(pipeline))
    results = {}
    print(f"{args.model} at {args.imgsz} px, batch {args.batch}; load "
          f"{os.getloadavg()[0]:.2f}; TF {tf.__version__}, threads intra "
          f"{tf.config.threading.get_intra_op_parallelism_threads()} inter "
          f"{tf.config.threading.get_inter_op_parallelism_threads()}", flush=True)

    if "pipeline" in parts:
        iterator = iter(pipeline)
        results["pipeline"] = _timed(lambda: next(iterator), args.steps, args.warmup)
    if "forward" in parts:
        forward = tf.function(lambda x: detector(x, training=True),
                              jit_compile=args.jit_compile)
        results["forward"] = _timed(lambda: forward(images)["boxes"].numpy(), args.steps,
                                    args.warmup)
    if "forward+backward" in parts:
        optimizer = make_optimizer("adamw", 1e-5)
        optimizer.build(detector.trainable_variables)

        @tf.function(jit_compile=args.jit_compile)
        def step(x):
            with tf.GradientTape() as tape:
                out = detector(x, training=True)
                loss = tf.reduce_mean(out["boxes"]) + tf.reduce_mean(out["classes"])
            grads = tape.gradient(loss, detector.trainable_variables)
            optimizer.apply(grads, detector.trainable_variables)
            return loss

        results["forward+backward"] = _timed(lambda: step(images).numpy(), args.steps,
                                             args.warmup)
    if "assigner+loss" in parts:
        trainer = DetectorTrainer(detector)
        trainer.loss_fn.trim_padding = not args.jit_compile
        outputs = {k: tf.identity(v) for k, v in detector(images, training=False).items()}

        @tf.function(jit_compile=args.jit_compile)
        def loss_step(out, lab):
            with tf.GradientTape() as tape:
                tape.watch(out)
                loss, _ = trainer.loss_fn(lab, out)
            return loss, tape.gradient(loss, out)

        results["assigner+loss"] = _timed(lambda: loss_step(outputs, labels)[0].numpy(),
                                          args.steps, args.warmup)
    if "optimizer+ema" in parts:
        trainer = DetectorTrainer(detector)
        trainer.compile(optimizer=make_optimizer("adamw", 1e-5))
        variables = detector.trainable_variables
        gradients = [tf.random.normal(v.shape, stddev=1e-3, seed=i)
                     for i, v in enumerate(variables)]

        @tf.function(jit_compile=args.jit_compile)
        def update():
            trainer.optimizer.apply(gradients, variables)
            trainer.update_ema()
            return trainer.ema_updates

        results["optimizer+ema"] = _timed(lambda: update().numpy(), args.steps, args.warmup)
    for name in ("train_step", "fit"):
        if name not in parts:
            continue
        trainer = DetectorTrainer(detector)
        trainer.compile(optimizer=make_optimizer("adamw", 1e-5),
                        jit_compile=args.jit_compile,
                        steps_per_execution=args.steps_per_execution)
        source = (tf.data.Dataset.from_tensors((images, labels)).repeat()
                  if name == "train_step" else pipeline)
        times = []

        class Clock(keras.callbacks.Callback):
            def __init__(self, times):
                super().__init__()
                self.times = times

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter())
                if len(self.times) == args.warmup:
                    self.usage = _usage()  # CPU figures leave out the warm-up steps

        total = args.warmup + args.steps
        clock = Clock(times)
        trainer.fit(source, epochs=1, steps_per_epoch=total * args.steps_per_execution,
                    callbacks=[clock], verbose=0)
        after = _usage()
        gaps = [b - a for a, b in zip(times, times[1:])][args.warmup - 1:]
        results[name] = (statistics.median(gaps) / args.steps_per_execution,
                         *_per_step(clock.usage, after, args.steps * args.steps_per_execution))
        if name == "fit" and args.trace:
            tf.profiler.experimental.start(args.trace)
            trainer.fit(source, epochs=1, steps_per_epoch=3, verbose=0)
            tf.profiler.experimental.stop()

    print(f"{'part':18s} {'ms/step':>8s} {'images/s':>9s} {'cpu s/step':>11s} "
          f"{'sys s/step':>11s} {'faults/step':>12s}")
    for name, (seconds, cpu_seconds, sys_seconds, faults) in results.items():
        print(f"{name:18s} {seconds * 1000:8.0f} {args.batch / seconds:9.2f} "
              f"{cpu_seconds:11.2f} {sys_seconds:11.2f} {faults:12.0f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return results


if __name__ == "__main__":
    main()
