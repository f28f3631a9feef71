"""The hand-designed optimizers, once, as pure update rules on lists or dicts of tensors (optax style).

    rule = Adam()                                          # hyper-parameters are frozen dataclass fields
    state = rule.init(params)
    params, state = rule.update(grads, state, params, learning_rate)

No `tf.Variable` is created or read, so the same rule runs inside a `tf.while_loop` (the evaluation's synthetic
problems, `train.evaluation.optimizers`) and behind checkpointable variables (the meta-optimizer,
`train.meta_optimizers`). The defaults are Keras 3's (`keras.optimizers.Adam`, `RMSprop`, `SGD(momentum=0.9)`):
with them a rule follows the Keras optimizer of the same name step for step (up to float32 rounding).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf


def _map(fn, *structures):
    return tf.nest.map_structure(fn, *structures)


def _zeros(params):
    return _map(tf.zeros_like, params)


@dataclasses.dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015). State: first moment `m`, second moment `v`, step count `t` (float32).

    `bias_corrected_epsilon=False` is the form of Keras and of the paper's Sec. 2 (last paragraph):
    `p - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`. `True` is the paper's Algorithm 1:
    `p - lr * m_hat / (sqrt(v_hat) + eps)` with the bias-corrected moments, where eps weighs more early on.
    """

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    bias_corrected_epsilon: bool = False

    def init(self, params):
        return {"m": _zeros(params), "v": _zeros(params), "t": tf.constant(0.0)}

    def update(self, grads, state, params, learning_rate):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        t = state["t"] + 1.0
        m = _map(lambda m, g: b1 * m + (1.0 - b1) * g, state["m"], grads)
        v = _map(lambda v, g: b2 * v + (1.0 - b2) * tf.square(g), state["v"], grads)
        if self.bias_corrected_epsilon:
            m_hat = _map(lambda m: m / (1.0 - b1 ** t), m)
            v_hat = _map(lambda v: v / (1.0 - b2 ** t), v)
            new = _map(lambda p, m, v: p - learning_rate * m / (tf.sqrt(v) + eps), params, m_hat, v_hat)
        else:
            alpha = learning_rate * tf.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
            new = _map(lambda p, m, v: p - alpha * m / (tf.sqrt(v) + eps), params, m, v)
        return new, {"m": m, "v": v, "t": t}


@dataclasses.dataclass(frozen=True)
class RMSProp:
    """RMSProp (Tieleman & Hinton, 2012) as Keras writes it: `v = rho v + (1 - rho) g^2`,
    `p - lr * g / sqrt(v + eps)` (eps inside the square root). State: the mean square `v`."""

    rho: float = 0.9
    epsilon: float = 1e-7

    def init(self, params):
        return {"v": _zeros(params)}

    def update(self, grads, state, params, learning_rate):
        rho, eps = self.rho, self.epsilon
        v = _map(lambda v, g: rho * v + (1.0 - rho) * tf.square(g), state["v"], grads)
        new = _map(lambda p, g, v: p - learning_rate * g / tf.sqrt(v + eps), params, grads, v)
        return new, {"v": v}


@dataclasses.dataclass(frozen=True)
class SGD:
    """SGD with (heavy-ball) momentum as Keras writes it: `m = momentum m - lr g`, `p + m`. State: `m`."""

    momentum: float = 0.9

    def init(self, params):
        return {"m": _zeros(params)}

    def update(self, grads, state, params, learning_rate):
        m = _map(lambda m, g: self.momentum * m - learning_rate * g, state["m"], grads)
        return _map(lambda p, m: p + m, params, m), {"m": m}
