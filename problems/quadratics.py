"""Quadratic-type problems of the paper's meta-training set: Quadratic, Bowl and Norm ("power-law") problems."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from problems.base import Problem


def _random_system(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """W ~ N(0,1)^{n x n} and y ~ N(0,1)^n, as in the original `Quadratic` and `Norm` problems."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, n), dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    return w, y


@dataclasses.dataclass(frozen=True, eq=False)
class Quadratic(Problem):
    """f(x) = ½‖Wx − y‖², x of shape (n,), initialised N(0, 1). The minimum is 0 (W is invertible a.s.)."""

    w: np.ndarray
    y: np.ndarray
    default_family = "quadratic"

    @classmethod
    def random(cls, n: int, seed: int, **kwargs) -> "Quadratic":
        return cls(*_random_system(n, seed), **kwargs)

    @property
    def name(self) -> str:
        return f"quadratic_{self.y.shape[0]}"

    @property
    def param_shapes(self):
        return ((self.y.shape[0],),)

    def objective(self, params):
        residual = tf.linalg.matvec(tf.constant(self.w), params[0]) - tf.constant(self.y)
        return 0.5 * tf.reduce_sum(tf.square(residual))


@dataclasses.dataclass(frozen=True, eq=False)
class Bowl(Problem):
    """2-D bowl f(x) = ½‖A x‖² with A = √diag(κ, 1)·R(angle): condition number κ, rotated by `angle`."""

    condition: float
    angle: float = 0.0
    default_family = "bowl"

    @property
    def name(self) -> str:
        return f"bowl_k{self.condition:g}_a{self.angle:.3g}"

    @property
    def param_shapes(self):
        return ((2,),)

    def matrix(self) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        rotation = np.array([[c, -s], [s, c]])
        return (np.diag(np.sqrt([self.condition, 1.0])) @ rotation).astype(np.float32)

    def objective(self, params):
        return 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(tf.constant(self.matrix()), params[0])))


@dataclasses.dataclass(frozen=True, eq=False)
class Norm(Problem):
    """"Power-law" problem f(x) = (Σ(|Wx − y| + ε)^p)^{1/p}, W and y random as for `Quadratic`.

    The original code notes that p < 1 gave NaN gradients; p must be >= 1.
    """

    w: np.ndarray
    y: np.ndarray
    power: float
    epsilon: float = 1e-6
    default_family = "norm"

    def __post_init__(self):
        if self.power < 1:
            raise ValueError(f"Norm needs power >= 1, got {self.power}")
        super().__post_init__()

    @classmethod
    def random(cls, n: int, power: float, seed: int, **kwargs) -> "Norm":
        return cls(*_random_system(n, seed), power, **kwargs)

    @property
    def name(self) -> str:
        return f"norm_{self.y.shape[0]}_p{self.power:g}"

    @property
    def param_shapes(self):
        return ((self.y.shape[0],),)

    def objective(self, params):
        residual = tf.abs(tf.linalg.matvec(tf.constant(self.w), params[0]) - tf.constant(self.y)) + self.epsilon
        return tf.pow(tf.reduce_sum(tf.pow(residual, self.power)), 1.0 / self.power)
