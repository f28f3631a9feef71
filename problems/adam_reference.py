"""Adam(1e-3) on problems of a problem set: initial and final objective per problem (the reference a validation
set is checked against, so that a learned optimizer is validated where Adam reaches a small loss).

    python -m problems.adam_reference --problem_set user_like_valid --steps 2000 --seeds 3
    python -m problems.adam_reference --problem_set user_like_valid --steps 2000 --validation 8
    python -m problems.adam_reference --problem_set user_like_valid --steps 2000 --seeds 2 --every_spec

For each family of the set and each of `--seeds` instances (`build(family, seed)` for seeds `--first_seed`,
+1, ...), or with `--validation N` for the N problems the meta-trainer validates on (`sample(seed)` for the same
seeds, as `train.trainer` does with `--validation_seed`), or with `--every_spec` for every spec of every family
(`--seeds` data seeds each; families made by `pick_spec`), runs Adam (Keras defaults: β1 0.9, β2 0.999, ε 1e-7)
from `init_params(seed)` on the minibatch gradients `gradient(params, step, seed)` for `--steps` steps in
XLA-compiled chunks. Prints one row per problem (the objective at the start, after 500, 1,000, 2,000 and 5,000
steps where the run is longer, at the end, the ratio end / start, and the problem's noise floor where it has one)
and a summary per family. Adam is written out here because this package does not import `train` (its
`baselines.Adam` is the same rule).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from problems.base import Problem
from problems.problem_sets import ProblemSampler


def adam_run(problem: Problem, steps: int, learning_rate: float = 1e-3, seed: int = 0, chunk: int = 250,
             jit_compile: bool = True) -> list[tuple[int, float]]:
    """[(step, objective)] at step 0, after every `chunk` steps and at `steps`, for Adam from
    `problem.init_params(seed)`, minibatch gradients `problem.gradient(params, step, seed)`."""
    b1, b2, eps = 0.9, 0.999, 1e-7
    params = problem.init_params(seed)
    m = [tf.zeros_like(p) for p in params]
    v = [tf.zeros_like(p) for p in params]

    @tf.function(jit_compile=jit_compile)
    def run(params, m, v, start, length):
        def body(t, params, m, v):
            step = start + t
            _, grads = problem.gradient(params, step, seed)
            m = [b1 * a + (1 - b1) * g for a, g in zip(m, grads)]
            v = [b2 * a + (1 - b2) * tf.square(g) for a, g in zip(v, grads)]
            count = tf.cast(step + 1, tf.float32)
            alpha = learning_rate * tf.sqrt(1 - b2 ** count) / (1 - b1 ** count)
            params = [p - alpha * a / (tf.sqrt(b) + eps) for p, a, b in zip(params, m, v)]
            return t + 1, params, m, v

        _, params, m, v = tf.while_loop(lambda t, *_: t < length, body, (tf.constant(0), params, m, v))
        return params, m, v, problem.objective(params)

    curve, done = [(0, float(problem.objective(params)))], 0
    while done < steps:
        length = min(chunk, steps - done)
        params, m, v, f = run(params, m, v, tf.constant(done), tf.constant(length))
        done += length
        curve.append((done, float(f)))
    return curve


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem_set", default="user_like_valid")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=10**6)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--families", default="", help="comma-separated subset of the set's families")
    parser.add_argument("--validation", type=int, default=0,
                        help="instead of per family: the first N problems sample(first_seed + i)")
    parser.add_argument("--every_spec", action="store_true", help="every spec of every family, --seeds each")
    args = parser.parse_args(argv)
    sampler = ProblemSampler.named(args.problem_set)
    names = args.families.split(",") if args.families else sampler.names
    print(f"Adam({args.learning_rate:g}), {args.steps} steps, problem set {args.problem_set}")
    marks = [s for s in (500, 1000, 2000, 5000) if s < args.steps]
    columns = ["family", "problem", "f(0)", *(f"f({s})" for s in marks), "f(end)", "end / f(0)", "floor", "time"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    summary = {}
    if args.validation:
        jobs = [(sampler.sample(args.first_seed + i), args.first_seed + i) for i in range(args.validation)]
    elif args.every_spec:
        jobs = []
        for family in (f for f in sampler.families if f.name in names):
            if not hasattr(family.factory, "specs"):
                raise ValueError(f"family {family.name} was not made by pick_spec: no specs to go through")
            for spec in family.factory.specs:
                for i in range(args.seeds):
                    seed = args.first_seed + i
                    problem = dataclasses.replace(family.factory.build(*spec, seed), family=family.name)
                    jobs.append((problem, seed))
    else:
        jobs = [(sampler.build(f, args.first_seed + i), args.first_seed + i) for f in names for i in range(args.seeds)]
    for problem, seed in jobs:
        family = problem.family
        start = time.perf_counter()
        curve = dict(adam_run(problem, args.steps, args.learning_rate, seed=seed))
        elapsed = time.perf_counter() - start
        f0, fend = curve[0], curve[args.steps]
        floor = getattr(problem, "bayes_loss", float("nan"))
        between = "".join(f"{curve[s]:.3g} | " if s in curve else "- | " for s in marks)
        print(f"| {family} | {problem.name} | {f0:.3g} | {between}{fend:.3g} | {fend / f0:.3f} | {floor:.3g} | "
              f"{elapsed:.0f} s |", flush=True)
        summary.setdefault(family, []).append(fend / f0 if math.isfinite(fend) else float("inf"))
    print("\n| family | mean end / f(0) | worst |")
    print("|---|---|---|")
    for family, ratios in summary.items():
        print(f"| {family} | {np.mean(ratios):.3f} | {np.max(ratios):.3f} |")


if __name__ == "__main__":
    main()
