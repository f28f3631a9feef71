"""The problem interface shared by every meta-training and evaluation problem.

A problem is an immutable object that a meta-trainer can use inside a `tf.function` unroll:

* `init_params(seed)`: explicit-seed initial parameters (a list of float32 tensors);
* `objective(params)`: the full-batch, noise-free, non-negative loss, used by the meta-objective. Pure TF and
  twice differentiable, so the meta-trainer can differentiate through the gradient;
* `gradient(params, step, seed)`: the (loss, gradients) pair the optimizer sees at inner step `step` (an int32
  tensor, typically a loop variable). Mini-batches, gradient noise and sparsity masks are drawn with stateless
  philox RNG keyed on (seed, step), so the same call always gives the same answer and compiles with XLA.

Problem data (matrices, datasets) is generated from an explicit seed with `np.random.default_rng` when the problem
is built and stored as constants. Nothing here touches global random state.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Callable, ClassVar, Sequence

import numpy as np
import tensorflow as tf

Params = Sequence[tf.Tensor]

_SEED_MODULUS = 2**31 - 1


def derive_seed(seed: int, *salts: int) -> int:
    """A new non-negative int32 seed from `seed` and integer salts (numpy SeedSequence, no global state)."""
    entropy = [int(seed) % 2**63, *(int(s) % 2**63 for s in salts)]
    return int(np.random.default_rng(entropy).integers(_SEED_MODULUS))


def make_key(seed, step) -> tf.Tensor:
    """The stateless RNG key, an int32 tensor of shape [2], for problem `seed` at inner step `step`."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64) % _SEED_MODULUS
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])


def split_key(key: tf.Tensor, salt: int) -> tf.Tensor:
    """An independent key for one purpose (noise, mask, mini-batch, sub-problem `salt`)."""
    return tf.random.experimental.stateless_fold_in(key, salt, alg="philox")


# Float stateless random ops give different numbers under XLA than in TF's own kernels, while the raw philox
# integer bits agree. Uniform and normal numbers are therefore derived from the bits here, so that noise, masks
# and initial values are the same eagerly, in a graph and under XLA (up to float rounding in Box-Muller).
_MANTISSA = 2**24


def _random_bits(shape, key) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.int32, alg="philox")


def stateless_uniform(shape, key) -> tf.Tensor:
    """float32 uniform in [0, 1), identical with and without XLA."""
    bits = tf.bitwise.bitwise_and(_random_bits(shape, key), _MANTISSA - 1)
    return tf.cast(bits, tf.float32) / float(_MANTISSA)


def stateless_normal(shape, key) -> tf.Tensor:
    """float32 N(0, 1) by Box-Muller from philox bits; the same with and without XLA."""
    shape = tf.convert_to_tensor(shape, tf.int32)
    bits = tf.bitwise.bitwise_and(_random_bits(tf.concat([[2], shape], 0), key), _MANTISSA - 1)
    u1 = (tf.cast(bits[0], tf.float32) + 1.0) / float(_MANTISSA)  # (0, 1]
    u2 = tf.cast(bits[1], tf.float32) / float(_MANTISSA)
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * math.pi) * u2)


def value_and_grad(loss_fn: Callable[[list], tf.Tensor], params: Params) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Loss and gradient of `loss_fn` at `params`; recorded on any outer tape, so second derivatives exist."""
    params = [tf.convert_to_tensor(p) for p in params]
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = loss_fn(params)
    grads = tape.gradient(loss, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return loss, grads


@dataclasses.dataclass(frozen=True, eq=False)
class Problem(abc.ABC):
    """Base class: subclasses are frozen dataclasses that define `param_shapes`, `init_params` and `objective`.

    `family` is a keyword-only field; when left empty it takes the class's `default_family` (wrappers take their
    inner problem's family). The sampler sets it to the name of the family that produced the problem.
    """

    family: str = dataclasses.field(default="", kw_only=True)
    default_family: ClassVar[str] = ""

    def __post_init__(self):
        if not self.family:
            object.__setattr__(self, "family", self._inherited_family())

    def _inherited_family(self) -> str:
        return self.default_family

    # --- metadata -------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A short name describing the spec (sizes, noise, ...)."""

    @property
    @abc.abstractmethod
    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the parameter tensors, in the order of `init_params`."""

    @property
    def num_params(self) -> int:
        return int(sum(math.prod(s) for s in self.param_shapes))

    # --- maths ----------------------------------------------------------------------------------------------
    def init_params(self, seed: int) -> list[tf.Tensor]:
        """Initial parameters; default N(0, 1) for every tensor (stateless, seeded by (seed, tensor index))."""
        return [stateless_normal(shape, [seed, k]) for k, shape in enumerate(self.param_shapes)]

    @abc.abstractmethod
    def objective(self, params: Params) -> tf.Tensor:
        """Full-batch, noise-free, non-negative scalar loss."""

    def stochastic_loss(self, params: Params, key: tf.Tensor) -> tf.Tensor:
        """The loss whose gradient the optimizer sees (a mini-batch for dataset problems). Default: `objective`."""
        del key
        return self.objective(params)

    def gradient_from_key(self, params: Params, step: tf.Tensor, key: tf.Tensor):
        """`gradient` with an explicit RNG key; wrappers override this to compose noise, masks and sums."""
        del step
        return value_and_grad(lambda p: self.stochastic_loss(p, key), params)

    def gradient(self, params: Params, step, seed) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """(loss, gradients) that the optimizer sees at inner step `step`; deterministic in (seed, step)."""
        step = tf.convert_to_tensor(step, tf.int32)
        return self.gradient_from_key(list(params), step, make_key(seed, step))



def validate(problem: Problem, seed: int = 0, params: Params | None = None) -> float:
    """Evaluate the objective at `params` (default: `init_params(seed)`) and raise if negative or non-finite.

    The log meta-objective needs non-negative objectives; the original implementation raised in the same case.
    """
    params = problem.init_params(seed) if params is None else params
    value = float(problem.objective(params))
    if not math.isfinite(value):
        raise ValueError(f"{problem.name}: objective is not finite ({value})")
    if value < 0:
        raise ValueError(f"{problem.name}: objective is negative ({value}); the log meta-objective needs f >= 0")
    return value
