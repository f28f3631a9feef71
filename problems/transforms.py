"""Transformations applicable to any problem: gradient noise, sparse gradients, log objective, parameter
rescaling, sums of problems, and slow / oscillating variants.

Every wrapper composes through `gradient_from_key`, so the inner problem's own mini-batching, noise and masks are
kept. (The original `SumTask`, `Rescale`, `LogObjective` and `SparseProblem` in `problems/problem_generator.py`
dropped the inner problem's gradient noise, which made its "noisy" sums noise-free. Here it is propagated:
docs/differences_from_original.md#noise-of-wrapped-problems.)
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from problems.base import Problem, derive_seed, split_key, stateless_normal, stateless_uniform, value_and_grad

_NOISE_SALT = 201
_MASK_SALT = 202
_SUM_SALT = 1000


@dataclasses.dataclass(frozen=True, eq=False)
class _Wrapper(Problem):
    """A problem defined in terms of `inner`; metadata and initialisation default to the inner problem's."""

    inner: Problem

    def _inherited_family(self) -> str:
        return self.inner.family

    @property
    def param_shapes(self):
        return self.inner.param_shapes

    def init_params(self, seed):
        return self.inner.init_params(seed)

    def objective(self, params):
        return self.inner.objective(params)

    def gradient_from_key(self, params, step, key):
        return self.inner.gradient_from_key(params, step, key)


@dataclasses.dataclass(frozen=True, eq=False)
class Noisy(_Wrapper):
    """Adds stddev · N(0, 1) to every gradient element, fresh at every step. The objective stays noise-free."""

    stddev: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.inner.name}_noise{self.stddev:g}"

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(params, step, key)
        noise_key = split_key(key, _NOISE_SALT)
        noisy = [
            g + self.stddev * stateless_normal(tf.shape(g), split_key(noise_key, i))
            for i, g in enumerate(grads)
        ]
        return loss, noisy


@dataclasses.dataclass(frozen=True, eq=False)
class Sparse(_Wrapper):
    """Zeroes each gradient element independently with probability `zero_probability`, every step."""

    zero_probability: float = 0.99

    @property
    def name(self) -> str:
        return f"{self.inner.name}_sparse{self.zero_probability:g}"

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(params, step, key)
        mask_key = split_key(key, _MASK_SALT)
        masked = []
        for i, g in enumerate(grads):
            keep = stateless_uniform(tf.shape(g), split_key(mask_key, i))
            masked.append(tf.where(keep >= self.zero_probability, g, tf.zeros_like(g)))
        return loss, masked


@dataclasses.dataclass(frozen=True, eq=False)
class LogObjective(_Wrapper):
    """f' = log(f + ε) − log(ε) >= 0. The gradient is the inner (possibly noisy) gradient divided by (loss + ε)."""

    epsilon: float = 1e-6

    @property
    def name(self) -> str:
        return f"log_{self.inner.name}"

    def _log(self, value):
        eps = tf.constant(self.epsilon, tf.float32)
        return tf.math.log(value + eps) - tf.math.log(eps)

    def objective(self, params):
        return self._log(self.inner.objective(params))

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(params, step, key)
        return self._log(loss), [g / (loss + self.epsilon) for g in grads]


@dataclasses.dataclass(frozen=True, eq=False)
class Rescale(_Wrapper):
    """Parameters live at `scale` × the inner problem's: initialised at scale·init, evaluated at θ / scale."""

    scale: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.inner.name}_rescale{self.scale:g}"

    def init_params(self, seed):
        return [self.scale * p for p in self.inner.init_params(seed)]

    def _unscale(self, params):
        return [p / self.scale for p in params]

    def objective(self, params):
        return self.inner.objective(self._unscale(params))

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(self._unscale(params), step, key)
        return loss, [g / self.scale for g in grads]


@dataclasses.dataclass(frozen=True, eq=False)
class Slow(_Wrapper):
    """Objective multiplied by a small `factor`: same minimiser, gradients `factor` times smaller, so progress is
    slow unless the optimizer adapts its step size (new in this port; not in the original set)."""

    factor: float = 1e-3

    @property
    def name(self) -> str:
        return f"{self.inner.name}_slow{self.factor:g}"

    def objective(self, params):
        return self.factor * self.inner.objective(params)

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(params, step, key)
        return self.factor * loss, [self.factor * g for g in grads]


@dataclasses.dataclass(frozen=True, eq=False)
class Oscillating(_Wrapper):
    """Adds a non-negative ripple amplitude · mean(1 − cos(2π θ / wavelength)) to the objective: an oscillating,
    many-local-minima landscape on top of the inner problem (new in this port; not in the original set)."""

    amplitude: float = 1.0
    wavelength: float = 0.5

    @property
    def name(self) -> str:
        return f"{self.inner.name}_ripple{self.amplitude:g}_{self.wavelength:g}"

    def _ripple(self, params):
        total = tf.add_n([tf.reduce_sum(1.0 - tf.cos((2 * math.pi / self.wavelength) * p)) for p in params])
        return self.amplitude * total / float(self.num_params)

    def objective(self, params):
        return self.inner.objective(params) + self._ripple(params)

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(params, step, key)
        ripple, ripple_grads = value_and_grad(self._ripple, params)
        return loss + ripple, [g + r for g, r in zip(grads, ripple_grads)]


@dataclasses.dataclass(frozen=True, eq=False)
class Sum(Problem):
    """Sum of independent problems; the parameter list is the concatenation of the sub-problems' lists.

    Each sub-problem gets its own initialisation seed and its own RNG key, so its mini-batches and noise are kept.
    """

    problems: tuple[Problem, ...]

    def __post_init__(self):
        object.__setattr__(self, "problems", tuple(self.problems))
        if not self.problems:
            raise ValueError("Sum needs at least one problem")
        super().__post_init__()

    def _inherited_family(self) -> str:
        return "sum"

    @property
    def name(self) -> str:
        return "sum(" + "+".join(p.name for p in self.problems) + ")"

    @property
    def param_shapes(self):
        return tuple(s for p in self.problems for s in p.param_shapes)

    def _split(self, params):
        params, parts = list(params), []
        for p in self.problems:
            count = len(p.param_shapes)
            parts.append(params[:count])
            params = params[count:]
        return parts

    def init_params(self, seed):
        return [t for i, p in enumerate(self.problems) for t in p.init_params(derive_seed(seed, i))]

    def objective(self, params):
        return tf.add_n([p.objective(part) for p, part in zip(self.problems, self._split(params))])

    def gradient_from_key(self, params, step, key):
        losses, grads = [], []
        for i, (p, part) in enumerate(zip(self.problems, self._split(params))):
            loss, g = p.gradient_from_key(part, step, split_key(key, _SUM_SALT + i))
            losses.append(loss)
            grads += list(g)
        return tf.add_n(losses), grads


def _scales_tag(scales) -> str:
    return ",".join(f"{s:.2g}" for s in scales)


@dataclasses.dataclass(frozen=True, eq=False)
class ScaleInit(_Wrapper):
    """Initial parameters multiplied tensor by tensor by `scales` (one per parameter tensor); the objective and
    the gradients are the inner problem's. Models the initialisations users pick (too small, too large): the
    optimizer must cope with a starting point off the usual fan-in scale."""

    scales: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if len(self.scales) != len(self.inner.param_shapes):
            raise ValueError(f"need one scale per parameter tensor ({len(self.inner.param_shapes)})")
        super().__post_init__()

    @property
    def name(self) -> str:
        return f"{self.inner.name}_init{_scales_tag(self.scales)}"

    def init_params(self, seed):
        return [s * p for s, p in zip(self.scales, self.inner.init_params(seed))]


@dataclasses.dataclass(frozen=True, eq=False)
class Reparam(_Wrapper):
    """`Rescale` tensor by tensor: parameter k lives at `scales[k]` × the inner problem's (initialised at
    scales[k]·init, evaluated at θ_k / scales[k], gradient divided by scales[k]). The same function of different
    coordinates: per tensor, SGD's effective step changes by 1 / scales[k]², Adam's by 1 / scales[k]
    (learned_optimization's tensor-level `ReparamWeights`, with scale 1 / scales[k])."""

    scales: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if len(self.scales) != len(self.inner.param_shapes) or min(self.scales, default=1.0) <= 0:
            raise ValueError(f"need one positive scale per parameter tensor ({len(self.inner.param_shapes)})")
        super().__post_init__()

    @property
    def name(self) -> str:
        return f"{self.inner.name}_reparam{_scales_tag(self.scales)}"

    def init_params(self, seed):
        return [s * p for s, p in zip(self.scales, self.inner.init_params(seed))]

    def _unscale(self, params):
        return [p / s for s, p in zip(self.scales, params)]

    def objective(self, params):
        return self.inner.objective(self._unscale(params))

    def gradient_from_key(self, params, step, key):
        loss, grads = self.inner.gradient_from_key(self._unscale(params), step, key)
        return loss, [g / s for s, g in zip(self.scales, grads)]
