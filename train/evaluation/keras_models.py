"""Experiments on Keras models: MNIST MLP / ConvNet curves (paper Fig. 4a), large architectures on the
ImageNet pipeline (Fig. 4b), wall clock per step vs batch size (Fig. 7), and the 100,000-step horizon (Fig. 2)."""

from __future__ import annotations

import math
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from problems import mnist
from train.evaluation import plots
from train.evaluation.optimizers import BASELINES, LABELS, OptimizerSpec
from train.evaluation.runs import late_spike, run_keras, summarize
from train.evaluation.tuning import half_decades, tune

MNIST_MODELS = (("mlp", "relu"), ("mlp", "sigmoid"), ("convnet", "relu"), ("convnet", "sigmoid"))


def _mnist_problem(ctx, arch, activation):
    if not hasattr(ctx, "_mnist"):
        ctx._mnist = mnist.load_mnist("auto")
    build = mnist.mnist_mlp_problem if arch == "mlp" else mnist.mnist_convnet_problem
    return build(activation, data=ctx._mnist, batch_size=64)


def _data_line(ctx) -> str:
    """Which MNIST the table's runs trained on: tfds's training set, or the offline fallback's smaller split."""
    data = ctx._mnist
    if data.source == "tfds":
        where = "tensorflow-datasets `mnist`"
    else:
        where = "the official test split read offline from IDX files (tfds was not available)"
    return (f"Data: MNIST from {where}, {len(data.x_train):,} training and {len(data.x_eval):,} held-out "
            "images; losses are on the full training set.\n")


def _keras_runner(ctx, problem, steps, every, tag, data=None):
    """Cached runs of `problem`; `data` names the data source in the cache key (None: not MNIST)."""
    def run(spec: OptimizerSpec, seed: int = 0):
        key = {"exp": tag, "problem": problem.name, "steps": steps, "record_every": every, "seed": seed,
               "spec": spec.key(), "data": data}
        return ctx.cache.get_or_run(key, lambda: run_keras(problem, spec, steps, seed, every))
    return run


def mnist_curves(ctx) -> dict:
    """Experiment 2: training-loss curves, learned (defaults) vs tuned baselines and Adam at lr 1e-3."""
    steps, every = ctx.size(200, 10000), ctx.size(50, 500)
    grid = [1e-3, 10 ** -2.5, 1e-2] if ctx.quick else half_decades(-4, -0.5)
    rows = []
    bar = keras.utils.Progbar(len(MNIST_MODELS), verbose=ctx.verbose, unit_name="model")
    for i, (arch, act) in enumerate(MNIST_MODELS):
        problem = _mnist_problem(ctx, arch, act)
        run = _keras_runner(ctx, problem, steps, every, "mnist", ctx._mnist.source)
        row = {"problem": problem.name, "learned": summarize([run(OptimizerSpec("learned", weights=ctx.weights), s)
                                                               for s in ctx.seeds])}
        row["adam_default"] = summarize([run(OptimizerSpec("adam", learning_rate=1e-3), s) for s in ctx.seeds])
        row["adam_default"]["lr"] = 1e-3
        for kind in BASELINES:
            best, _ = tune(kind, run, grid, max_extend=ctx.size(1, 6))
            row[kind] = {**summarize([run(OptimizerSpec(kind, learning_rate=best), s) for s in ctx.seeds]),
                         "lr": best}
        rows.append(row)
        bar.update(i + 1)
    keys = ("learned", "adam_default") + BASELINES
    names = {"learned": LABELS["learned"], "adam_default": "Adam lr=1e-3", **LABELS}
    table = ("| model | " + " | ".join(names[k] for k in keys)
             + " | learned <= Adam 1e-3 | within 10% of best tuned | late spike, learned / Adam 1e-3 |\n")
    table += "|---|" + "---|" * (len(keys) + 3) + "\n"
    for r in rows:
        best = min(r[k]["final_mean"] for k in BASELINES)
        learned = r["learned"]["final_mean"]
        cells = [f"{r[k]['final_mean']:.3g}" + (f" ± {r[k]['final_std']:.2g}" if not ctx.quick else "")
                 + (f" (lr {r[k]['lr']:.2g})" if k in BASELINES else "") for k in keys]
        table += (f"| {r['problem']} | " + " | ".join(cells)
                  + f" | {'yes' if learned <= r['adam_default']['final_mean'] else 'no'}"
                  + f" | {'yes' if learned <= 1.1 * best else 'no'}"
                  + f" | {r['learned']['late_spike']:.3g} / {r['adam_default']['late_spike']:.3g} |\n")
    plots.curves(rows, keys, names, ctx.figure("exp2_mnist"), "training loss (full training set)")
    return {"rows": rows, "tables": [_data_line(ctx), table], "figures": ["exp2_mnist.png"], "steps": steps}


def large_architectures(ctx) -> dict:
    """Experiment 3: InceptionV3 / ResNet50V2 on the ImageNet pipeline at small resolution. Without the real
    ImageNet files (not downloadable here) the pipeline runs on tfds's mock data (`imagenet.mock_imagenet`: random
    images and random labels among the 10 classes), which tests stability, not accuracy; baselines run at their
    usual default learning rates (tuning is too costly here)."""
    from problems import imagenet

    steps, every = ctx.size(20, 1000), ctx.size(10, 100)
    specs = [OptimizerSpec("learned", weights=ctx.weights), OptimizerSpec("adam", learning_rate=1e-3),
             OptimizerSpec("rmsprop", learning_rate=1e-3), OptimizerSpec("momentum", learning_rate=1e-2)]
    rows = []
    for arch in ("resnet50_v2", "inception_v3"):
        with imagenet.mock_imagenet(num_examples=256, num_classes=10):
            problem = imagenet.small_imagenet_problem(arch, image_size=64, num_classes=10, num_examples=256,
                                                      batch_size=32)
        run = _keras_runner(ctx, problem, steps, every, "imagenet_small_mock")
        row = {"problem": problem.name}
        for spec in specs:
            row[spec.kind] = {**summarize([run(spec, 0)]), "lr": spec.learning_rate}
        row["stable"] = trains_stably(row["learned"]["curve_mean"])
        rows.append(row)
    keys = ("learned",) + BASELINES
    names = {"learned": LABELS["learned"], **LABELS}
    table = ("Loss at the first and the last step. Stable: every recorded loss finite and below 10x the first, "
             "and the last below the first.\n\n")
    table += "| model (64x64, 10 classes, mock data) | " + " | ".join(names[k] for k in keys) + " | learned stable |\n"
    table += "|---|" + "---|" * (len(keys) + 1) + "\n"
    for r in rows:
        table += f"| {r['problem']} | " + " | ".join(
            f"{r[k]['curve_mean'][0]:.3g} → {r[k]['final_mean']:.3g}" for k in keys) + f" | {r['stable']} |\n"
    plots.curves(rows, keys, names, ctx.figure("exp3_large"), "training loss", lr_label="default lr, not tuned")
    return {"rows": rows, "tables": [table], "figures": ["exp3_large.png"], "data": "tfds mock data"}


def trains_stably(curve) -> bool:
    """Experiment 3's criterion: every loss finite and below 10x the first one, and the last below the first."""
    return (all(math.isfinite(v) for v in curve) and max(curve) < 10 * curve[0] and curve[-1] < curve[0])


def _step_time(model, optimizer, x, y, repeats):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    float(train_step(x, y))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(train_step(x, y))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wall_clock(ctx) -> dict:
    """Experiment 6: time per training step (forward, backward, update) of the MNIST ConvNet vs batch size,
    learned optimizer vs Adam, measured in the same process (median of repeated steps, graph mode)."""
    batches = ctx.size([32, 128], [32, 64, 128, 256, 512, 1024])
    repeats = ctx.size(10, 50)
    rng = np.random.default_rng(0)
    times = {"learned": [], "adam": []}
    for batch in batches:
        x = tf.constant(rng.random((batch, 28, 28, 1), np.float32))
        y = tf.constant(rng.integers(0, 10, batch))
        for kind in times:
            model = mnist.build_mnist_convnet("relu")
            opt = OptimizerSpec(kind, learning_rate=1.0 if kind == "learned" else 1e-3, weights=ctx.weights)
            times[kind].append(_step_time(model, opt.keras_optimizer(), x, y, repeats))
    table = "| batch size | Adam ms/step | learned ms/step | ratio |\n|---|---|---|---|\n" + "".join(
        f"| {b} | {a * 1e3:.2f} | {l * 1e3:.2f} | {l / a:.2f}x |\n"
        for b, a, l in zip(batches, times["adam"], times["learned"]))
    plots.wall_clock(batches, times, ctx.figure("exp6_wall_clock"))
    return {"batch_sizes": batches, "seconds": times, "tables": [table], "figures": ["exp6_wall_clock.png"]}


def horizon(ctx) -> dict:
    """Experiment 8: the learned optimizer on the MNIST MLP for 100,000 steps: does it diverge?"""
    steps = ctx.size(1000, 100000)
    problem = _mnist_problem(ctx, "mlp", "relu")
    run = _keras_runner(ctx, problem, steps, steps // 50, "horizon", ctx._mnist.source)
    result = run(OptimizerSpec("learned", weights=ctx.weights), 0)
    losses = result["losses"]
    diverged = not all(math.isfinite(v) for v in losses) or losses[-1] > losses[0]
    spike = late_spike(losses)
    table = (f"| steps | initial loss | min loss | final loss | diverged | late spike |\n|---|---|---|---|---|---|\n"
             f"| {steps:,} | {losses[0]:.4g} | {min(losses):.3g} | {losses[-1]:.3g} | {diverged} | {spike:.3g} |\n")
    plots.curves([{"problem": problem.name, "learned": {"curve_mean": losses, "steps": result["steps"]}}],
                 ("learned",), {"learned": LABELS["learned"]}, ctx.figure("exp8_horizon"), "training loss")
    return {"result": result, "diverged": diverged, "late_spike": spike, "tables": [_data_line(ctx), table],
            "figures": ["exp8_horizon.png"]}
