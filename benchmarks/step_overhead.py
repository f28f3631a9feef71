"""Per-step cost of `LearnedOptimizer.apply` against `keras.optimizers.Adam`, measured in one process.

For ~1M parameters in 4 tensors and in 200 tensors, in graph mode and under XLA, it times
`tf.function(lambda: opt.apply(grads, vars))`: the first call (trace + compile, optimizer build excluded) and
the median of the following calls. Prints a table with the learned/Adam ratios.

    python benchmarks/step_overhead.py [--repeats 30]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lopt_tf  # noqa: E402

SHAPES = {
    "1M in 4 tensors": [(1024, 1024), (1024,), (1024, 1), (1,)],  # 1,050,625 parameters
    "1M in 200 tensors": [(100, 100)] * 100 + [(100,)] * 100,  # 1,010,000 parameters
}


def measure(make_optimizer, shapes, jit, repeats):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
    grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
    opt = make_optimizer()
    opt.build(variables)
    fn = tf.function(lambda: opt.apply(grads, variables), jit_compile=jit)
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    optimizers = {"Adam": lambda: keras.optimizers.Adam(1e-3), "LearnedOptimizer": lopt_tf.LearnedOptimizer}
    rows = []
    for case, shapes in SHAPES.items():
        n = sum(int(np.prod(s)) for s in shapes)
        for jit in (False, True):
            r = {name: measure(make, shapes, jit, args.repeats) for name, make in optimizers.items()}
            rows.append((case, n, "XLA" if jit else "graph", r["Adam"], r["LearnedOptimizer"]))
    print(f"cpu cores: {os.cpu_count()}, tensorflow {tf.__version__}, keras {keras.__version__}")
    header = ("| case | params | mode | Adam step ms | Learned step ms | step ratio | Adam trace+compile s "
              "| Learned trace+compile s | trace ratio |")
    print(header)
    print("|" + "---|" * 9)
    for case, n, mode, (a_first, a_step), (l_first, l_step) in rows:
        print(f"| {case} | {n:,} | {mode} | {a_step * 1e3:.2f} | {l_step * 1e3:.2f} | {l_step / a_step:.1f}x "
              f"| {a_first:.2f} | {l_first:.2f} | {l_first / a_first:.2f}x |")


if __name__ == "__main__":
    main()
