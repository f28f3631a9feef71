"""Weight sets whose learned step is scaled by constant factors: `stepsize_offset + log(m)`.

    python -m train.scale_step --weights hrnn_v4 --factors 0.01,0.03,0.1 --output_dir meta_runs/step_scale

writes `hrnn_v4_x0.01.npz`, ... . Each file behaves exactly like `LearnedOptimizer(weights=..., learning_rate=m)`
(the step is `learning_rate * exp(log_lr + stepsize_offset)`), but as a weight set it can be scored by
`train.select_weights` on held-out problems and shipped by name. Why: every meta-trained set learned an offset
near 4, tuned on meta-training tasks of a few thousand steps; on real networks over 10,000 steps a 10-100x
smaller step is far better (meta_runs/step_scale/NOTES.md).
"""

import math
import os

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_string("weights", "", "Weight set to scale (shipped name or .npz path).")
    flags.DEFINE_list("factors", [], "Step multipliers m > 0.")
    flags.DEFINE_string("output_dir", "", "Directory for <name>_x<m>.npz.")


def scale_step(meta: dict, factor: float) -> dict:
    """A copy of `meta` whose step is `factor` times larger (only `stepsize_offset` changes)."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"step factor must be a finite number > 0, got {factor!r}")
    if "stepsize_offset" not in meta:
        raise ValueError("these weights have no stepsize_offset (dynamic_output_scale=False); scale "
                         "LearnedOptimizer(learning_rate=...) instead")
    out = dict(meta)
    out["stepsize_offset"] = meta["stepsize_offset"] + math.log(factor)
    return out


def write_scaled(weights: str, factors: list, output_dir: str) -> list[str]:
    """Write one scaled copy of `weights` per factor; return their paths."""
    from lopt_tf.weights import load_weights, save_weights

    meta, config, info = load_weights(weights)
    stem = os.path.splitext(os.path.basename(os.fspath(weights)))[0]
    paths = []
    for factor in factors:
        factor = float(factor)
        scaled = scale_step(meta, factor)  # validates before anything is written
        path = os.path.join(output_dir, f"{stem}_x{factor:g}.npz")
        save_weights(path, scaled, config, {**info, "step_scale": {"source": os.fspath(weights), "factor": factor}})
        paths.append(path)
    return paths


def main(argv):
    del argv
    if not FLAGS.weights or not FLAGS.factors or not FLAGS.output_dir:
        raise app.UsageError("--weights, --factors and --output_dir are required")
    for path in write_scaled(FLAGS.weights, FLAGS.factors, FLAGS.output_dir):
        print(path)


if __name__ == "__main__":
    define_flags()
    app.run(main)
