"""Weight sets whose learned step is scaled by constant factors: `stepsize_offset + log(m)`.

    python -m train.scale_step --weights hrnn_v4 --factors 0.01,0.03,0.1 --output_dir meta_runs/step_scale

writes `hrnn_v4_x0.01.npz`, ... . Each file behaves exactly like `LearnedOptimizer(weights=..., learning_rate=m)`
(the step is `learning_rate * exp(log_lr + stepsize_offset)`), but as a weight set it can be scored by
`train.select_weights` on held-out problems and shipped by name. Why: every meta-trained set learned an offset
near 4, tuned on meta-training tasks of a few thousand steps; on real networks over 10,000 steps a 10-100x
smaller step is far better (meta_runs/step_scale/NOTES.md).

With `--init_lr c` the files (`hrnn_v4_x0.01_init<c>.npz`) also start every learning rate at c
(`init_lr_range=(c, c)` in the stored config) instead of the meta-training draw over [1e-6, 1e-2], which gives
each tensor a random learning rate that the optimizer corrects only slowly.

With `--lr_bias_shift d` the files (`hrnn_v4_x0.03_lrb<d>.npz`) also add d to `readout/lr_bias`, the constant
part of the learned change of every log learning rate. That change enters the state through the LR momentum,
so every log learning rate drifts by an extra `(1 - sigmoid(lr_momentum_logit)) * d` per step. Why: hrnn_v4's
bias (-0.016, times 0.047) anneals every learning rate by a factor of about 2,000 over 10,000 steps, a schedule
fitted to meta-training tasks of a few thousand steps, under which the MNIST ConvNet stalls
(meta_runs/step_scale/NOTES.md).
"""

import dataclasses
import math
import os

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags (defined only when run as a program, so importing this module defines none)."""
    flags.DEFINE_string("weights", "", "Weight set to scale (shipped name or .npz path).")
    flags.DEFINE_list("factors", [], "Step multipliers m > 0.")
    flags.DEFINE_string("output_dir", "", "Directory for <name>_x<m>.npz.")
    flags.DEFINE_float("init_lr", None, "If set, every log learning rate starts at log(init_lr) (> 0).")
    flags.DEFINE_float("lr_bias_shift", None, "If set, added to readout/lr_bias (the log-LR drift).")


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


def shift_lr_bias(meta: dict, shift: float) -> dict:
    """A copy of `meta` whose learned log-LR change has `shift` added to its constant part."""
    if not math.isfinite(shift):
        raise ValueError(f"lr_bias_shift must be a finite number, got {shift!r}")
    if "lr_momentum_logit" not in meta:
        raise ValueError("these weights have no learned log learning rate (dynamic_output_scale=False)")
    out = dict(meta)
    out["readout/lr_bias"] = meta["readout/lr_bias"] + shift
    return out


def write_scaled(weights: str, factors: list, output_dir: str, init_lr: float | None = None,
                 lr_bias_shift: float | None = None) -> list[str]:
    """Write one scaled copy of `weights` per factor (starting every learning rate at `init_lr` and shifting
    the log-LR bias by `lr_bias_shift`, if given); return their paths. Every argument is checked before anything
    is written."""
    from lopt_tf.weights import load_weights, save_weights

    meta, config, info = load_weights(weights)
    stem = os.path.splitext(os.path.basename(os.fspath(weights)))[0]
    suffix = ""
    if init_lr is not None:
        if not (init_lr > 0 and math.isfinite(init_lr)):
            raise ValueError(f"init_lr must be a finite number > 0, got {init_lr!r}")
        config = dataclasses.replace(config, init_lr_range=(float(init_lr), float(init_lr)))
        info = {**info, "init_lr": float(init_lr)}
        suffix = f"_init{init_lr:g}"
    if lr_bias_shift is not None:
        meta = shift_lr_bias(meta, float(lr_bias_shift))
        info = {**info, "lr_bias_shift": float(lr_bias_shift)}
        suffix += f"_lrb{lr_bias_shift:g}"
    scaled = [(float(f), scale_step(meta, float(f))) for f in factors]
    paths = []
    for factor, scaled_meta in scaled:
        path = os.path.join(output_dir, f"{stem}_x{factor:g}{suffix}.npz")
        save_weights(path, scaled_meta, config,
                     {**info, "step_scale": {"source": os.fspath(weights), "factor": factor}})
        paths.append(path)
    return paths


def main(argv):
    del argv
    if not FLAGS.weights or not FLAGS.factors or not FLAGS.output_dir:
        raise app.UsageError("--weights, --factors and --output_dir are required")
    for path in write_scaled(FLAGS.weights, FLAGS.factors, FLAGS.output_dir, FLAGS.init_lr,
                             FLAGS.lr_bias_shift):
        print(path)


if __name__ == "__main__":
    define_flags()
    app.run(main)
