"""Optimizers compared by the evaluation, in two forms: pure update rules for synthetic problems (run inside
one `tf.while_loop`) and Keras optimizers for Keras models. The baselines follow Keras's own update rules and
defaults (Adam eps 1e-7, RMSProp rho 0.9, SGD momentum 0.9), so both forms are the same optimizer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import keras
import tensorflow as tf

import lopt_tf
from lopt_tf import hrnn
from lopt_tf.weights import load_weights
from train.unroll import true_params

BASELINES = ("adam", "rmsprop", "momentum")
LABELS = {"adam": "Adam", "rmsprop": "RMSProp", "momentum": "SGD+momentum", "learned": "Learned (HRNN)"}


@functools.lru_cache(maxsize=None)
def weights_digest(weights: str) -> str:
    """Hash of a weight set's values, so cached runs of a re-shipped set under the same name are not reused."""
    meta, _, _ = load_weights(weights)
    h = hashlib.sha1()
    for k in sorted(meta):
        h.update(k.encode())
        h.update(meta[k].tobytes())
    return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer setting. `learning_rate` of the learned optimizer multiplies its learned step (1.0 = as
    learned); `init_lr` overrides its initial per-parameter learning rate (the LR-robustness sweep)."""

    kind: str
    learning_rate: float = 1.0
    weights: str = lopt_tf.DEFAULT_WEIGHTS
    init_lr: float | None = None

    def __post_init__(self):
        if self.kind not in BASELINES + ("learned",):
            raise ValueError(f"unknown optimizer kind {self.kind!r}")

    def key(self) -> dict:
        """What identifies the run's optimizer (a baseline's key does not mention the learned weights)."""
        if self.kind == "learned":
            return {**dataclasses.asdict(self), "weights_digest": weights_digest(self.weights)}
        return {"kind": self.kind, "learning_rate": self.learning_rate}

    @property
    def label(self) -> str:
        if self.kind == "learned":
            return LABELS["learned"] + (f" init lr {self.init_lr:g}" if self.init_lr else "")
        return f"{LABELS[self.kind]} lr={self.learning_rate:g}"

    def hrnn_config(self):
        _, config, _ = load_weights(self.weights)
        if self.init_lr:
            config = dataclasses.replace(config, init_lr_range=(self.init_lr, self.init_lr))
        return config

    def keras_optimizer(self, seed: int = 0) -> keras.optimizers.Optimizer:
        if self.kind == "learned":
            return lopt_tf.LearnedOptimizer(learning_rate=self.learning_rate, weights=self.weights,
                                            hrnn_config=self.hrnn_config(), seed=seed)
        if self.kind == "adam":
            return keras.optimizers.Adam(self.learning_rate)
        if self.kind == "rmsprop":
            return keras.optimizers.RMSprop(self.learning_rate)
        return keras.optimizers.SGD(self.learning_rate, momentum=0.9)


class PureOptimizer:
    """`init(params, seed) -> state`, `update(params, grads, state, lr) -> (params, state, true_params)`."""

    def __init__(self, spec: OptimizerSpec):
        self.spec = spec
        if spec.kind == "learned":
            meta, _, _ = load_weights(spec.weights)
            self.meta = {k: tf.constant(v) for k, v in meta.items()}
            self.config = spec.hrnn_config()

    def init(self, params, seed: int):
        if self.spec.kind == "learned":
            return hrnn.init_state(self.meta, self.config, params, seed)
        zeros = [tf.zeros_like(p) for p in params]
        if self.spec.kind == "adam":
            return {"m": zeros, "v": [tf.zeros_like(p) for p in params], "t": tf.constant(0.0)}
        return {"s": zeros}

    def update(self, params, grads, state, lr):
        kind = self.spec.kind
        if kind == "learned":
            new, state = hrnn.step(self.meta, self.config, params, grads, state, learning_rate=lr)
            return new, state, true_params(self.config, new, state)
        if kind == "adam":
            t = state["t"] + 1.0
            m = [0.9 * m + 0.1 * g for m, g in zip(state["m"], grads)]
            v = [0.999 * v + 0.001 * tf.square(g) for v, g in zip(state["v"], grads)]
            alpha = lr * tf.sqrt(1.0 - 0.999 ** t) / (1.0 - 0.9 ** t)
            new = [p - alpha * mi / (tf.sqrt(vi) + 1e-7) for p, mi, vi in zip(params, m, v)]
            return new, {"m": m, "v": v, "t": t}, new
        if kind == "rmsprop":
            s = [0.9 * s + 0.1 * tf.square(g) for s, g in zip(state["s"], grads)]
            new = [p - lr * g / tf.sqrt(si + 1e-7) for p, g, si in zip(params, grads, s)]
            return new, {"s": s}, new
        s = [0.9 * s - lr * g for s, g in zip(state["s"], grads)]  # SGD with momentum, Keras form
        new = [p + si for p, si in zip(params, s)]
        return new, {"s": s}, new
