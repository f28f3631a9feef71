"""Time per `fit` step of a small Keras model with `LearnedOptimizer` against Adam, measured in one process.

The MLP 64-128-64-10 (17,226 parameters), batch 64, random data: `model.fit` over `--steps` batches (after one
warm-up epoch, so tracing and compiling are excluded), per step, with the model compiled with
`jit_compile=True` (XLA: Keras compiles the train step, the optimizer's update inside it) and without (then the
optimizer's own `jit_compile` decides whether its update is an XLA cluster of its own; both are timed).
`--profile` prints the ops that take the most time in one LearnedOptimizer train step (XLA).

    python benchmarks/fit_step.py [--steps 200] [--profile]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lopt_tf  # noqa: E402


def make_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                             keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])


def per_step(make_optimizer, jit, steps, batch=64, repeats=3):
    """Best of `repeats` timed epochs of `steps` batches: seconds per step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, 64)).astype("float32")
    y = rng.integers(0, 10, size=steps * batch)
    model = make_model()
    model.compile(optimizer=make_optimizer(), jit_compile=jit,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # trace + compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        best = min(best, (time.perf_counter() - start) / steps)
    return best, model


def profile_step(model, top=70):
    """Ops of one compiled train step by total time (needs XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true)."""
    import collections
    import glob
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(64 * 20, 64)).astype("float32"), rng.integers(0, 10, size=64 * 20)
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    total, count = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                total[names.get(event.metadata_id, "?")] += event.duration_ps / 1e9 / 20
                count[names.get(event.metadata_id, "?")] += 1
    print("| ms per step | calls per step | event |\n|---|---|---|")
    for name, ms in total.most_common(top):
        print(f"| {ms:.3f} | {count[name] / 20:.0f} | {name[:100]} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    optimizers = {"Adam": lambda: keras.optimizers.Adam(1e-3), "LearnedOptimizer": lopt_tf.LearnedOptimizer,
                  "ops": lambda: lopt_tf.LearnedOptimizer(jit_compile=False)}
    print(f"cpu cores: {os.cpu_count()}, tensorflow {tf.__version__}, keras {keras.__version__}")
    print("| model | model jit_compile | Adam ms/step | LearnedOptimizer ms/step | ratio "
          "| LearnedOptimizer(jit_compile=False) ms/step | ratio |\n|---|---|---|---|---|---|---|")
    model = None
    for jit in (True, False):
        adam, _ = per_step(optimizers["Adam"], jit, args.steps)
        learned, m = per_step(optimizers["LearnedOptimizer"], jit, args.steps)
        ops, _ = per_step(optimizers["ops"], jit, args.steps)
        model = model or m
        print(f"| MLP 64-128-64-10, batch 64 | {jit} | {adam * 1e3:.2f} | {learned * 1e3:.2f} "
              f"| {learned / adam:.1f}x | {ops * 1e3:.2f} | {ops / adam:.1f}x |", flush=True)
    if args.profile:
        profile_step(model)


if __name__ == "__main__":
    main()
