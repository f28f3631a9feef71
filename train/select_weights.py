"""Pick the weight set with the best validation meta-loss on held-out problem seeds, at a chosen horizon.

    python -m train.select_weights --weights a.npz,b.npz,... --problem_set with_nn --length 2000 \\
        --num_problems 48 --copy_best lopt_tf/weights/new.npz
    python -m train.select_weights --criterion wins --weights a.npz,b.npz,... --cache_dir DIR
    python -m train.select_weights --criterion final_vs_adam --problem_set nn_no_decay,conv_no_decay \\
        --num_problems 6 --length 10000 --weights a.npz,b.npz,... --cache_dir DIR

Criterion `meta_loss` (default): the meta-trainer's validation meta-loss (mean log loss ratio over the run).
Criterion `wins`: evaluation experiment 1 on the validation range instead of the test range, i.e. the fraction of
40 held-out problems of the meta-training distribution on which the set's final loss (mean of 3 seeds, 1,000 steps)
is below learning-rate-tuned Adam's (then RMSProp's, as the tie-break). Problems whose name is also a test
problem's (the fixed test functions, e.g. `booth`) are skipped, so no test problem is scored. Runs are cached in
`--cache_dir`, so the baselines are tuned once for all sets and later calls reuse them.
Criterion `final_vs_adam`: the evaluation's MNIST comparison (final training loss against Adam at lr 1e-3,
`evaluation_results/results.md`, experiment 2) on held-out problems: the fraction of problems (`--num_problems`
from each set in `--problem_set`, a comma list) on which the set's final loss after `--length` steps is at most
Adam's at its default learning rate 1e-3 (ties broken by the mean log10 of the ratio); a set with a late spike
above 10x in any run (`train.evaluation.runs.late_spike`, evaluation experiments 2 and 8) ranks after every set
without one. Unlike the mean log loss
ratio, it sees a run that reaches a tiny loss and then blows up (the log ratio's 1e-6 floor hides the blow-up
behind the long stretches spent at the floor: docs/differences_from_original.md#meta-objective-floor).
Runs are cached in `--cache_dir`.

Meta-training validates every few steps on short unrolls (200 steps) to keep the run fast; the shipped
weights are chosen among saved snapshots by this longer validation, since the evaluation runs 1,000-10,000
steps. Problems come from seeds 1,000,000 + i (the validation range; meta-training tasks never use it, the
evaluation's test problems start at 2,000,000). Prints one line per weight set and a table in `--output`.
"""

import json

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_list("weights", [], "Weight sets (names or .npz paths) of one architecture.")
    flags.DEFINE_string("problem_set", "with_nn", "Problem set of the held-out validation problems.")
    flags.DEFINE_integer("num_problems", 48, "Held-out validation problems.")
    flags.DEFINE_integer("length", 2000, "Inner steps per problem.")
    flags.DEFINE_string("output", "", "Markdown table of the scores (optional).")
    flags.DEFINE_string("copy_best", "", "Copy the best .npz here (optional).")
    flags.DEFINE_enum("criterion", "meta_loss", ["meta_loss", "wins", "final_vs_adam"],
                      "What to rank the sets by (see above).")
    flags.DEFINE_string("cache_dir", "", "Criteria `wins`, `final_vs_adam`: directory of the cached runs (required).")


def score(weights: list, problem_set: str, num_problems: int, length: int) -> list[float]:
    """Validation meta-loss (mean log loss ratio over the run, lower is better) of each weight set.

    All sets must share one architecture. Each set runs with its own stored runtime settings (`init_lr_range`),
    so sets that differ only in how the learning rates start are compared as shipped.
    """
    import tempfile

    from lopt_tf.weights import load_weights, merge_config
    from train.trainer import MetaTrainConfig, MetaTrainer

    loaded = [load_weights(w) for w in weights]
    for w, (_, config, _) in zip(weights[1:], loaded[1:]):
        merge_config(config, loaded[0][1], f"weights {w!r}")  # WeightsError unless one architecture
    trainers = {}
    scores = []
    for name, (meta, config, _) in zip(weights, loaded):
        key = config.to_json()
        if key not in trainers:
            trainers[key] = MetaTrainer(
                MetaTrainConfig(problem_set=problem_set, num_validation_problems=num_problems,
                                validation_length=length, init_weights=None, hrnn=config),
                tempfile.mkdtemp(prefix="select_weights_"), verbose=0)
        scores.append(trainers[key].validate_meta(meta))
        print(name, f"{scores[-1]:.4f}", flush=True)
    return scores


def score_wins(weights: list, cache_dir: str, quick: bool = False, verbose: int = 1) -> list[dict]:
    """Win fractions against the tuned baselines (experiment 1 on validation seeds), one dict per set:
    `{"adam": f, "rmsprop": f, "momentum": f, "rows": [...]}`. Sets may differ in architecture. `quick`: the
    evaluation's quick sizes (4 problems, 100 steps, 1 seed)."""
    import dataclasses

    from train.evaluation.context import Context
    from train.evaluation.synthetic import compare_on_problem, held_out_problems, win_fractions
    from train.trainer import MetaTrainConfig

    if not cache_dir:
        raise ValueError("criterion 'wins' needs --cache_dir (where its runs are cached)")
    test_ctx = Context(cache_dir, quick=quick, weights=weights[0], verbose=0)  # the evaluation's test problems
    test_names = frozenset(p.name for p in held_out_problems(test_ctx))
    ctx = dataclasses.replace(test_ctx, first_problem_seed=MetaTrainConfig.validation_seed,
                              exclude_problems=test_names)
    items = held_out_problems(ctx)
    out = []
    for w in weights:
        rows = [{"problem": p.name, **compare_on_problem(ctx, p, weights=w)} for p in items]
        out.append({**win_fractions(rows), "rows": rows})
        if verbose:
            print(w, " ".join(f"{k} {out[-1][k]:.0%}" for k in ("adam", "rmsprop", "momentum")), flush=True)
    return out


ADAM_DEFAULT_LR = 1e-3  # Keras's Adam default, the "Adam lr=1e-3" column of the evaluation's MNIST table
MAX_LATE_SPIKE = 10.0  # the evaluation's bound on a late rise of the loss (experiments 2 and 8)


def score_final_vs_adam(weights: list, problem_sets: list[str], num_problems: int, length: int, cache_dir: str,
                        record_every: int = 500, verbose: int = 1) -> list[dict]:
    """Final losses against Adam at lr 1e-3 on held-out problems, one dict per set:
    `{"wins": fraction with final loss <= Adam's, "log10_ratio": mean log10(final / Adam's final),
    "late_spike": the largest late spike of the set's runs (`train.evaluation.runs.late_spike` over the losses
    recorded every `record_every` steps), "rows": [...]}`; each row has the problem, both final losses and the
    learned run's late spike.

    Problem i of each set is `ProblemSampler.named(set).sample(validation_seed + i)`, initialised (and its
    learning rates drawn) with that seed, as in the meta-trainer's validation. A non-finite final loss counts as
    1e30. Sets may differ in architecture; each runs with its own stored config.
    """
    import math

    import problems
    from train.evaluation.context import Context
    from train.evaluation.optimizers import OptimizerSpec
    from train.evaluation.runs import final_loss, late_spike
    from train.evaluation.synthetic import cached_runner
    from train.trainer import MetaTrainConfig

    if not cache_dir:
        raise ValueError("criterion 'final_vs_adam' needs --cache_dir (where its runs are cached)")
    if length % record_every:
        raise ValueError(f"length {length} must be a multiple of record_every {record_every}")
    ctx = Context(cache_dir, quick=False, weights=weights[0], verbose=0)  # its run cache: <cache_dir>/cache
    items = []
    for name in problem_sets:
        sampler = problems.ProblemSampler.named(name)
        items += [(name, sampler.sample(MetaTrainConfig.validation_seed + i), MetaTrainConfig.validation_seed + i)
                  for i in range(num_problems)]

    def run(spec, problem, seed):
        return cached_runner(ctx, problem, length, record_every)(spec, seed)

    def final(result):
        value = final_loss(result)
        return value if math.isfinite(value) else 1e30

    adam = OptimizerSpec("adam", learning_rate=ADAM_DEFAULT_LR)
    out = []
    for w in weights:
        rows = []
        for s, p, seed in items:
            learned = run(OptimizerSpec("learned", weights=w), p, seed)
            rows.append({"problem_set": s, "problem": p.name, "learned": final(learned),
                         "adam": final(run(adam, p, seed)), "late_spike": late_spike(learned["losses"])})
        ratios = [math.log10(max(r["learned"], 1e-30) / max(r["adam"], 1e-30)) for r in rows]
        out.append({"wins": sum(r["learned"] <= r["adam"] for r in rows) / len(rows),
                    "log10_ratio": sum(ratios) / len(ratios),
                    "late_spike": max(r["late_spike"] for r in rows), "rows": rows})
        if verbose:
            print(w, f"wins {out[-1]['wins']:.0%} log10 ratio {out[-1]['log10_ratio']:+.3f} "
                  f"late spike {out[-1]['late_spike']:.3g}", flush=True)
    return out


def main(argv):
    del argv
    if FLAGS.criterion == "wins":
        results = score_wins(FLAGS.weights, FLAGS.cache_dir)
        scores = [-(r["adam"] + 1e-3 * r["rmsprop"]) for r in results]  # most wins vs Adam, then vs RMSProp
        header = ("Wins against learning-rate-tuned baselines on 40 held-out problems of the meta-training "
                  "distribution (validation seeds 1,000,000+, test problems' names excluded; 1,000 steps, "
                  "3 seeds; higher is better)\n\n"
                  "| weights | vs Adam | vs RMSProp | vs SGD+momentum |\n|---|---|---|---|\n")
        cells = [f"{r['adam']:.0%} | {r['rmsprop']:.0%} | {r['momentum']:.0%}" for r in results]
    elif FLAGS.criterion == "final_vs_adam":
        results = score_final_vs_adam(FLAGS.weights, FLAGS.problem_set.split(","), FLAGS.num_problems,
                                      FLAGS.length, FLAGS.cache_dir)
        # No late spike above 10x first, then the most wins, then the lower ratio.
        scores = [(r["late_spike"] > MAX_LATE_SPIKE, -r["wins"], r["log10_ratio"]) for r in results]
        rows = results[0]["rows"]
        header = (f"Final loss after {FLAGS.length} steps against Adam at lr 1e-3, {FLAGS.num_problems} held-out "
                  f"problems of each of {FLAGS.problem_set} (seeds 1,000,000+; higher wins are better)\n\n"
                  "| weights | final loss <= Adam 1e-3 | mean log10(final / Adam's) | largest late spike | "
                  + " | ".join(r["problem"] for r in rows) + " |\n|---|---|---|---|" + "---|" * len(rows) + "\n"
                  + "| Adam 1e-3 (final loss) | | | | " + " | ".join(f"{r['adam']:.3g}" for r in rows) + " |\n")
        cells = [f"{r['wins']:.0%} | {r['log10_ratio']:+.3f} | {r['late_spike']:.3g} | "
                 + " | ".join(f"{x['learned']:.3g}" for x in r["rows"]) for r in results]
    else:
        scores = score(FLAGS.weights, FLAGS.problem_set, FLAGS.num_problems, FLAGS.length)
        header = (f"Validation meta-loss, {FLAGS.num_problems} held-out `{FLAGS.problem_set}` problems, "
                  f"{FLAGS.length} steps (lower is better)\n\n| weights | score |\n|---|---|\n")
        cells = [f"{s:.4f}" for s in scores]
    best = min(range(len(scores)), key=scores.__getitem__)
    print("best:", FLAGS.weights[best], cells[best])
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(header)
            f.writelines(f"| {w}{' (best)' if i == best else ''} | {c} |\n"
                         for i, (w, c) in enumerate(zip(FLAGS.weights, cells)))
    if FLAGS.copy_best:
        copy_weights(FLAGS.weights[best], FLAGS.copy_best)
        print("copied to", FLAGS.copy_best, json.dumps({"score": scores[best]}))


def copy_weights(weights: str, path: str) -> None:
    """Write the set `weights` (a shipped name or a path) to `path`, config and info included."""
    from lopt_tf.weights import load_weights, save_weights

    meta, config, info = load_weights(weights)
    save_weights(path, meta, config, info)


if __name__ == "__main__":
    define_flags()
    app.run(main)
