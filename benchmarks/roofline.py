"""Roofline of one learned-optimizer step on this machine, measured in one process.

Measures the matrix rate on the level-0 GRU's own shapes ([P, n_in+n0] @ [n_in+n0, 3*n0] row-major,
[3*n0, n_in+n0] @ [n_in+n0, P] feature-major, and a 2048^2 square for reference) and the memory bandwidth (an
in-place axpy on a variable, and Adam's fused XLA step), derives the step's compute floor (FLOPs counted from
the config at the best matrix rate) and memory floor (state, parameters and gradients read and written, at the
best bandwidth), and prints the step (`hrnn.step`-like function, XLA and graph) and `LearnedOptimizer.apply`
times as multiples of the larger floor, with Adam for comparison.

    python benchmarks/roofline.py [--params 1000000] [--repeats 20] [--stat median|min]
                                  [--step lopt_tf.hrnn:step] [--state_dtype bfloat16] [--pad_to 16]

`--step module:function` times a candidate with `hrnn.step`'s signature (also inside `apply`, patched in).
`--stat min` reports the fastest call instead of the median: on a machine shared with other jobs the median
measures the neighbours too. `--state_dtype bfloat16` times the step on bfloat16-stored state
(`hrnn.init_state(..., state_dtype=...)`; the memory floor counts its bytes; `apply` rows are float32 state).
`--pad_to` (default `hrnn.ROW_MULTIPLE`, as `LearnedOptimizer` stores the state; 0: none) pads the step rows'
per-parameter buffers (`hrnn.init_state(..., pad_to=...)`).
"""

import argparse
import importlib
import math
import os
import statistics
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lopt_tf  # noqa: E402
from lopt_tf import HRNNConfig, hrnn  # noqa: E402


def shapes_for(params):
    """The two cases of step_overhead.py, scaled to about `params` parameters."""
    scale = math.sqrt(params / 1e6)  # 1M: exactly step_overhead.py's 1,050,625 and 1,010,000 parameters
    n, m = max(1, round(1024 * scale)), max(1, round(100 * scale))
    return {"4 tensors": [(n, n), (n,), (n, 1), (1,)], "200 tensors": [(m, m)] * 100 + [(m,)] * 100}


STAT = statistics.median  # --stat


def timed(fn, repeats):
    """Seconds per call of `fn` (median or min, `--stat`; first call excluded: trace/compile), results fetched
    to host."""
    tf.nest.map_structure(np.asarray, fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(np.asarray, fn())
        times.append(time.perf_counter() - start)
    return STAT(times)


def both_modes(f, repeats):
    """(XLA seconds, graph seconds) of the same function."""
    return timed(tf.function(f, jit_compile=True), repeats), timed(tf.function(f), repeats)


def step_flops(config):
    """FLOPs per parameter of one step: level-0 GRU matmuls + readouts + elementwise (transcendentals = 1)."""
    n0, f, k = config.level_sizes[0], config.num_features, config.num_gradient_scales
    gru_mm = 2 * (f + n0) * 3 * n0
    heads = 1 + 2 * config.learnable_decay + 1 + config.use_attention  # direction, decays, lr, attn direction
    readouts = 2 * n0 * heads + 2 * k * config.use_gradient_shortcut * (1 + config.use_attention)
    gru_elem = 3 * n0 + 2 * n0 + n0 + n0 + 4 * n0  # biases, sigmoid, r*h, tanh, u*h+(1-u)*c
    inputs = k * 16 + f  # momenta, mean squares, rsqrt, asinh, log, products, masks
    sums = (n0 + f) * (len(config.level_sizes) >= 2) + 2 * config.dynamic_output_scale
    return gru_mm + readouts + gru_elem + inputs + sums


def step_bytes(config, state_bytes=4):
    """Bytes per parameter read and written: state (both ways), parameters (both ways), gradients (read).
    `state_bytes`: bytes per stored value of the buffers `hrnn.STORED_KEYS` (log LR, true parameter: 4)."""
    stored = config.per_parameter_state_size - config.dynamic_output_scale - config.use_attention
    return 2 * (state_bytes * stored + 4 * (config.dynamic_output_scale + config.use_attention)) + 4 * 3


def machine_rates(config, params, repeats):
    rng = np.random.default_rng(0)
    n_in, n_out = config.num_features + config.level_sizes[0], 3 * config.level_sizes[0]
    x = tf.constant(rng.normal(size=(params, n_in)).astype("float32"))
    xt, w = tf.transpose(x), tf.constant(rng.normal(size=(n_in, n_out)).astype("float32"))
    wt, sq = tf.transpose(w), tf.constant(rng.normal(size=(2048, 2048)).astype("float32"))
    mm = 2 * params * n_in * n_out
    rates = {
        f"row-major [P,{n_in}]@[{n_in},{n_out}]": (mm, both_modes(lambda: tf.matmul(x, w), repeats)),
        f"feature-major [{n_out},{n_in}]@[{n_in},P]": (mm, both_modes(lambda: tf.matmul(wt, xt), repeats)),
        "square 2048^2": (2 * 2048 ** 3, both_modes(lambda: tf.matmul(sq, sq), repeats)),
    }
    flops = {k: tuple(n / t for t in ts) for k, (n, ts) in rates.items()}
    big = 1 << 25  # 128 MB per buffer
    v, u = tf.Variable(tf.zeros([big])), tf.constant(rng.normal(size=big).astype("float32"))
    axpy = both_modes(lambda: v.assign_add(0.5 * u), repeats)
    bandwidth = {"in-place axpy (3 x 128 MB)": tuple(12 * big / t for t in axpy)}
    adam_t = adam_time(shapes_for(params)["4 tensors"], repeats)
    n = sum(math.prod(s) for s in shapes_for(params)["4 tensors"])
    bandwidth["Adam apply, 4 tensors (28 B/param)"] = (28 * n / adam_t, float("nan"))
    return flops, bandwidth


def make_problem(shapes):
    rng = np.random.default_rng(0)
    params = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
    grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
    return params, grads


def adam_time(shapes, repeats):
    params, grads = make_problem(shapes)
    variables = [keras.Variable(p) for p in params]
    opt = keras.optimizers.Adam(1e-3)
    opt.build(variables)
    return timed(tf.function(lambda: opt.apply(grads, variables), jit_compile=True), repeats)


def apply_time(step_fn, shapes, jit, repeats):
    params, grads = make_problem(shapes)
    variables = [keras.Variable(p) for p in params]
    with mock.patch.object(hrnn, "step", step_fn):
        opt = lopt_tf.LearnedOptimizer()
        opt.build(variables)
        return timed(tf.function(lambda: opt.apply(grads, variables), jit_compile=jit), repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--step", default="lopt_tf.hrnn:step", help="module:function with hrnn.step's signature")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--state_dtype", default=None, help="e.g. bfloat16: the step's stored state dtype")
    parser.add_argument("--pad_to", type=int, default=hrnn.ROW_MULTIPLE, help="rows of the step's state: 0 none")
    args = parser.parse_args()
    global STAT
    STAT = min if args.stat == "min" else statistics.median
    state_bytes = 4 if args.state_dtype is None else tf.as_dtype(args.state_dtype).size
    module, name = args.step.split(":")
    step_fn = getattr(importlib.import_module(module), name)
    config = HRNNConfig()
    meta = hrnn.init_meta(config)

    flops, bandwidth = machine_rates(config, args.params, args.repeats)
    print(f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, tensorflow {tf.__version__}, "
          f"keras {keras.__version__}, step {args.step}, state {args.state_dtype or 'float32'} padded to "
          f"{args.pad_to or 'none'}, {args.stat} of {args.repeats} calls")
    print("| matrix product | XLA GFLOP/s | graph GFLOP/s |\n|---|---|---|")
    for k, (a, b) in flops.items():
        print(f"| {k} | {a / 1e9:.1f} | {b / 1e9:.1f} |")
    print("| memory | XLA GB/s | graph GB/s |\n|---|---|---|")
    for k, (a, b) in bandwidth.items():
        print(f"| {k} | {a / 1e9:.1f} | {b / 1e9:.1f} |")
    best_flops = max(max(v) for v in flops.values())
    best_bw = max(np.nanmax(v) for v in bandwidth.values())

    print(f"\nper parameter: {step_flops(config)} FLOP, {step_bytes(config, state_bytes)} B")
    print("| case | params | compute floor ms | memory floor ms | what | ms | x floor | x Adam |")
    print("|" + "---|" * 8)
    for case, shapes in shapes_for(args.params).items():
        n = sum(math.prod(s) for s in shapes)
        compute, memory = n * step_flops(config) / best_flops, n * step_bytes(config, state_bytes) / best_bw
        floor = max(compute, memory)
        params, grads = make_problem(shapes)
        kwargs = {"state_dtype": args.state_dtype} if args.state_dtype else {}
        state = hrnn.init_state(meta, config, params, pad_to=args.pad_to or None, **kwargs)
        step_xla, step_graph = both_modes(lambda: step_fn(meta, config, params, grads, state), args.repeats)
        adam = adam_time(shapes, args.repeats)
        rows = {"Adam apply XLA": adam, "step XLA": step_xla, "step graph": step_graph,
                "apply XLA": apply_time(step_fn, shapes, True, args.repeats),
                "apply graph": apply_time(step_fn, shapes, False, args.repeats)}
        for what, t in rows.items():
            print(f"| {case} | {n:,} | {compute * 1e3:.1f} | {memory * 1e3:.1f} | {what} | {t * 1e3:.1f} "
                  f"| {t / floor:.1f}x | {t / adam:.1f}x |", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
