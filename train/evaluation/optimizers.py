"""Optimizers compared by the evaluation, in two forms: pure update rules for synthetic problems (run inside
one `tf.while_loop`) and Keras optimizers for Keras models. The baselines are `train.baselines`' rules with
Keras's defaults (Adam eps 1e-7, RMSProp rho 0.9, SGD momentum 0.9), so both forms are the same optimizer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import os

import keras
import tensorflow as tf

import lopt_tf
from lopt_tf import hrnn
from lopt_tf.weights import load_weights
from train import baselines

BASELINES = ("adam", "rmsprop", "momentum")
LABELS = {"adam": "Adam", "rmsprop": "RMSProp", "momentum": "SGD+momentum", "learned": "Learned (HRNN)"}
RULES = {"adam": baselines.Adam(), "rmsprop": baselines.RMSProp(), "momentum": baselines.SGD()}


def _stamp(weights: str | None) -> int | None:
    """Modification time of the file (or SavedModel directory) `weights` names, so a rewritten one is read again."""
    if weights is None:
        return None
    shipped = importlib.resources.files("lopt_tf").joinpath("weights", f"{weights}.npz")
    for path in (weights, str(shipped)):
        if os.path.exists(path):
            return os.stat(path).st_mtime_ns
    return None


@functools.lru_cache(maxsize=None)
def _load(weights: str, stamp: int | None):
    del stamp  # part of the cache key only
    return load_weights(weights)


def resolve_weights(weights: str):
    """`load_weights(weights)` -> (meta, config, info), read once per process (again if the file changed).
    The arrays are shared between callers: treat them as read-only."""
    return _load(weights, _stamp(weights))


@functools.lru_cache(maxsize=None)
def _digest(weights: str, stamp: int | None) -> str:
    meta, config, _ = _load(weights, stamp)
    h = hashlib.sha1()
    for k in sorted(meta):
        h.update(k.encode())
        h.update(meta[k].tobytes())
    h.update(config.to_json().encode())
    return h.hexdigest()[:16]


def weights_digest(weights: str) -> str:
    """Hash of a weight set's values and architecture, so cached runs of a set re-shipped under the same name
    (new values, or the same values under another config) are not reused."""
    return _digest(weights, _stamp(weights))


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
        _, config, _ = resolve_weights(self.weights)
        if self.init_lr:
            config = dataclasses.replace(config, init_lr_range=(self.init_lr, self.init_lr))
        return config

    def keras_optimizer(self, seed: int = 0) -> keras.optimizers.Optimizer:
        if self.kind == "learned":  # built from the weights' name, which its config records (and so reads them)
            return lopt_tf.LearnedOptimizer(learning_rate=self.learning_rate, weights=self.weights,
                                            hrnn_config=self.hrnn_config(), seed=seed)
        rule = RULES[self.kind]
        if self.kind == "adam":
            return keras.optimizers.Adam(self.learning_rate, beta_1=rule.beta_1, beta_2=rule.beta_2,
                                         epsilon=rule.epsilon)
        if self.kind == "rmsprop":
            return keras.optimizers.RMSprop(self.learning_rate, rho=rule.rho, epsilon=rule.epsilon)
        return keras.optimizers.SGD(self.learning_rate, momentum=rule.momentum)


class PureOptimizer:
    """`init(params, seed) -> state`, `update(params, grads, state, lr) -> (params, state, true_params)`."""

    def __init__(self, spec: OptimizerSpec):
        self.spec = spec
        if spec.kind == "learned":
            meta, _, _ = resolve_weights(spec.weights)
            self.meta = {k: tf.constant(v) for k, v in meta.items()}
            self.config = spec.hrnn_config()
        else:
            self.rule = RULES[spec.kind]

    def init(self, params, seed: int):
        if self.spec.kind == "learned":
            return hrnn.init_state(self.meta, self.config, params, seed)
        return self.rule.init(params)

    def update(self, params, grads, state, lr):
        if self.spec.kind == "learned":
            new, state = hrnn.step(self.meta, self.config, params, grads, state, learning_rate=lr)
            return new, state, hrnn.true_params(self.config, new, state)
        new, state = self.rule.update(grads, state, params, lr)
        return new, state, new
