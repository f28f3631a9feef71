"""Pick the weight set with the best validation meta-loss on held-out problem seeds, at a chosen horizon.

    python -m train.select_weights --weights a.npz,b.npz,... --problem_set with_nn --length 2000 \\
        --num_problems 48 --copy_best lopt_tf/weights/new.npz

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


def main(argv):
    del argv
    scores = score(FLAGS.weights, FLAGS.problem_set, FLAGS.num_problems, FLAGS.length)
    best = min(range(len(scores)), key=scores.__getitem__)
    print("best:", FLAGS.weights[best], f"{scores[best]:.4f}")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(f"Validation meta-loss, {FLAGS.num_problems} held-out `{FLAGS.problem_set}` problems, "
                    f"{FLAGS.length} steps (lower is better)\n\n| weights | score |\n|---|---|\n")
            f.writelines(f"| {w}{' (best)' if i == best else ''} | {s:.4f} |\n"
                         for i, (w, s) in enumerate(zip(FLAGS.weights, scores)))
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
