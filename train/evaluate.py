"""The paper's experiments in one command: learned optimizer (untuned) vs tuned Adam / RMSProp / SGD-momentum.

    python -m train.evaluate --output_dir results [--quick] [--experiments 1,2,6] [--weights NAME_OR_PATH]

Writes one PNG per experiment, `results.md` (tables) and `results.json` (all numbers) into --output_dir.
Every single run is cached under `<output_dir>/cache/`, so an interrupted evaluation resumes where it stopped.

Experiments: 1 meta-training distribution (held-out seeds), 2 MNIST MLP/ConvNet curves, 3 large architectures
(small-resolution ImageNet pipeline), 4 learning-rate robustness, 5 ablations, 6 wall clock vs batch size,
7 speedup (steps tuned Adam needs), 8 100,000-step horizon.
"""

import json
import os
import time

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_string("output_dir", "evaluation_results", "Where figures, results.md and results.json go.")
    flags.DEFINE_bool("quick", False, "Small sizes that run in minutes (used by CI).")
    flags.DEFINE_list("experiments", ["1", "2", "3", "4", "5", "6", "7", "8"], "Which experiments to run.")
    flags.DEFINE_string("weights", None, "Weight set of the learned optimizer (default: lopt_tf.DEFAULT_WEIGHTS).")
    flags.DEFINE_list("ablation_weights", [], "Experiment 5: name=path pairs, one weight set per ablation.")


TITLES = {"1": "Meta-training distribution, held-out problems (Fig. 3)", "2": "MNIST MLP and ConvNet (Fig. 4a)",
          "3": "Large architectures, small-resolution ImageNet pipeline (Fig. 4b)",
          "4": "Learning-rate robustness (Fig. 5)", "5": "Ablations (Fig. 6)",
          "6": "Wall clock per step vs batch size (Fig. 7)", "7": "Speedup: steps tuned Adam needs",
          "8": "Horizon: 100,000 steps on the MNIST MLP (Fig. 2)"}


def run_experiments(ctx, which):
    from train.evaluation import keras_models, synthetic

    functions = {"1": synthetic.meta_distribution, "2": keras_models.mnist_curves,
                 "3": keras_models.large_architectures, "4": synthetic.lr_robustness, "5": synthetic.ablations,
                 "6": keras_models.wall_clock, "8": keras_models.horizon}
    results = {}
    for exp in which:
        if exp not in TITLES:
            raise ValueError(f"unknown experiment {exp!r}; known: {sorted(TITLES)}")
        if ctx.verbose:
            print(f"\n== Experiment {exp}: {TITLES[exp]}")
        start = time.perf_counter()
        if exp == "7":  # built from experiments 1 and 2 (their runs are cached, so this is cheap after them)
            results[exp] = speedup(ctx, synthetic.meta_distribution(ctx), keras_models.mnist_curves(ctx))
        else:
            results[exp] = functions[exp](ctx)
        results[exp]["wall_seconds"] = time.perf_counter() - start
    return results


def speedup(ctx, exp1, exp2):
    from train.evaluation.synthetic import speedup_rows

    rows = speedup_rows(ctx, exp1["rows"]) + speedup_rows(ctx, exp2["rows"])
    table = "| problem | steps tuned Adam needs to reach the learned optimizer's final loss / learned steps |\n"
    cells = ["never reached (> 1)" if r["speedup"] is None else f"{r['speedup']:.2f}" for r in rows]
    table += "|---|---|\n" + "".join(f"| {r['problem']} | {c} |\n" for r, c in zip(rows, cells))
    return {"rows": rows, "tables": [table], "figures": []}


def write_report(ctx, results, weights):
    lines = [f"# lopt_tf evaluation ({'quick' if ctx.quick else 'full'} size)", "",
             f"Learned optimizer weights: `{weights}` (not tuned). Baselines: learning rate tuned per problem on a "
             "log grid of half-decades, extended until the best is inside, selected by final training loss; "
             f"seeds {ctx.seeds}.", ""]
    for exp, res in results.items():
        lines += [f"## {exp}. {TITLES[exp]}", "", f"Wall time: {res['wall_seconds']:.0f} s", ""]
        lines += [t for t in res.get("tables", [])]
        lines += [f"![{f}]({f})" for f in res.get("figures", [])] + [""]
    with open(os.path.join(ctx.out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(ctx.out_dir, "results.json"), "w") as f:
        json.dump({"quick": ctx.quick, "weights": weights, "experiments": results}, f, indent=1, default=float)


def main(argv):
    del argv
    import lopt_tf
    from train.evaluation.context import Context

    weights = FLAGS.weights or lopt_tf.DEFAULT_WEIGHTS
    ablations = dict(item.split("=", 1) for item in FLAGS.ablation_weights)
    ctx = Context(FLAGS.output_dir, FLAGS.quick, weights, ablations)
    which = sorted(set(FLAGS.experiments), key=int)
    results = run_experiments(ctx, which)
    write_report(ctx, results, weights)
    print(f"\nWrote {os.path.join(ctx.out_dir, 'results.md')} and results.json")


if __name__ == "__main__":
    define_flags()
    app.run(main)
