"""The nine classic 2-D test functions of the paper's meta-training set, with their initialisation ranges.

Each is written so that it is non-negative in float32 (e.g. Ackley as a sum of two non-negative terms) and has
finite first and second derivatives everywhere, including at its minimum.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple

import tensorflow as tf

from problems.base import Problem, stateless_uniform

_TWO_PI = 2.0 * math.pi


def _safe_sqrt(x):
    """sqrt with zero (not NaN) derivatives at 0 (double-where trick)."""
    positive = x > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, x, tf.ones_like(x))), tf.zeros_like(x))


def ackley(x, y):
    radius = _safe_sqrt(0.5 * (x * x + y * y))
    cosines = 0.5 * (tf.cos(_TWO_PI * x) + tf.cos(_TWO_PI * y))
    return 20.0 * (1.0 - tf.exp(-0.2 * radius)) + (math.e - tf.exp(cosines))


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def booth(x, y):
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def branin(x, y):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * tf.cos(x) + 10


def log_sum_exp(x, y):
    terms = tf.stack([x + 3 * y - 0.1, x - 3 * y - 0.1, -x - 0.1, tf.zeros_like(x)])
    return tf.reduce_logsumexp(terms, axis=0)


def matyas(x, y):
    return 0.26 * (x * x + y * y) - 0.48 * x * y


def michalewicz(x, y):
    # As in the original `problems/problem_generator.py`: 2 − [sin x·sin^10(x²/π) + sin y·sin^10(2y²/π)]; each
    # bracketed term is <= 1.
    return 2.0 - (tf.sin(x) * tf.sin(x * x / math.pi) ** 10 + tf.sin(y) * tf.sin(2 * y * y / math.pi) ** 10)


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def styblinski_tang(x, y):
    return 0.5 * ((x**4 - 16 * x**2 + 5 * x) + (y**4 - 16 * y**2 + 5 * y)) + 80.0


class FunctionSpec(NamedTuple):
    fn: Callable
    low: tuple[float, float]  # per-coordinate uniform init range; None means N(0, 1)
    high: tuple[float, float]
    minima: tuple[tuple[tuple[float, float], float], ...]  # known (argmin, min value) pairs


_STYBLINSKI_X = -2.903534027771178
FUNCTIONS: dict[str, FunctionSpec] = {
    "ackley": FunctionSpec(ackley, (-32.768,) * 2, (32.768,) * 2, (((0.0, 0.0), 0.0),)),
    "beale": FunctionSpec(beale, (-4.5,) * 2, (4.5,) * 2, (((3.0, 0.5), 0.0),)),
    "booth": FunctionSpec(booth, (-10.0,) * 2, (10.0,) * 2, (((1.0, 3.0), 0.0),)),
    "branin": FunctionSpec(
        branin, (-5.0, 0.0), (10.0, 15.0),
        (((-math.pi, 12.275), 0.397887), ((math.pi, 2.275), 0.397887), ((9.42478, 2.475), 0.397887)),
    ),
    "log_sum_exp": FunctionSpec(log_sum_exp, None, None, ()),
    "matyas": FunctionSpec(matyas, (-10.0,) * 2, (10.0,) * 2, (((0.0, 0.0), 0.0),)),
    "michalewicz": FunctionSpec(michalewicz, (0.0,) * 2, (math.pi,) * 2, ()),
    "rosenbrock": FunctionSpec(rosenbrock, (-5.0,) * 2, (10.0,) * 2, (((1.0, 1.0), 0.0),)),
    "styblinski_tang": FunctionSpec(
        styblinski_tang, (-5.0,) * 2, (5.0,) * 2, (((_STYBLINSKI_X, _STYBLINSKI_X), 80.0 - 78.33233140754282),)
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Function2D(Problem):
    """One of `FUNCTIONS` as a problem with a single parameter of shape (2,)."""

    function: str
    default_family = "test_function"

    def __post_init__(self):
        if self.function not in FUNCTIONS:
            raise ValueError(f"unknown 2-D function {self.function!r}; known: {sorted(FUNCTIONS)}")
        super().__post_init__()

    @property
    def spec(self) -> FunctionSpec:
        return FUNCTIONS[self.function]

    @property
    def name(self) -> str:
        return self.function

    @property
    def param_shapes(self):
        return ((2,),)

    def init_params(self, seed):
        spec = self.spec
        if spec.low is None:
            return super().init_params(seed)
        unit = stateless_uniform((2,), [seed, 0])
        return [tf.constant(spec.low) + unit * (tf.constant(spec.high) - tf.constant(spec.low))]

    def objective(self, params):
        xy = params[0]
        return self.spec.fn(xy[0], xy[1])
