"""Meta-optimizers for the meta-parameters: RMSProp (the original's choice) and Adam.

Small, explicit and checkpointable (`tf.Module`, so `tf.train.Checkpoint` saves the slots): a resumed run
continues bit-exactly. Gradients are clipped elementwise by value (original: +-1e4); a gradient with any
non-finite entry is not applied at all, and counted in `skipped`.
"""

from __future__ import annotations

import tensorflow as tf


def all_finite(grads: dict) -> bool:
    """True if no meta-gradient holds a NaN or Inf."""
    return all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads.values())


class MetaOptimizer(tf.Module):
    def __init__(self, meta_vars: dict, kind: str = "rmsprop", learning_rate: float = 1e-6, clip_value: float = 1e4,
                 decay: float = 0.9, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float | None = None):
        super().__init__(name="meta_optimizer")
        if kind not in ("rmsprop", "adam"):
            raise ValueError(f"meta-optimizer must be 'rmsprop' or 'adam', got {kind!r}")
        self.kind, self.learning_rate, self.clip_value = kind, float(learning_rate), float(clip_value)
        self.decay, self.beta_1, self.beta_2 = decay, beta_1, beta_2
        self.epsilon = epsilon if epsilon is not None else (1e-20 if kind == "rmsprop" else 1e-8)
        self.keys = sorted(meta_vars)
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
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        for k, g in zip(self.keys, grads):
            g = tf.clip_by_value(g, -self.clip_value, self.clip_value)
            var, ms, mom = self.meta_vars[k], self.ms[k], self.mom[k]
            if self.kind == "rmsprop":
                ms.assign(self.decay * ms + (1.0 - self.decay) * tf.square(g))
                var.assign_sub(self.learning_rate * g / tf.sqrt(ms + self.epsilon))
            else:
                mom.assign(self.beta_1 * mom + (1.0 - self.beta_1) * g)
                ms.assign(self.beta_2 * ms + (1.0 - self.beta_2) * tf.square(g))
                m_hat = mom / (1.0 - self.beta_1 ** t)
                v_hat = ms / (1.0 - self.beta_2 ** t)
                var.assign_sub(self.learning_rate * m_hat / (tf.sqrt(v_hat) + self.epsilon))
