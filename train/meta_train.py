"""Meta-train the hierarchical-RNN optimizer.

    python -m train.meta_train --output_dir runs/hrnn --meta_steps 2000 [--resume]

Single process by default. Multi-worker: set TF_CONFIG on every worker (see README) and pass
`--distributed`; each worker unrolls its own problems and the meta-gradients are all-reduced with
`tf.distribute.MultiWorkerMirroredStrategy`. Outputs in `--output_dir`: `weights_best.npz` (best validation),
`weights_latest.npz`, `saved_model_best/`, `run_config.json`, `validation.csv`, `checkpoints/`, `tensorboard/`.
"""

import dataclasses
import os

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_string("output_dir", None, "Where checkpoints, weights and logs go.", required=True)
    flags.DEFINE_bool("resume", False, "Continue from the latest checkpoint in --output_dir.")
    flags.DEFINE_string("problem_set", "default", "Problem set to meta-train on (problems.PROBLEM_SETS).")
    flags.DEFINE_integer("meta_steps", 1000, "Total meta-steps (one partial unroll per stream each).")
    flags.DEFINE_integer("min_length", 50, "Partial-unroll length = min_length + round(Exp(length_scale)).")
    flags.DEFINE_float("length_scale", 200.0, "Scale of the exponential part of the unroll length.")
    flags.DEFINE_integer("max_length", 1000, "Cap on the unroll length.")
    flags.DEFINE_integer("min_unrolls", 1, "Partial unrolls per task = min_unrolls + round(Exp(unrolls_scale)).")
    flags.DEFINE_float("unrolls_scale", 40.0, "Scale of the exponential part of the number of unrolls.")
    flags.DEFINE_integer("problems_per_step", 1, "Task streams whose meta-gradients are averaged per meta-step.")
    flags.DEFINE_enum("meta_optimizer", "rmsprop", ["rmsprop", "adam"], "Meta-optimizer.")
    flags.DEFINE_float("meta_learning_rate", 1e-6, "Meta learning rate (original: RMSProp at 1e-6).")
    flags.DEFINE_float("clip_value", 1e4, "Elementwise clip of the meta-gradient.")
    flags.DEFINE_float("stream_clip_norm", 0.0, "Scale each stream's meta-gradient down to this global norm before "
                       "averaging (0: off); keeps rare exploding meta-gradients out of Adam's second moment.")
    flags.DEFINE_float("divergence_multiplier", 1e3, "End a task once its loss exceeds this multiple of its initial "
                       "loss (0: only on non-finite values).")
    flags.DEFINE_bool("first_order", False, "Stop gradients through the problem gradients (no second-order terms).")
    flags.DEFINE_integer("seed", 0, "Run seed: every problem, length and initial state derives from it.")
    flags.DEFINE_string("init_weights", "init", "Weight set to start from ('none' for a fresh init of the config).")
    flags.DEFINE_integer("checkpoint_every", 10, "Checkpoint every N meta-steps (and on SIGTERM/SIGINT).")
    flags.DEFINE_integer("validate_every", 50, "Validate every N meta-steps.")
    flags.DEFINE_string("validation_problem_set", "", "Problem set of the held-out validation problems (default: "
                        "--problem_set).")
    flags.DEFINE_integer("num_validation_problems", 8, "Held-out validation problems (fixed seeds).")
    flags.DEFINE_integer("validation_length", 200, "Inner steps per validation problem.")
    flags.DEFINE_bool("xla", False, "Compile the unrolls with XLA: 3-13x faster inner steps, but ~8 s of compile per "
                      "task, and every task's compiled code stays mapped (a long run exhausts memory maps).")
    flags.DEFINE_bool("remat", True, "Recompute each inner step in the backward pass (less memory per inner step).")
    flags.DEFINE_multi_string("hrnn", [], "HRNNConfig overrides, e.g. --hrnn use_attention=True (ablations).")
    flags.DEFINE_bool("distributed", False, "Use MultiWorkerMirroredStrategy (TF_CONFIG must be set).")


def _parse_hrnn(overrides):
    import json

    from lopt_tf.config import HRNNConfig

    values = {}
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            values[key] = json.loads(raw.lower() if raw in ("True", "False") else raw)
        except json.JSONDecodeError:
            values[key] = raw
    return dataclasses.replace(HRNNConfig(), **values)


def main(argv):
    del argv
    import tensorflow as tf

    from lopt_tf import export_saved_model
    from train.trainer import MetaTrainConfig, MetaTrainer

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if FLAGS.distributed else None
    init_weights = None if FLAGS.init_weights.lower() == "none" else FLAGS.init_weights
    hrnn_config = _parse_hrnn(FLAGS.hrnn)
    if init_weights and FLAGS.hrnn:
        init_weights = None  # an ablation architecture starts from its own fresh initialisation
    config = MetaTrainConfig(
        problem_set=FLAGS.problem_set, meta_steps=FLAGS.meta_steps, min_length=FLAGS.min_length,
        length_scale=FLAGS.length_scale, max_length=FLAGS.max_length, min_unrolls=FLAGS.min_unrolls,
        unrolls_scale=FLAGS.unrolls_scale, problems_per_step=FLAGS.problems_per_step,
        meta_optimizer=FLAGS.meta_optimizer, meta_learning_rate=FLAGS.meta_learning_rate,
        clip_value=FLAGS.clip_value, first_order=FLAGS.first_order, seed=FLAGS.seed, init_weights=init_weights,
        hrnn=hrnn_config, checkpoint_every=FLAGS.checkpoint_every, validate_every=FLAGS.validate_every,
        validation_problem_set=FLAGS.validation_problem_set,
        num_validation_problems=FLAGS.num_validation_problems, validation_length=FLAGS.validation_length,
        jit_compile=FLAGS.xla, remat=FLAGS.remat, divergence_multiplier=FLAGS.divergence_multiplier,
        stream_clip_norm=FLAGS.stream_clip_norm)
    trainer = MetaTrainer(config, FLAGS.output_dir, strategy=strategy)
    result = trainer.run(resume=FLAGS.resume)
    best = os.path.join(FLAGS.output_dir, "weights_best.npz")
    if trainer.is_chief and os.path.exists(best) and not result["stopped"]:
        export_saved_model(os.path.join(FLAGS.output_dir, "saved_model_best"), weights=best)
    print(f"meta-step {result['step']}, skipped meta-gradients {result['skipped']}, outputs in {FLAGS.output_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
