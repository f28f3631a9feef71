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

    Stability options. Their defaults are the 2017 behaviour, so weights stored without these fields load
    unchanged; `HRNNConfig.preset("stable")` turns them on (docs/stable_design.md):
      lr_dynamics: how the per-parameter log learning rate l moves.
        "integrate" (2017): l_new = l + (1 - sigmoid(lr_momentum_logit)) * D, D the LR readout of the level-0
          state; the step uses clip(l + D, +-max_log_lr). A pure integrator: a constant bias of D is a linear
          drift of l (the original `optimizer/hierarchical_rnn.py`).
        "leaky": the same update on z = lr_band * atanh((l - a) / lr_band), the deviation from the anchor a,
          plus a leak towards it: z_new = (1 - lr_leak) * z + (1 - sigmoid(lr_momentum_logit)) * D, and
          l = a + lr_band * tanh(z / lr_band) (soft clamp); the step uses a + lr_band * tanh((z + D) / lr_band).
          l never leaves (a - lr_band, a + lr_band); a constant D gives a bounded offset, not a drift.
        "readout": no integration: l = a + lr_band * tanh(D / lr_band), a bounded readout of the GRU state,
          which carries the memory (VeLO, `google/learned_optimization` `research/general_lopt/hyper_v2.py`,
          and Celo, `amoudgl/celo` `celo/optimizers/celo.py`: the step multiplier is a readout recomputed
          every step, not integrated). No `lr_momentum_logit` meta-parameter.
      lr_anchor: the anchor learning rate: a = log(lr_anchor) + a learned offset (meta-parameter
        `lr/anchor_offset`, [tensors of rank < 2, rank >= 2], initialised to 0), present whenever the anchor
        is used (lr_dynamics "leaky" or "readout", or init_lr "fixed").
      lr_band: half-width, in nats, of the band around the anchor ("leaky", "readout").
      lr_leak: fraction of the deviation from the anchor removed per step ("leaky").
      init_lr: "random" (2017: per-element plus per-tensor uniform draws over `init_lr_range`) or "fixed":
        every parameter starts at the anchor a (`init_lr_range` is then unused). A fixed initial step, as the
        later learned optimizers use (Metz et al. 2020 `learned_optimizers/adafac_mlp_lopt.py`, VeLO, Celo:
        a constant reference step 1e-3 times a learned factor).
      nominal_term: a fixed, Adam-like step added to the learned one (the nominal term of Harrison, Metz and
        Sohl-Dickstein 2022, "A Closer Look at Learned Optimization", `learned_optimizers/adafac_nominal.py`
        `MLPNomLOpt`): step += nominal_lr * exp(s) * n, s a learned scalar (`nominal/log_scale`, init 0).
        "none" (2017); "adam": n = a_1 / (sqrt(v) + 1e-7), a_1 the HRNN's shortest-timescale momentum and v
          a bias-corrected EMA of g^2 with decay `nominal_beta2` (as Keras Adam; one more float of state per
          parameter, `nominal_ms`, and a step count per tensor, `nominal_count`), so that with the learned step
          at zero the optimizer is Adam(nominal_lr) up to the learned momentum decay (about 0.9 at init);
        "scaled_momentum": n = a_1 / sqrt(ms_1), the HRNN's own RMS-scaled shortest momentum (no extra state;
          under pure gradient noise its steps are about 4x Adam's, as ms_1 tracks the momentum's variance,
          not the gradient's).
      nominal_lr, nominal_beta2: the nominal step size and second-moment decay.
      momentum_bias_correction: the momenta are bias-corrected EMAs, as Adam's m-hat:
        a_k <- a_k + (1 - gamma_k) / (1 - gamma_k^t) * (g - a_k), t the tensor's step count (`nominal_count`;
        needs nominal_term "adam"). False (2017): a_k <- gamma_k * a_k + (1 - gamma_k) * g from a zero decay on the
        first step, so the first gradient keeps the weight gamma^(t-1) in every later momentum (0.39 after 10
        steps at gamma = 0.9, Adam's bias-corrected m gives it 0.06): the first steps all move along the first
        gradient, which blows a very deep network up once the nominal step exceeds Adam(1e-3)'s.
      global_lr: a multiplier of the whole step read out of the global GRU. "none" (2017); "readout": the update
        (learned and nominal parts, and the attention look-ahead) is multiplied by exp(G), G = global_lr_band *
        tanh(r), r = w . h2 + b a linear readout of this step's global GRU state (meta-parameters
        `readout/global_lr_kernel`, `readout/global_lr_bias`, initialised to 0, so G = 0 and the optimizer is the
        one without it until meta-training moves them; r is in units of the band, so that a meta-optimizer step
        of a given size moves G by the band times that). One bounded log step for the whole problem at each
        step: it can follow a problem whose best step is decades from the nominal Adam(1e-3) one, which the
        per-parameter band (`lr_band`) around a fixed anchor cannot, and it cannot drift (VeLO's per-tensor step
        multiplier read from its tensor-level network, `google/learned_optimization`
        `research/general_lopt/hyper_v2.py`, moved up to the global level). Needs the full hierarchy.
      global_lr_band: half-width, in nats, of G (4.6: two decades each way).
      learned_scale: the RMS of the learned direction over each tensor. "unit" (2017: dynamic output scaling,
        the direction has unit RMS, so its step does not shrink as the gradients vanish); "nominal_rms": the
        RMS of the nominal term's direction over the same tensor, so the learned step shrinks with Adam's as the
        momentum falls below the gradient noise (the learned output normalised by the second moment, as
        `normalize_blackbox` in learned_optimization's `adafac_nominal.py`). Needs a nominal term.
      The learned part is kept small at initialisation through `stepsize_offset_init` (its step is
      exp(l + stepsize_offset) * direction), as the later learned optimizers scale their learned output by
      exp(0.001 * m) * 0.001.

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
    # Stability options (2017 behaviour by default; see PRESETS).
    lr_dynamics: str = "integrate"
    lr_anchor: float = 1e-3
    lr_band: float = 2.3
    lr_leak: float = 1e-3
    init_lr: str = "random"
    nominal_term: str = "none"
    nominal_lr: float = 1e-3
    nominal_beta2: float = 0.999
    momentum_bias_correction: bool = False
    learned_scale: str = "unit"
    global_lr: str = "none"
    global_lr_band: float = 4.6
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
        for name, allowed in (("lr_dynamics", LR_DYNAMICS), ("init_lr", INIT_LR), ("nominal_term", NOMINAL_TERMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if not (self.lr_anchor > 0 and self.lr_band > 0 and 0 <= self.lr_leak < 1 and self.nominal_lr >= 0
                and 0 < self.nominal_beta2 < 1):
            raise ValueError("need lr_anchor > 0, lr_band > 0, 0 <= lr_leak < 1, nominal_lr >= 0 and "
                             f"0 < nominal_beta2 < 1; got {self.lr_anchor}, {self.lr_band}, {self.lr_leak}, "
                             f"{self.nominal_lr}, {self.nominal_beta2}.")
        if self.learned_scale not in ("unit", "nominal_rms"):
            raise ValueError(f"learned_scale must be 'unit' or 'nominal_rms', got {self.learned_scale!r}.")
        if self.learned_scale == "nominal_rms" and (self.nominal_term == "none" or not self.dynamic_output_scale):
            raise ValueError("learned_scale='nominal_rms' needs a nominal_term and dynamic_output_scale=True.")
        if self.momentum_bias_correction and self.nominal_term != "adam":
            raise ValueError("momentum_bias_correction=True counts steps with the nominal term's counter: it needs "
                             f"nominal_term='adam', got {self.nominal_term!r}.")
        if self.global_lr not in GLOBAL_LR:
            raise ValueError(f"global_lr must be one of {GLOBAL_LR}, got {self.global_lr!r}.")
        if self.global_lr != "none" and (len(self.level_sizes) != 3 or not self.global_lr_band > 0):
            raise ValueError("global_lr='readout' reads the global GRU: it needs three level_sizes and "
                             f"global_lr_band > 0; got {self.level_sizes} and {self.global_lr_band}.")
        if self.uses_anchor and not self.dynamic_output_scale:
            raise ValueError("lr_dynamics other than 'integrate' and init_lr='fixed' need a stored log learning "
                             "rate: set dynamic_output_scale=True.")
        needs_lr = [n for n in ("use_relative_lr", "use_extreme_indicator", "use_lr_shortcut") if getattr(self, n)]
        if needs_lr and not self.dynamic_output_scale:
            raise ValueError(f"{needs_lr} need a stored log learning rate: set dynamic_output_scale=True.")

    @classmethod
    def preset(cls, name: str, **overrides) -> "HRNNConfig":
        """A named configuration (`PRESETS`): "2017" (the defaults) or "stable"; `overrides` replace fields."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; presets: {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def uses_anchor(self) -> bool:
        """Whether the anchor learning rate (and its learned offset `lr/anchor_offset`) is used."""
        return self.lr_dynamics != "integrate" or self.init_lr == "fixed"

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
        + log learning rate (if dynamic_output_scale) + true parameter (if use_attention) + the nominal
        term's second moment (if nominal_term == "adam").
        """
        return (
            self.level_sizes[0]
            + 2 * self.num_gradient_scales
            + 2
            + int(self.dynamic_output_scale)
            + int(self.use_attention)
            + int(self.nominal_term == "adam")
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


LR_DYNAMICS = ("integrate", "leaky", "readout")
INIT_LR = ("random", "fixed")
NOMINAL_TERMS = ("none", "adam", "scaled_momentum")
GLOBAL_LR = ("none", "readout")

# Named configurations. "2017": Wichrowska et al. (2017) as in the original `metarun.py` (the field defaults).
# "stable": bounded learning-rate dynamics, a nominal Adam(1e-3) term, bias-corrected momenta (as Adam's), a fixed
# initial learning rate, the absolute-learning-rate inputs on, and the learned step started 100x below the nominal one
# (docs/stable_design.md). Weights files store their full config, so a preset only names a starting point.
PRESETS = {
    "2017": {},
    "stable": {
        "lr_dynamics": "readout", "init_lr": "fixed", "nominal_term": "adam", "use_lr_shortcut": True,
        "use_extreme_indicator": True, "stepsize_offset_init": -4.6, "learned_scale": "nominal_rms",
        "momentum_bias_correction": True,
    },
}
