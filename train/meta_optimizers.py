"""Meta-optimizers for the meta-parameters: RMSProp (the original's choice) and Adam.

The update rules are `train.baselines`'; this module holds their state in variables, so that
`tf.train.Checkpoint` saves it and a resumed run continues bit-exactly. The hyper-parameters are those of
meta-training, not Keras's: RMSProp decay 0.9 with eps 1e-20 inside the square root (original `metaopt.py`),
Adam eps 1e-8 added to the square root of the bias-corrected second moment (Kingma & Ba, 2015, Algorithm 1).
Gradients are clipped elementwise by value (original: +-1e4); a gradient with any non-finite entry is not
applied at all, and counted in `skipped`. With `trainable` names given, only those meta-parameters (and their
slots) are updated; the others stay frozen whatever their gradient.
"""

from __future__ import annotations

import tensorflow as tf

from train import baselines

DEFAULT_EPSILON = {"rmsprop": 1e-20, "adam": 1e-8}


def all_finite(grads: dict) -> bool:
    """True if no meta-gradient holds a NaN or Inf."""
    return all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads.values())


def update_rule(kind: str, decay: float = 0.9, beta_1: float = 0.9, beta_2: float = 0.999,
                epsilon: float | None = None):
    """The `train.baselines` rule of meta-optimizer `kind` with meta-training's hyper-parameters."""
    if kind not in DEFAULT_EPSILON:
        raise ValueError(f"meta-optimizer must be 'rmsprop' or 'adam', got {kind!r}")
    epsilon = DEFAULT_EPSILON[kind] if epsilon is None else epsilon
    if kind == "rmsprop":
        return baselines.RMSProp(rho=decay, epsilon=epsilon)
    return baselines.Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, bias_corrected_epsilon=True)


class MetaOptimizer(tf.Module):
    """`apply(grads)` updates the meta-parameter variables in place. Slots: `mom` (Adam's first moment), `ms`
    (the second moment of both rules), `iterations`, `skipped` (non-finite meta-gradients not applied).
    `trainable`: the names updated (default: all); `grads` needs only those."""

    def __init__(self, meta_vars: dict, kind: str = "rmsprop", learning_rate: float = 1e-6, clip_value: float = 1e4,
                 decay: float = 0.9, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float | None = None,
                 trainable=None):
        super().__init__(name="meta_optimizer")
        self.rule = update_rule(kind, decay, beta_1, beta_2, epsilon)
        self.kind, self.learning_rate, self.clip_value = kind, float(learning_rate), float(clip_value)
        self.keys = sorted(meta_vars if trainable is None else trainable)
        unknown = set(self.keys) - set(meta_vars)
        if unknown:
            raise ValueError(f"trainable names that are not meta-parameters: {sorted(unknown)}")
        self.meta_vars = meta_vars
        self.ms = {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in meta_vars.items()}
        self.mom = {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in meta_vars.items()}
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads: dict) -> bool:
        """Apply one meta-gradient; returns False (and counts it) if it holds a non-finite value."""
        if not all_finite({k: grads[k] for k in self.keys}):
            self.skipped.assign_add(1)
            return False
        self._apply([grads[k] for k in self.keys])
        return True

    @tf.function
    def _apply(self, grads):
        grads = [tf.clip_by_value(g, -self.clip_value, self.clip_value) for g in grads]
        params = [tf.convert_to_tensor(self.meta_vars[k]) for k in self.keys]
        ms = [tf.convert_to_tensor(self.ms[k]) for k in self.keys]
        if self.kind == "rmsprop":
            state = {"v": ms}
        else:
            mom = [tf.convert_to_tensor(self.mom[k]) for k in self.keys]
            state = {"m": mom, "v": ms, "t": tf.cast(self.iterations, tf.float32)}
        new_params, state = self.rule.update(grads, state, params, self.learning_rate)
        self.iterations.assign_add(1)
        for i, k in enumerate(self.keys):
            self.meta_vars[k].assign(new_params[i])
            self.ms[k].assign(state["v"][i])
            if "m" in state:
                self.mom[k].assign(state["m"][i])
