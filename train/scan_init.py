"""Validation meta-loss of fresh initialisations over a grid of `HRNNConfig` initialisation fields.

    python -m train.scan_init --grid stepsize_offset_init=-1,2,3,4,5,6,7 --num_validation_problems 48

Stage 1 of the shipped weights (lopt_tf/weights/TRAINING.md): before gradient meta-training, pick the scalar
initialisations (step-size offset, LR bias, ...) by validation on held-out seeds of the meta-training
distribution. Cheap: one traced validation unroll per problem, reused for every grid point (only the
meta-parameters' values change). Prints one line per point and writes them to `--output` (CSV).
"""

import itertools
import json

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_multi_string("grid", [], "field=v1,v2,... (HRNNConfig initialisation fields); the product is scanned.")
    flags.DEFINE_string("problem_set", "default", "Problem set the validation problems come from.")
    flags.DEFINE_integer("num_validation_problems", 48, "Held-out validation problems (seeds from 1,000,000).")
    flags.DEFINE_integer("validation_length", 200, "Inner steps per validation problem.")
    flags.DEFINE_string("output", "", "CSV file for the results (optional).")


def scan(grid: dict, problem_set="default", num_validation_problems=48, validation_length=200, output_dir=None):
    """[(overrides, validation meta-loss)] for every point of the grid (dict field -> list of values)."""
    import dataclasses
    import tempfile

    from lopt_tf.config import HRNNConfig
    from lopt_tf.hrnn import init_meta_numpy
    from train.trainer import MetaTrainConfig, MetaTrainer

    config = MetaTrainConfig(problem_set=problem_set, num_validation_problems=num_validation_problems,
                             validation_length=validation_length, init_weights=None)
    trainer = MetaTrainer(config, output_dir or tempfile.mkdtemp(prefix="scan_init_"), verbose=0)
    results = []
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values))
        hrnn_config = dataclasses.replace(HRNNConfig(), **overrides)  # init-only fields: same shapes
        results.append((overrides, trainer.validate_meta(init_meta_numpy(hrnn_config))))
        print(json.dumps(overrides), f"{results[-1][1]:.4f}", flush=True)
    return results


def main(argv):
    del argv
    grid = {}
    for item in FLAGS.grid:
        key, _, raw = item.partition("=")
        grid[key] = [json.loads(v) for v in raw.split(",")]
    results = scan(grid, FLAGS.problem_set, FLAGS.num_validation_problems, FLAGS.validation_length)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(",".join(list(grid) + ["validation_meta_loss"]) + "\n")
            for overrides, value in results:
                f.write(",".join([str(v) for v in overrides.values()] + [f"{value:.6f}"]) + "\n")
    best = min(results, key=lambda r: r[1])
    print("best:", json.dumps(best[0]), f"{best[1]:.4f}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
