"""Time per `fit` step and peak memory of ResNet50V2 (64x64, 10 classes, batch 32) with `LearnedOptimizer` and Adam.

Time: for each learned variant, its model and an Adam model live in one process and their timed epochs
alternate, round after round, so that the shared machine's load hits both alike (best and median seconds per
step over the rounds, after one warm-up epoch that traces and compiles); the ratio is to that pair's Adam. The
pair is freed before the next (three ResNet50V2 train steps at once need about 19 GB). Memory: each optimizer
trains in a child process of its own (run first), whose peak resident set size (`ru_maxrss`) is reported; it
includes TensorFlow itself and the model.

    python benchmarks/resnet_fit.py [--steps 10] [--rounds 3] [--jit_compile auto|true|false] [--no_memory]
"""

import argparse
import gc
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lopt_tf  # noqa: E402

OPTIMIZERS = {
    "Adam": lambda: keras.optimizers.Adam(1e-3),
    "LearnedOptimizer": lambda: lopt_tf.LearnedOptimizer(),
    "LearnedOptimizer(state_dtype=bfloat16)": lambda: lopt_tf.LearnedOptimizer(state_dtype="bfloat16"),
}
BATCH = 32


def make_model(optimizer, jit_compile):
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50V2(weights=None, input_shape=(64, 64, 3), classes=10)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy())
    return model


def data(steps):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(steps * BATCH, 64, 64, 3)).astype("float32"),
            rng.integers(0, 10, size=steps * BATCH))


def parse_jit(value):
    return {"auto": "auto", "true": True, "false": False}[value.lower()]


def time_pair(names, steps, rounds, jit_compile):
    """{name: list of seconds per step, one per round}, the optimizers' epochs interleaved in this process."""
    x, y = data(steps)
    models = {}
    for name in names:
        models[name] = make_model(OPTIMIZERS[name](), jit_compile)
        models[name].fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)  # trace + compile
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
            times[name].append((time.perf_counter() - start) / steps)
    del models
    keras.backend.clear_session()
    gc.collect()
    return times


def child_peak_rss(name, steps, jit_compile):
    """Peak RSS in GB of a child process that trains with optimizer `name` for two epochs."""
    x, y = data(steps)
    make_model(OPTIMIZERS[name](), jit_compile).fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="fit steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jit_compile", default="auto", help="the model's jit_compile: auto, true or false")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-RSS children")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    jit = parse_jit(args.jit_compile)
    if args.child:
        print(f"PEAK_RSS_GB {child_peak_rss(args.child, args.steps, jit):.3f}")
        return
    names = args.optimizers.split(",")
    print(f"cpu cores: {os.cpu_count()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}, model jit_compile={args.jit_compile}, "
          f"{args.steps} steps x {args.rounds} rounds", flush=True)
    if not args.no_memory:  # first, while this process is still small
        rss = {}
        for name in ["Adam"] + [n for n in names if n != "Adam"]:
            out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps),
                                  "--jit_compile", args.jit_compile], capture_output=True, text=True, check=True)
            rss[name] = float(out.stdout.split("PEAK_RSS_GB")[-1])
        print("\n| optimizer | peak RSS GB | x Adam |\n|---|---|---|")
        for name, gb in rss.items():
            print(f"| {name} | {gb:.2f} | {gb / rss['Adam']:.2f}x |", flush=True)
    print("\n| optimizer | s/step best | s/step median | its Adam s/step best | x Adam (best) |\n|---|---|---|---|---|",
          flush=True)
    for name in names:
        if name == "Adam":
            continue
        times = time_pair([name, "Adam"], args.steps, args.rounds, jit)
        best, adam = min(times[name]), min(times["Adam"])
        print(f"| {name} | {best:.3f} | {float(np.median(times[name])):.3f} | {adam:.3f} | {best / adam:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
