"""PES next to TBPTT: inner optimizer steps per second on the same tasks, measured in one process.

TBPTT: `train.unroll.make_unroll` (forward and second-order backward through the unroll, the meta-trainer's
default). PES: `train.pes.make_pes_unroll` with `--pairs` antithetic pairs, forward only, all 2N particles in one
vectorised program; its rate is given per particle (particle steps / s) and for the whole program (task
steps / s, every particle advancing one step). Same problems as `meta_train_throughput.py`, default HRNN config,
XLA.

    python benchmarks/pes_throughput.py [--length 100] [--pairs 8] [--repeats 3]

`--task_losses N` instead times PES on the first N problems of `--problem_set` (default `user_like`) with the
"stable" preset, scoring each step by the full-batch objective and by the mini-batch loss (`--pes_task_loss`).
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `problems`, `train`

from benchmarks.meta_train_throughput import CASES, build  # noqa: E402


def median_rate(fn, steps, repeats):
    fn()  # trace and compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return steps / statistics.median(times)


def tbptt_rate(problem, length, repeats):
    import tensorflow as tf

    from lopt_tf import HRNNConfig, hrnn
    from train.unroll import make_unroll

    config = HRNNConfig()
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    fn = make_unroll(problem, config, meta, max_length=length, jit_compile=True)
    params = problem.init_params(0)
    state = hrnn.init_state(meta, config, params, 0)
    f0 = problem.objective(params)
    return median_rate(lambda: float(fn(params, state, f0, 0, length, 1)[0]), length, repeats)


def pes_rate(problem, length, pairs, repeats, config=None, task_loss="objective"):
    import numpy as np
    import tensorflow as tf

    from lopt_tf import HRNNConfig, hrnn
    from train.pes import FlatMeta, make_pes_unroll

    config = config or HRNNConfig()
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    flat = FlatMeta.of(meta, sorted(meta))
    fn = make_pes_unroll(problem, config, meta, flat, pairs, max_length=length, jit_compile=True,
                         task_loss=task_loss)
    eps = tf.constant(np.random.default_rng(0).normal(0, 0.01, (pairs, flat.size)).astype(np.float32))
    params = problem.init_params(0)
    states = fn.init_states(eps, params, 0)
    stacked = [tf.repeat(p[None], 2 * pairs, 0) for p in params]
    f0 = problem.objective(params)
    return median_rate(lambda: float(fn(eps, stacked, states, f0, 0, length, 1)[0][0]), length, repeats)


def task_loss_table(problem_set, count, length, pairs, repeats):
    import problems
    from lopt_tf import HRNNConfig

    config = HRNNConfig.preset("stable")
    sampler = problems.ProblemSampler.named(problem_set)
    print(f"cpu cores: {os.cpu_count()}; XLA; unroll length {length}; PES {pairs} pairs; problem set "
          f"{problem_set}, seeds 0..{count - 1}; HRNN preset 'stable'")
    print("| problem | params | objective particle steps/s | minibatch particle steps/s | ratio |")
    print("|---|---|---|---|---|")
    for seed in range(count):
        problem = sampler.sample(seed)
        rates = [pes_rate(problem, length, pairs, repeats, config, loss) * 2 * pairs
                 for loss in ("objective", "minibatch")]
        print(f"| {problem.name} | {problem.num_params:,} | {rates[0]:,.0f} | {rates[1]:,.0f} "
              f"| {rates[1] / rates[0]:.1f}x |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task_losses", type=int, default=0)
    parser.add_argument("--problem_set", default="user_like")
    args = parser.parse_args()
    if args.task_losses:
        return task_loss_table(args.problem_set, args.task_losses, args.length, args.pairs, args.repeats)
    print(f"cpu cores: {os.cpu_count()}; XLA; unroll length {args.length}; PES {args.pairs} pairs "
          f"({2 * args.pairs} particles)")
    print("| problem | params | TBPTT 2nd-order steps/s | PES task steps/s | PES particle steps/s "
          "| PES particle / TBPTT |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        problem = build(case)
        tbptt = tbptt_rate(problem, args.length, args.repeats)
        pes = pes_rate(problem, args.length, args.pairs, args.repeats)
        particles = pes * 2 * args.pairs
        print(f"| {case} | {problem.num_params:,} | {tbptt:,.0f} | {pes:,.0f} | {particles:,.0f} "
              f"| {particles / tbptt:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
