"""Meta-training throughput: inner optimizer steps per second, forward + backward through the unroll.

For a 2-D function (Rosenbrock), a 1,000-parameter quadratic and a ~10,000-parameter MLP classifier it times
`train.unroll.make_unroll(...)` (the exact function the meta-trainer calls: the problem's gradient, the
`lopt_tf.hrnn.step`, the full-batch objective, and the meta-gradient through all of it) and reports compile
time, steady-state inner steps/s, and the peak memory of the process (ru_maxrss) with the memory per inner
step estimated from two unroll lengths.

    python benchmarks/meta_train_throughput.py [--length 200] [--noxla] [--first_order]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `problems`, `train`

CASES = ("rosenbrock", "quadratic_1000", "mlp_10k")


def build(case):
    import problems
    from problems.classification import MLPClassifier
    from problems.datasets import random_mlp_data

    if case == "rosenbrock":
        return problems.Function2D("rosenbrock")
    if case == "quadratic_1000":
        return problems.Quadratic.random(1000, seed=0)
    x, y = random_mlp_data(20, 1000, seed=0)
    # 20 -> 96 -> 80 -> 2: 2,016 + 7,760 + 162 = 9,938 parameters, batch 64.
    return MLPClassifier(x, y, num_classes=2, batch_size=64, hidden=(96, 80), activation="sigmoid")


def run_case(case, length, jit, first_order, remat, repeats=3):
    import tensorflow as tf

    from lopt_tf import HRNNConfig, hrnn
    from train.unroll import make_unroll

    problem = build(case)
    config = HRNNConfig()
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    fn = make_unroll(problem, config, meta, max_length=length, first_order=first_order, jit_compile=jit,
                     remat=remat)
    params = problem.init_params(0)
    state = hrnn.init_state(meta, config, params, 0)
    f0 = problem.objective(params)
    start = time.perf_counter()
    out = fn(params, state, f0, 0, length, 1)
    float(out[0])
    compile_s = time.perf_counter() - start
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        out = fn(out[2], out[3], f0, (r + 1) * length, length, 1)
        float(out[0])
        times.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return problem.num_params, compile_s, length / statistics.median(times), rss_mb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--noxla", action="store_true")
    parser.add_argument("--first_order", action="store_true")
    parser.add_argument("--remat", action="store_true", help="recompute each step in the backward pass")
    parser.add_argument("--case", choices=CASES)
    args = parser.parse_args()
    if args.case:  # child process: one case, so that peak memory is per case
        n, compile_s, rate, rss = run_case(args.case, args.length, not args.noxla, args.first_order, args.remat)
        print(f"RESULT {n} {compile_s:.2f} {rate:.1f} {rss:.0f}")
        return
    mode = ("graph" if args.noxla else "XLA") + (", first-order" if args.first_order else ", second-order")
    mode += ", recomputed steps" if args.remat else ""
    print(f"cpu cores: {os.cpu_count()}; {mode}; unroll length {args.length} and {2 * args.length}")
    print("| problem | params | compile s | inner steps/s (fwd+bwd) | peak RSS MB | MB per inner step |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        results = []
        for length in (args.length, 2 * args.length):
            cmd = [sys.executable, __file__, "--case", case, "--length", str(length)]
            cmd += ["--noxla"] * args.noxla + ["--first_order"] * args.first_order + ["--remat"] * args.remat
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append([float(v) for v in out.split("RESULT")[1].split()])
        (n, compile_s, rate, rss), (_, _, _, rss2) = results
        per_step = (rss2 - rss) / args.length
        print(f"| {case} | {int(n):,} | {compile_s:.1f} | {rate:,.0f} | {rss:,.0f} | {per_step:.3f} |")


if __name__ == "__main__":
    main()
