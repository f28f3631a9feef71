"""Architecture and feature switches of the hierarchical RNN optimizer, as one frozen dataclass.

Every feature of Wichrowska et al. (2017) is a field, so each ablation of the paper is one changed field
(`dataclasses.replace(HRNNConfig(), use_attention=True)`). The defaults follow the configuration of the original
implementation's `metarun.py` (`tensorflow/models`, `research/learned_optimizer/`), which its README says
matches the paper, not the `HierarchicalRNN` class defaults there
(docs/differences_from_original.md#defaults-follow-metarun).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any

import numpy as np


def _checked(name: str, kind: str, value):
    """`value` as the field's declared type (`bool`, `int`, `float`, `str`, `tuple[...]`); TypeError otherwise.

    Strict on purpose: `use_attention="no"` would be truthy and `num_gradient_scales=2.5` would fail far from
    here, so neither is converted. Ints are accepted for floats, numpy scalars for their Python types, and
    lists (from JSON) for tuples.
    """
    def fail(expected):
        raise TypeError(f"HRNNConfig.{name} must be {expected}, got {value!r} ({type(value).__name__}).")

    def number(v, integral):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral if integral else numbers.Real)):
            fail("a tuple of " + ("ints" if integral else "numbers") if kind.startswith("tuple")
                 else ("an int" if integral else "a number"))
        return int(v) if integral else float(v)

    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            fail("True or False")
        return bool(value)
    if kind in ("int", "float"):
        return number(value, kind == "int")
    if kind == "str":
        if not isinstance(value, str):
            fail("a string")
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, (tuple, list)):
            fail("a tuple")
        return tuple(number(v, "int" in kind) for v in value)
    raise AssertionError(f"HRNNConfig.{name}: unhandled field type {kind}")


@dataclasses.dataclass(frozen=True)
class HRNNConfig:
    """Static description of one hierarchical-RNN optimizer.

    Sizes and switches:
      level_sizes: hidden sizes of the per-parameter, per-tensor and global GRUs. Length 1 (coordinatewise
        only), 2 (no global level) or 3 (full hierarchy). The original code used (10, 20, 20); the paper
        states 30 for the tensor RNN.
      num_gradient_scales: momenta at this many timescales; decays chained by square roots (doubling time
        constants). 1 is the "no multiple timescales" ablation.
      dynamic_input_scaling: normalise each momentum by its running RMS and squash with asinh.
      use_grad_products: products of neighbouring scaled momenta as features.
      use_log_means_squared: log mean-squares relative to their mean over timescales as features.
      use_relative_lr: the log learning rate minus its mean as a feature.
      use_problem_lr_mean: that mean is over the whole problem (True) or over the tensor (False).
      use_extreme_indicator, use_lr_shortcut: extra log-LR features (off in the original defaults).
      use_gradient_shortcut: linear map from the scaled momenta straight to the direction.
      dynamic_output_scale: unit-RMS direction per tensor and a learned per-parameter log learning rate.
      use_attention: the look-ahead ("attention") variant; the gradient is taken at a look-ahead point and the
        true parameters are kept in the state.
      learnable_decay: the RNN emits the input and scale decays; otherwise constants 0.89 and 0.93.
      use_multiple_scale_decays: chain the mean-square decay by square roots too.
      global_input: "mean" (mean of all tensor states, the documented intent) or "last_tensor" (the original
        code's bug, kept for reproduction; docs/differences_from_original.md#global-rnn-input).
      init_lr_range: range of the initially sampled per-parameter learning rates; may differ from the config
        stored with weights (docs/differences_from_original.md#initial-learning-rates).
      max_log_lr: clip of the log learning rate (straight-through gradient).
      hold_without_gradient: a parameter whose momenta are all exactly zero (no non-zero gradient has
        arrived yet, e.g. an embedding row never looked up) is not moved, as with Adam, whose update is then
        zero. The original moves it by the readout of its GRU state, which is non-zero without any gradient;
        False reproduces that. A runtime switch: weights made under either setting run under both.

    Initialisation constants (used by `init_meta`) are fields too, so nothing is hidden in code.
    """

    level_sizes: tuple[int, ...] = (10, 20, 20)
    num_gradient_scales: int = 4
    dynamic_input_scaling: bool = True
    use_grad_products: bool = True
    use_log_means_squared: bool = True
    use_relative_lr: bool = True
    use_problem_lr_mean: bool = True
    use_extreme_indicator: bool = False
    use_lr_shortcut: bool = False
    use_gradient_shortcut: bool = True
    dynamic_output_scale: bool = True
    use_attention: bool = False
    learnable_decay: bool = True
    use_multiple_scale_decays: bool = False
    global_input: str = "mean"
    init_lr_range: tuple[float, float] = (1e-6, 1e-2)
    max_log_lr: float = 33.0
    hold_without_gradient: bool = True
    # Initialisation constants (original flag names in brackets).
    gru_scale: float = 0.5  # biasgrucell_scale
    gru_gate_bias_init: float = 2.2  # biasgrucell_gate_bias_init
    affine_scale: float = 0.5  # hrnn_affine_scale
    readout_scale: float = 0.5  # hrnn_rnn_readout_scale
    inp_decay_bias_init: float = 2.2  # hrnn_default_decay_var_init
    scl_decay_bias_init: float = 3.2  # scale_decay_bias_init
    lr_momentum_logit_init: float = 3.2  # learning_rate_momentum_logit_init
    stepsize_offset_init: float = -1.0  # param_stepsize_offset
    shortcut_init_mean: float = 0.25
    shortcut_init_std: float = 0.05

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _checked(field.name, field.type, getattr(self, field.name)))
        if not 1 <= len(self.level_sizes) <= 3 or min(self.level_sizes) < 1:
            raise ValueError(f"level_sizes must hold 1 to 3 positive sizes, got {self.level_sizes}.")
        if self.num_gradient_scales < 1:
            raise ValueError(f"num_gradient_scales must be >= 1, got {self.num_gradient_scales}.")
        if self.global_input not in ("mean", "last_tensor"):
            raise ValueError(f"global_input must be 'mean' or 'last_tensor', got {self.global_input!r}.")
        lo, hi = self.init_lr_range
        if not 0 < lo <= hi:
            raise ValueError(f"init_lr_range must satisfy 0 < min <= max, got {self.init_lr_range}.")
        needs_lr = [n for n in ("use_relative_lr", "use_extreme_indicator", "use_lr_shortcut") if getattr(self, n)]
        if needs_lr and not self.dynamic_output_scale:
            raise ValueError(f"{needs_lr} need a stored log learning rate: set dynamic_output_scale=True.")

    @property
    def num_features(self) -> int:
        """Width of the per-parameter input vector (12 with the defaults)."""
        k = self.num_gradient_scales
        return (
            k
            + (k - 1 if self.use_grad_products else 0)
            + (k if self.use_log_means_squared else 0)
            + int(self.use_relative_lr)
            + int(self.use_extreme_indicator)
            + int(self.use_lr_shortcut)
        )

    @property
    def per_parameter_state_size(self) -> int:
        """Floats of optimizer state per scalar parameter (21 with the defaults, 22 with attention).

        GRU state (level_sizes[0]) + accumulators (K) + mean squares (K) + scale decay + input decay
        + log learning rate (if dynamic_output_scale) + true parameter (if use_attention).
        """
        return (
            self.level_sizes[0]
            + 2 * self.num_gradient_scales
            + 2
            + int(self.dynamic_output_scale)
            + int(self.use_attention)
        )

    @property
    def log_lr_bounds(self) -> tuple[float, float]:
        return math.log(self.init_lr_range[0]), math.log(self.init_lr_range[1])

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HRNNConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown HRNNConfig fields {unknown}; known fields: {sorted(known)}.")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "HRNNConfig":
        return cls.from_dict(json.loads(s))
