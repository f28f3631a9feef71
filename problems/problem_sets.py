"""The meta-training distribution as data: families (name, weight, factory) and a seeded sampler.

The default set follows the problem groups of the original `metarun.py` and `problems/problem_sets.py` without
neural networks, as the paper states; its weights are the original spec counts, so sampling a family by weight
and then a spec uniformly matches the original "uniform over list entries" distribution. Differences from the
original, on purpose (docs/differences_from_original.md#problem-sets): softmax regressions include k > 2
classes, noise of wrapped/summed sub-problems is kept, and a small "slow_oscillating" family is added. The
opt-in "with_mlp" set adds the MLP groups; "original" is the 18 original groups (MLPs included, 2-class softmax
only, no slow/oscillating). "with_nn" is "with_mlp" plus MLPs whose fan-ins (100..400) are those of real
networks; the sets below add more (the shipped weights were meta-trained on "default", then "with_nn", then
"with_nn_data": lopt_tf/weights/TRAINING.md).

To extend, add a `Family(name, weight, factory)` where `factory(seed) -> Problem` (see `pick_spec`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import numpy as np

from problems.base import Problem, derive_seed
from problems.classification import DEFAULT_WEIGHT_DECAY, ConvClassifier, MLPClassifier, SoftmaxRegression
from problems.datasets import make_classification, random_image_data, random_mlp_data
from problems.functions2d import FUNCTIONS, Function2D
from problems.matmul import MatMulAlgorithm
from problems.quadratics import Bowl, Norm, Quadratic
from problems.transforms import LogObjective, Noisy, Oscillating, Reparam, Rescale, ScaleInit, Slow, Sparse, Sum
from problems.user_like import (
    FreshConvNet, FreshMLP, FreshRNN, ImageTeacherSource, ImageTemplateSource, SequenceTeacherSource,
    SequenceTemplateSource, VectorMixtureSource, VectorTeacherSource,
)

Factory = Callable[[int], Problem]


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    weight: float
    factory: Factory


def pick_spec(specs: tuple, build: Callable[..., Problem]) -> Factory:
    """A factory that picks one of `specs` uniformly from the seed and builds it with a derived data seed:
    `build(*spec, seed)`."""

    def factory(seed: int) -> Problem:
        rng = np.random.default_rng([int(seed), 17])
        spec = specs[int(rng.integers(len(specs)))]
        return build(*spec, int(rng.integers(2**31 - 1)))

    factory.specs, factory.build = specs, build  # for tools that go through every spec (problems.adam_reference)
    return factory


def _noisy(problem: Problem, stddev: float) -> Problem:
    return Noisy(problem, stddev) if stddev else problem


# --- spec tables (data) -----------------------------------------------------------------------------------------
QUADRATIC_NOISY = ((20, 0.5), (25, 0.0), (50, 1.0), (100, 2.0))  # (n, noise); 25/0 "kept for historical reasons"
QUADRATIC_LARGE = ((784,), (1024,), (2048,))
BOWLS = ((0.1, 0.0), (1.0, 0.0), (5.0, 0.0), (5.0, math.pi / 4))  # (condition, angle)
SOFTMAX_ORIGINAL = ((10, 2, 2.0, 100, 0.5), (100, 2, 1.0, 50, 0.1), (200, 2, 1.5, 20, 0.1), (256, 2, 1.5, 100, 0.5))
SOFTMAX_K_CLASS = ((10, 3, 2.0, 100, 0.5), (20, 5, 1.5, 50, 0.1), (50, 10, 1.0, 64, 0.1))
# (d, classes, class_sep, batch, noise used by the noisy group)
FUNCTION_NAMES = tuple(sorted(FUNCTIONS))
MATMUL = tuple((2, k) for k in range(5, 9)) + tuple((3, k) for k in range(19, 25))
LOG_OBJECTIVE = (("quadratic", 20), ("quadratic", 50), ("quadratic", 100), ("bowl", 0.1), ("bowl", 1.0), ("bowl", 5.0))
RESCALE = (
    ("norm", 18, 2.5, 0.123), ("norm", 18, 1.5, 8.0), ("norm", 18, 2.0, 50.0), ("norm", 18, 3.0, 200.0),
    ("norm", 18, 1.0, 1000.0),
    ("quadratic", 20, None, 0.1), ("quadratic", 25, None, 10.0), ("quadratic", 50, None, 350.0),
    ("quadratic", 100, None, 132.0),
)
NORM_CLEAN = ((27, 1.0), (25, 2.0), (22, 3.0))
NORM_NOISY = ((19, 1.0), (26, 2.0), (23, 3.0))  # noise 0.1
SUMS = (
    ("quadratic:11", "quadratic:3", "quadratic:9", "quadratic:7", "quadratic:5", "quadratic:13", "quadratic:12"),
    ("norm3:18", "quadratic:25", "f:rosenbrock"),
    tuple(f"f:{f}" for f in FUNCTION_NAMES),
    tuple(f"f:{f}" for f in FUNCTION_NAMES) + ("quadratic:5", "quadratic:13"),
    ("quadratic:11", "quadratic:3"),
    ("f:rosenbrock", "f:log_sum_exp", "f:ackley"),
)
SUMS_NOISY = ((SUMS[0], 0.1), (SUMS[3], 0.5))  # every sub-problem noisy with this stddev
SPARSE = LOG_OBJECTIVE  # quadratic 20/50/100, bowl 0.1/1/5 with zero probability 0.99
SLOW_OSCILLATING = (
    ("slow", "quadratic", 20, 1e-3), ("slow", "f:rosenbrock", None, 1e-2),
    ("oscillating", "quadratic", 20, 1.0), ("oscillating", "bowl", 5.0, 0.1),
)
MLP = (
    (8, (8, 5), 10), (12, (8, 5, 3), 200), (5, (4, 4, 4, 4), 100), (11, (4, 5, 6), 64), (9, (8,), 128),
    (7, (8, 5), 16), (8, (32, 64), 10), (12, (16, 8, 3), 200), (5, (8, 8, 8, 8), 100), (11, (10, 12, 12), 64),
    (9, (32,), 128), (7, (32, 64), 16),
)
SPARSE_MLP = MLP[:3]
# Neural-network-sized fan-ins (100..400, k up to 10, relu/sigmoid/tanh, batch 64) on random-teacher data: the
# step scale that suits a 1,000-input layer is far smaller than for the small problems above.
WIDE_MLP = (
    (100, (32,), 2, "relu"), (200, (32,), 10, "relu"), (400, (16,), 10, "relu"), (200, (32, 32), 10, "sigmoid"),
    (400, (32,), 2, "sigmoid"), (100, (64,), 10, "tanh"),
)
# The same kind of MLPs on 10,000 examples (gaussian or image-like inputs, see `random_mlp_data`): a batch-64
# gradient stays noisy for thousands of steps there, unlike on 1,000 examples that are memorised quickly, and
# weights meta-trained without these anneal their learning rates under that noise and stall, as on MNIST
# (lopt_tf/weights/TRAINING.md, hrnn_v4).
WIDE_MLP_LARGE_DATA = (
    (200, (32,), 10, "relu", "gaussian"), (400, (32,), 10, "relu", "image"), (784, (64,), 10, "relu", "image"),
    (400, (32,), 10, "sigmoid", "image"), (200, (32, 32), 10, "tanh", "gaussian"),
    (784, (32,), 10, "sigmoid", "image"),
)


# --- builders -----------------------------------------------------------------------------------------------------
def _simple(kind, size, seed) -> Problem:
    """'quadratic' n, 'bowl' condition, 'norm3' n, or 'f:<function>'."""
    if kind == "quadratic":
        return Quadratic.random(int(size), seed)
    if kind == "bowl":
        return Bowl(float(size))
    if kind == "norm3":
        return Norm.random(int(size), 3.0, seed)
    if kind.startswith("f:"):
        return Function2D(kind[2:])
    raise ValueError(f"unknown simple problem {kind!r}")


def _term(term: str, seed: int) -> Problem:
    kind, _, size = term.rpartition(":") if not term.startswith("f:") else (term, "", None)
    return _simple(kind, size, seed)


def build_sum(terms: tuple[str, ...], stddev: float, seed: int) -> Problem:
    return Sum(tuple(_noisy(_term(t, derive_seed(seed, i)), stddev) for i, t in enumerate(terms)))


def build_softmax(d, k, sep, batch, noise, seed, noisy=False) -> Problem:
    x, y = make_classification(1000, d, k, sep, seed)
    return _noisy(SoftmaxRegression(x, y, k, batch), noise if noisy else 0.0)


def build_mlp(d, hidden, batch, seed) -> Problem:
    x, y = random_mlp_data(d, 1000, seed)
    return MLPClassifier(x, y, 2, batch, hidden=hidden, activation="sigmoid")


def build_wide_mlp(d, hidden, k, activation, seed, inputs="gaussian", n_samples=1000,
                   weight_decay=DEFAULT_WEIGHT_DECAY) -> Problem:
    x, y = random_mlp_data(d, n_samples, seed, n_classes=k, inputs=inputs)
    return MLPClassifier(x, y, k, 64, hidden=hidden, activation=activation, weight_decay=weight_decay)


def build_wide_mlp_large_data(d, hidden, k, activation, inputs, seed, weight_decay=DEFAULT_WEIGHT_DECAY) -> Problem:
    return build_wide_mlp(d, hidden, k, activation, seed, inputs=inputs, n_samples=10000, weight_decay=weight_decay)


# ConvNets on 2,000 spatially correlated synthetic images (`random_image_data`), 10 classes, batch 64, no weight
# decay: (image size, conv layers as (channels, kernel, stride), activation, BatchNorm, init stddev or None for
# the fan-in rule). Shallow nets with small constant-init weights (as many published ConvNets), fan-in-initialised
# ones, and deeper BatchNorm nets like the residual networks users train.
CONV_SPECS = (
    (12, ((8, 3, 1), (8, 3, 1)), "relu", False, None),
    (12, ((8, 3, 2), (16, 3, 2)), "relu", False, None),
    (14, ((8, 5, 1), (8, 3, 1)), "relu", False, 0.01),
    (14, ((8, 3, 1), (8, 3, 2)), "sigmoid", False, 0.01),
    (12, ((16, 3, 1), (16, 3, 2)), "tanh", False, None),
    (12, ((8, 3, 1), (16, 3, 2), (16, 3, 1), (32, 3, 2)), "relu", True, None),
    (16, ((8, 3, 2), (8, 3, 1), (16, 3, 2), (16, 3, 1)), "relu", True, None),
)


def build_conv(size, conv, activation, batch_norm, init_stddev, seed) -> Problem:
    x, y = random_image_data(size, 2000, seed, n_classes=10)
    return ConvClassifier(x, y, 10, 64, conv=conv, activation=activation, batch_norm=batch_norm,
                          init_stddev=init_stddev, weight_decay=0.0)


def build_rescale(kind, n, power, scale, seed) -> Problem:
    inner = Norm.random(n, power, seed) if kind == "norm" else Quadratic.random(n, seed)
    return Rescale(inner, scale)


def build_slow_oscillating(kind, base, size, amount, seed) -> Problem:
    inner = _simple(base, size, seed)
    return Slow(inner, amount) if kind == "slow" else Oscillating(inner, amplitude=amount, wavelength=0.5)


def _families(softmax_specs, with_mlp: bool, extras: bool, wide_mlp: bool = False,
              large_data: bool = False, no_decay: bool = False) -> tuple[Family, ...]:
    families = [
        Family("quadratic", 4, pick_spec(QUADRATIC_NOISY, lambda n, s, seed: _noisy(Quadratic.random(n, seed), s))),
        Family("quadratic_large", 3, pick_spec(QUADRATIC_LARGE, lambda n, seed: Quadratic.random(n, seed))),
        Family("bowl", 4, pick_spec(BOWLS, lambda c, a, seed: Bowl(c, a))),
        Family("bowl_noisy", 4, pick_spec(BOWLS, lambda c, a, seed: Noisy(Bowl(c, a), 0.1))),
        Family("softmax_regression", 4, pick_spec(softmax_specs, build_softmax)),
        Family("softmax_regression_noisy", 4, pick_spec(softmax_specs, functools.partial(build_softmax, noisy=True))),
        Family("test_function", 9, pick_spec(tuple((f,) for f in FUNCTION_NAMES), lambda f, seed: Function2D(f))),
        Family("test_function_noisy", 9,
               pick_spec(tuple((f,) for f in FUNCTION_NAMES), lambda f, seed: Noisy(Function2D(f), 1.0))),
        Family("matmul", 10, pick_spec(MATMUL, lambda n, k, seed: MatMulAlgorithm(n, k))),
        Family("log_objective", 6, pick_spec(LOG_OBJECTIVE, lambda kind, size, seed: LogObjective(
            _simple(kind, size, seed)))),
        Family("rescale", 9, pick_spec(RESCALE, build_rescale)),
        Family("norm", 3, pick_spec(NORM_CLEAN, lambda n, p, seed: Norm.random(n, p, seed))),
        Family("norm_noisy", 3, pick_spec(NORM_NOISY, lambda n, p, seed: Noisy(Norm.random(n, p, seed), 0.1))),
        Family("sum", 6, pick_spec(tuple((t,) for t in SUMS), lambda terms, seed: build_sum(terms, 0.0, seed))),
        Family("sum_noisy", 2, pick_spec(SUMS_NOISY, build_sum)),
        Family("sparse", 6, pick_spec(SPARSE, lambda kind, size, seed: Sparse(_simple(kind, size, seed), 0.99))),
    ]
    if extras:
        families.append(Family("slow_oscillating", 4, pick_spec(SLOW_OSCILLATING, build_slow_oscillating)))
    if with_mlp:
        families += [
            Family("mlp", 12, pick_spec(MLP, build_mlp)),
            Family("sparse_mlp", 3, pick_spec(SPARSE_MLP, lambda *a: Sparse(build_mlp(*a), 0.99))),
        ]
    if wide_mlp:
        families.append(Family("wide_mlp", 12, pick_spec(WIDE_MLP, build_wide_mlp)))
    if large_data:
        families.append(Family("wide_mlp_large_data", 12, pick_spec(WIDE_MLP_LARGE_DATA, build_wide_mlp_large_data)))
    if no_decay:
        # Both wide families again without the 1e-3 weight decay: like Keras models, whose loss (and gradient) can
        # go to ~0. Weights meta-trained only with decay stall there, as on MNIST (lopt_tf/weights/TRAINING.md,
        # hrnn_v4).
        families += [
            Family("wide_mlp_no_decay", 12, pick_spec(WIDE_MLP, functools.partial(build_wide_mlp, weight_decay=0.0))),
            Family("wide_mlp_large_data_no_decay", 12, pick_spec(
                WIDE_MLP_LARGE_DATA, functools.partial(build_wide_mlp_large_data, weight_decay=0.0))),
        ]
    return tuple(families)


PROBLEM_SETS: dict[str, tuple[Family, ...]] = {
    "default": _families(SOFTMAX_ORIGINAL + SOFTMAX_K_CLASS, with_mlp=False, extras=True),
    "with_mlp": _families(SOFTMAX_ORIGINAL + SOFTMAX_K_CLASS, with_mlp=True, extras=True),
    "original": _families(SOFTMAX_ORIGINAL, with_mlp=True, extras=False),
    # The shipped weights' set: "with_mlp" plus MLPs with neural-network fan-ins (see WIDE_MLP).
    "with_nn": _families(SOFTMAX_ORIGINAL + SOFTMAX_K_CLASS, with_mlp=True, extras=True, wide_mlp=True),
    # "with_nn" plus the same MLPs on 10,000 examples (see WIDE_MLP_LARGE_DATA).
    "with_nn_data": _families(SOFTMAX_ORIGINAL + SOFTMAX_K_CLASS, with_mlp=True, extras=True, wide_mlp=True,
                              large_data=True),
    # "with_nn_data" plus both wide MLP families without weight decay.
    "with_nn_no_decay": _families(SOFTMAX_ORIGINAL + SOFTMAX_K_CLASS, with_mlp=True, extras=True, wide_mlp=True,
                                  large_data=True, no_decay=True),
}
# CPU-friendly subset for smoke tests: the default set without the 784..2048 quadratics.
PROBLEM_SETS["no_large"] = tuple(f for f in PROBLEM_SETS["default"] if f.name != "quadratic_large")
# Only ConvNets (no weight decay): the long-horizon validation set for ConvNets, beside "nn_no_decay".
CONV_FAMILY = Family("conv_no_decay", 1, pick_spec(CONV_SPECS, build_conv))  # weight set per problem set below
PROBLEM_SETS["conv_no_decay"] = (CONV_FAMILY,)
# Only the no-decay MLP families: a long-horizon validation set for weights meant for real networks.
PROBLEM_SETS["nn_no_decay"] = tuple(f for f in PROBLEM_SETS["with_nn_no_decay"] if f.name.endswith("_no_decay"))
# "with_nn_no_decay" plus the ConvNets (~19% of tasks). Why: weights meta-trained without ConvNets anneal their
# learning rates as MLPs want, and stall on ConvNets (the sigmoid ConvNet of "conv_no_decay" stays on its plateau
# where Adam leaves it; meta_runs/step_scale/NOTES.md).
PROBLEM_SETS["with_conv_no_decay"] = PROBLEM_SETS["with_nn_no_decay"] + (dataclasses.replace(CONV_FAMILY, weight=36),)
# Its long-horizon validation set: half no-decay MLPs, half ConvNets (by family weight).
PROBLEM_SETS["nn_conv_no_decay"] = PROBLEM_SETS["nn_no_decay"] + (dataclasses.replace(CONV_FAMILY, weight=24),)


# --- models like users' on freshly sampled data (problems/user_like.py) ----------------------------------------------
# Every minibatch is new (drawn from (seed, step)) and 2% of labels are random, so the gradient noise persists over
# any horizon and nothing is memorised; the objective is the loss on 1,024 held-out examples of the same process.
# Two kinds of data per model: class-conditional ("mixture" / "templates": the class first, then the input; Adam
# gets close to the noise floor within a few thousand steps) and teacher-labelled ("teacher": argmax of a random
# network on random inputs; sharp boundaries, so the loss keeps falling slowly over 10^4 steps). Neither MNIST nor
# the evaluation's problems are used. Meant for task horizons of 10^2..10^4 inner steps (USER_LIKE_HORIZONS: the
# PES flags --pes_min_horizon / --pes_max_horizon).
USER_LIKE_HORIZONS = (100, 10000)
LABEL_NOISE = 0.02
# Class separations, chosen so that Adam(1e-3) ends 2,000 steps at about 0.1x its initial loss (problems/README.md).
MIXTURE_SEPARATION, IMAGE_SEPARATION, SEQUENCE_SEPARATION = 1.5, 0.5, 2.0
# (data, input dim, classes, hidden widths, activation, batch)
USER_MLP = (
    ("mixture", 16, 4, (32,), "relu", 64), ("mixture", 32, 10, (64,), "relu", 64),
    ("mixture", 24, 5, (32, 32), "sigmoid", 32), ("mixture", 32, 10, (64, 64), "tanh", 128),
    ("teacher", 16, 4, (32,), "relu", 64), ("teacher", 32, 10, (64, 64), "relu", 64),
    ("teacher", 64, 10, (128, 64), "tanh", 128),
)
# (data, image size, channels, classes, conv layers (channels, kernel, stride), activation, batch)
USER_CONV = (
    ("templates", 8, 1, 4, ((8, 3, 1), (16, 3, 2)), "relu", 64),
    ("templates", 8, 3, 10, ((16, 3, 1), (16, 3, 2)), "relu", 64),
    ("templates", 16, 1, 10, ((8, 3, 2), (16, 3, 2)), "relu", 64),
    ("templates", 8, 3, 10, ((8, 3, 1), (16, 3, 2)), "tanh", 32),
    ("templates", 16, 3, 10, ((8, 3, 1), (16, 3, 2), (16, 3, 2)), "relu", 32),
    ("teacher", 8, 1, 4, ((8, 3, 1), (16, 3, 2)), "relu", 64),
    ("teacher", 16, 1, 10, ((8, 3, 2), (16, 3, 2)), "relu", 64),
)
# (data, sequence length, input dim, classes, hidden units, cell, batch)
USER_RNN = (
    ("templates", 8, 4, 4, 16, "rnn", 64), ("templates", 12, 8, 10, 32, "gru", 64),
    ("templates", 16, 4, 5, 32, "rnn", 32), ("templates", 8, 4, 5, 16, "gru", 64),
    ("teacher", 8, 4, 4, 16, "rnn", 64), ("teacher", 10, 8, 10, 32, "gru", 128),
)


def _data_kind(specs: tuple, kind: str) -> tuple:
    """The specs whose data is teacher-labelled ("teacher"), class-conditional ("class_conditional") or all."""
    return specs if kind == "all" else tuple(s for s in specs if (s[0] == "teacher") == (kind == "teacher"))


def build_user_mlp(data, d, k, hidden, activation, batch, seed, norm="none") -> Problem:
    source = (VectorTeacherSource(k, seed, LABEL_NOISE, dim=d) if data == "teacher" else
              VectorMixtureSource(k, seed, LABEL_NOISE, dim=d, separation=MIXTURE_SEPARATION))
    return FreshMLP(source, batch, hidden=hidden, activation=activation, norm=norm)


def build_user_conv(data, size, channels, k, conv, activation, batch, seed, norm="none") -> Problem:
    source = (ImageTeacherSource(k, seed, LABEL_NOISE, size=size, channels=channels) if data == "teacher" else
              ImageTemplateSource(k, seed, LABEL_NOISE, size=size, channels=channels, separation=IMAGE_SEPARATION))
    return FreshConvNet(source, batch, conv=conv, activation=activation, norm=norm)


def build_user_rnn(data, length, d, k, hidden, cell, batch, seed) -> Problem:
    source = (SequenceTeacherSource(k, seed, LABEL_NOISE, length=length, dim=d) if data == "teacher" else
              SequenceTemplateSource(k, seed, LABEL_NOISE, length=length, dim=d, separation=SEQUENCE_SEPARATION))
    return FreshRNN(source, batch, hidden=hidden, cell=cell)


# Weight-scale augmentation: independently with probability 1/2 each, the initial tensors are multiplied by
# log-uniform scales in INIT_SCALE_RANGE (ScaleInit) and the tensors are reparameterised by log-uniform scales in
# REPARAM_SCALE_RANGE (Reparam), one scale per tensor (learned_optimization's ReparamWeightsFamily at the tensor
# level samples 0.01..100; a narrower range here).
INIT_SCALE_RANGE = (0.3, 3.0)
REPARAM_SCALE_RANGE = (0.1, 10.0)


def weight_scale_augmented(factory: Factory, init_range=INIT_SCALE_RANGE, reparam_range=REPARAM_SCALE_RANGE,
                           probability: float = 0.5) -> Factory:
    """`factory` whose problems get `ScaleInit` and / or `Reparam` per-tensor scales, each with `probability`,
    drawn from the seed (the inner problem is built from the same seed, so the spec is unchanged)."""

    def log_uniform(rng, bounds, count):
        low, high = np.log(bounds[0]), np.log(bounds[1])
        return tuple(float(v) for v in np.exp(rng.uniform(low, high, count)))

    def augmented(seed: int) -> Problem:
        problem = factory(seed)
        rng = np.random.default_rng([int(seed), 29])
        count = len(problem.param_shapes)
        init_draw, init_scales = rng.uniform(), log_uniform(rng, init_range, count)
        reparam_draw, reparam_scales = rng.uniform(), log_uniform(rng, reparam_range, count)
        if init_draw < probability:
            problem = ScaleInit(problem, init_scales)
        if reparam_draw < probability:
            problem = Reparam(problem, reparam_scales)
        return problem

    return augmented


def _user_like_families(augment: bool, data: str = "all") -> tuple[Family, ...]:
    wrap = weight_scale_augmented if augment else (lambda factory: factory)
    pick = lambda specs, build: pick_spec(_data_kind(specs, data), build)  # noqa: E731
    mlp = lambda norm: pick(USER_MLP, functools.partial(build_user_mlp, norm=norm))  # noqa: E731
    conv = lambda norm: pick(USER_CONV, functools.partial(build_user_conv, norm=norm))  # noqa: E731
    return (
        Family("user_mlp", 3, wrap(mlp("none"))),
        Family("user_mlp_bn", 2, wrap(mlp("batch"))),
        Family("user_mlp_ln", 2, wrap(mlp("layer"))),
        Family("user_conv", 3, wrap(conv("none"))),
        Family("user_conv_bn", 2, wrap(conv("batch"))),
        Family("user_conv_ln", 2, wrap(conv("layer"))),
        Family("user_rnn", 3, wrap(pick(USER_RNN, build_user_rnn))),
    )


# Meta-training set: the seven families, both kinds of data, with weight-scale augmentation. Validation set: the
# same families on class-conditional data only, without augmentation (models at their default initialisation),
# where Adam(1e-3) ends 2,000 steps below 0.2x its initial loss (problems/README.md). The trainer's validation
# seeds (--validation_seed) are never training seeds, so its data and teachers are new. "user_like_teacher": the
# teacher-labelled specs without augmentation, a long-horizon check (Adam's loss still falls after 10^4 steps,
# so an optimizer that anneals its steps too early stalls visibly there).
PROBLEM_SETS["user_like"] = _user_like_families(augment=True)
PROBLEM_SETS["user_like_valid"] = _user_like_families(augment=False, data="class_conditional")
PROBLEM_SETS["user_like_teacher"] = _user_like_families(augment=False, data="teacher")
# The user-like families and the 2017 synthetic ones ("default": quadratics, test functions, softmax regressions,
# ...) at equal total weight: problems whose best step is decades away from Adam(1e-3)'s beside networks whose best
# step is near it, for a learned optimizer with a global step multiplier (HRNNConfig.global_lr). The evaluation's
# held-out synthetic problems come from "default" at seeds the trainer never draws (experiment 1).
_USER_LIKE_WEIGHT = sum(f.weight for f in PROBLEM_SETS["user_like"])
PROBLEM_SETS["user_like_default"] = PROBLEM_SETS["user_like"] + tuple(
    dataclasses.replace(f, weight=f.weight * _USER_LIKE_WEIGHT / sum(g.weight for g in PROBLEM_SETS["default"]))
    for f in PROBLEM_SETS["default"])

@dataclasses.dataclass(frozen=True)
class ProblemSampler:
    """Samples a family by weight, then a problem instance from it, all from one integer seed."""

    families: tuple[Family, ...]

    def __post_init__(self):
        names = [f.name for f in self.families]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate family names in {names}")
        if not self.families or any(f.weight <= 0 for f in self.families):
            raise ValueError("families must be non-empty with positive weights")

    @classmethod
    def named(cls, problem_set: str = "default") -> "ProblemSampler":
        if problem_set not in PROBLEM_SETS:
            raise ValueError(f"unknown problem set {problem_set!r}; known: {sorted(PROBLEM_SETS)}")
        return cls(PROBLEM_SETS[problem_set])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def probabilities(self) -> dict[str, float]:
        total = sum(f.weight for f in self.families)
        return {f.name: f.weight / total for f in self.families}

    def choose(self, seed: int) -> tuple[Family, int]:
        """The family for `seed` and the seed to pass to its factory (cheap: builds nothing)."""
        rng = np.random.default_rng([int(seed), 3])
        weights = np.array([f.weight for f in self.families], dtype=np.float64)
        index = int(rng.choice(len(self.families), p=weights / weights.sum()))
        return self.families[index], int(rng.integers(2**31 - 1))

    def build(self, family: str, seed: int) -> Problem:
        """An instance of the named family, labelled with that family."""
        entry = {f.name: f for f in self.families}[family]
        return dataclasses.replace(entry.factory(seed), family=entry.name)

    def sample(self, seed: int) -> Problem:
        family, sub_seed = self.choose(seed)
        return self.build(family.name, sub_seed)


def sample(seed: int, problem_set: str = "default") -> Problem:
    """One problem from `problem_set`, deterministic in `seed`."""
    return ProblemSampler.named(problem_set).sample(seed)


def families(problem_set: str = "default") -> tuple[str, ...]:
    return ProblemSampler.named(problem_set).names
# Small noisy quadratics only (n = 20..100): the meta-trainer's CI smoke test trains and validates on these.
PROBLEM_SETS["quadratic"] = tuple(f for f in PROBLEM_SETS["default"] if f.name == "quadratic")
