"""The global log step G of a weight set with `global_lr="readout"` over a run, on held-out problems.

    python benchmarks/global_step_trace.py WEIGHTS [--problem_set user_like_default] [--seeds 8] [--steps 300]

For each problem (validation seeds 1,000,000 + i, which meta-training never draws) prints its family, the
objective before and after `--steps` steps of the weight set, and G after steps 1, 10, 100 and the last: whether
the multiplier follows the problem or is one constant.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, ".")  # run from the repository root

import tensorflow as tf  # noqa: E402

import problems  # noqa: E402
from lopt_tf import hrnn  # noqa: E402
from lopt_tf.weights import load_weights  # noqa: E402


def trace(meta, config, problem, steps: int):
    """(final params, [steps] G after each step) of `steps` steps from the problem's initial parameters."""
    params = problem.init_params(0)

    @tf.function
    def run(params, state):
        gs = tf.TensorArray(tf.float32, size=steps)

        def body(t, params, state, gs):
            _, grads = problem.gradient(params, t, 0)
            params, state = hrnn.step(meta, config, params, grads, state)
            r = tf.reduce_sum(state["h2"] * meta["readout/global_lr_kernel"]) + meta["readout/global_lr_bias"]
            return t + 1, params, state, gs.write(t, config.global_lr_band * tf.tanh(r))

        _, params, _, gs = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), params, state, gs))
        return params, gs.stack()

    return run(params, hrnn.init_state(meta, config, params, 0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights")
    parser.add_argument("--problem_set", default="user_like_default")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.steps < 100:
        parser.error("--steps must be at least 100 (G is printed after step 100).")
    meta, config, _ = load_weights(args.weights)
    if config.global_lr != "readout":
        raise SystemExit(f"{args.weights} has no global step (global_lr={config.global_lr!r}).")
    meta = {k: tf.constant(v) for k, v in meta.items()}
    print("| family | f0 | f | G step 1 | 10 | 100 | last |\n|---|---|---|---|---|---|---|")
    for i in range(args.seeds):
        problem = problems.sample(1_000_000 + i, args.problem_set)
        f0 = float(problem.objective(problem.init_params(0)))
        params, g = trace(meta, config, problem, args.steps)
        g = g.numpy()
        print(f"| {problem.family} | {f0:.3g} | {float(problem.objective(params)):.3g} | {g[0]:+.3f} | {g[9]:+.3f} | "
              f"{g[99]:+.3f} | {g[-1]:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
