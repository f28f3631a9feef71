"""The hierarchical-RNN update rule (Wichrowska et al., 2017) as pure, differentiable TensorFlow functions.

    meta  = init_meta(config, seed)                       # dict name -> tensor: the optimizer's own weights
    state = init_state(meta, config, params, seed)        # dict name -> tensor: flat per-parameter buffers
    params, state = step(meta, config, params, grads, state)

No `tf.Variable` is created or read here. The meta-trainer differentiates through `step`; the Keras
`LearnedOptimizer` stores the same state in variables and calls the same `step`. Equations and defaults
follow the original implementation (`tensorflow/models`, `research/learned_optimizer/`:
`optimizer/hierarchical_rnn.py`, `optimizer/rnn_cells.py`, `optimizer/utils.py`) in the configuration of its
`metarun.py`; deliberate differences are listed in `docs/differences_from_original.md`.

State layout (P parameters in T tensors, K gradient scales, n0/n1/n2 hidden sizes). The per-parameter buffers
have the parameter as their last axis: h0, accum and ms are stored feature-major, [n, P], so that the step's
elementwise work runs over the parameter as the innermost dimension (docs/performance.md#feature-major-level-0).
With `init_state(..., pad_to=16)` P is rounded up to a multiple of 16, the padding entries inert: `step` keeps
them as they are and leaves them out of every per-tensor statistic.
    h0 [n0, P]      per-parameter GRU state          accum [K, P]   momenta at K timescales
    ms [K, P]       mean squares of the momenta      scl_decay, inp_decay [P]  decays for the next step
    log_lr [P]      per-parameter log learning rate  true_param [P] true parameters (attention only)
    nominal_ms [P]  second moment of the nominal Adam term, nominal_count [T] its steps (nominal_term "adam";
                    the count also drives the momenta's bias correction, `momentum_bias_correction`)
    h1 [T, n1]      per-tensor GRU states            h2 [n2]        global GRU state
    skipped []      int32, tensor updates skipped because of non-finite gradients
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout, Segments, pad_segments
from lopt_tf.layout import gather as _gather, segment_sum as _segment_sum

_TINY = 1e-16  # inside sqrt/log of mean squares (original: 1e-16)
_MS_EPS = 1e-12  # added to the squared momentum (original: 1e-12)

# The per-parameter buffers: the parameter is their last axis ([P], or [n, P] for FEATURE_MAJOR_KEYS).
PER_PARAMETER_KEYS = ("h0", "accum", "ms", "scl_decay", "inp_decay", "log_lr", "true_param", "nominal_ms")
FEATURE_MAJOR_KEYS = ("h0", "accum", "ms")  # [n, P]; stored [P, n] before (see `to_feature_major`)
STORED_KEYS = ("h0", "accum", "ms", "scl_decay", "inp_decay")  # stored in `init_state(..., state_dtype)`
_ADAM_EPS = 1e-7  # of the nominal Adam term, as Keras Adam's default epsilon
_ATANH_LIMIT = 1.0 - 1e-6  # |(l - anchor) / lr_band| is clipped to this before atanh ("leaky")
ROW_MULTIPLE = 16  # `init_state(..., pad_to=ROW_MULTIPLE)`: the compiled step is faster on such row counts


# ----------------------------------------------------------------------------------------------------------
# Meta-parameters
# ----------------------------------------------------------------------------------------------------------
def _gru_shapes(prefix: str, n_in: int, units: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}/gate_kernel": (n_in + units, 2 * units),
        f"{prefix}/gate_bias": (2 * units,),
        f"{prefix}/cand_kernel": (n_in + units, units),
        f"{prefix}/cand_bias": (units,),
    }


def meta_shapes(config: HRNNConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every meta-parameter (8,349 values with the default config)."""
    n, f, k = config.level_sizes, config.num_features, config.num_gradient_scales
    shapes = {"init/h0": (n[0],), **_gru_shapes("l0", f, n[0])}
    if len(n) >= 2:
        shapes.update(_gru_shapes("l1", n[0] + f, n[1]))
        shapes.update({"init/h1": (n[1],), "l0/from_tensor/kernel": (n[1], 3 * n[0]), "l0/from_tensor/bias": (3 * n[0],)})
    if len(n) == 3:
        shapes.update(_gru_shapes("l2", n[1], n[2]))
        shapes.update({
            "init/h2": (n[2],),
            "l0/from_global/kernel": (n[2], 3 * n[0]), "l0/from_global/bias": (3 * n[0],),
            "l1/from_global/kernel": (n[2], 3 * n[1]), "l1/from_global/bias": (3 * n[1],),
        })
    shapes["readout/direction"] = (n[0],)
    if config.use_gradient_shortcut:
        shapes["readout/shortcut"] = (k,)
    if config.use_attention:
        shapes["readout/attn_direction"] = (n[0],)
        if config.use_gradient_shortcut:
            shapes["readout/attn_shortcut"] = (k,)
    if config.learnable_decay:
        shapes.update({"readout/scl_decay_kernel": (n[0],), "readout/scl_decay_bias": (),
                       "readout/inp_decay_kernel": (n[0],), "readout/inp_decay_bias": ()})
    shapes.update({"readout/lr_kernel": (n[0],), "readout/lr_bias": ()})
    if config.dynamic_output_scale:
        if config.lr_dynamics != "readout":
            shapes["lr_momentum_logit"] = ()
        shapes["stepsize_offset"] = ()
    if config.uses_anchor:  # learned offset of the anchor LR: [tensors of rank < 2, rank >= 2]
        shapes["lr/anchor_offset"] = (2,)
    if config.nominal_term != "none":
        shapes["nominal/log_scale"] = ()
    if config.global_lr == "readout":  # last, so the random draws of the other meta-parameters do not change
        shapes.update({"readout/global_lr_kernel": (n[2],), "readout/global_lr_bias": ()})
    return shapes


def num_meta_params(config: HRNNConfig) -> int:
    return sum(math.prod(s) for s in meta_shapes(config).values())


def init_meta_numpy(config: HRNNConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic initial meta-parameters as float32 numpy arrays.

    The distributions of the original (`optimizer/utils.py` `affine`: weights N(0, (scale / sqrt(fan_in))^2);
    the bias and readout constants of `optimizer/hierarchical_rnn.py`), drawn with numpy in a fixed order
    (docs/differences_from_original.md#meta-parameter-initialisation).
    """
    rng = np.random.default_rng(seed)
    c = config
    meta = {}
    for name, shape in meta_shapes(c).items():  # insertion order is fixed, so draws are reproducible
        if name.startswith("init/"):
            v = rng.uniform(-1.0, 1.0, shape)
        elif name.endswith("gate_kernel") or name.endswith("cand_kernel"):
            v = rng.normal(0.0, c.gru_scale / math.sqrt(shape[0]), shape)
        elif name.endswith("gate_bias"):
            v = np.full(shape, c.gru_gate_bias_init)
        elif name.endswith("cand_bias") or name.endswith("/bias"):
            v = np.zeros(shape)
        elif name.endswith("/kernel"):  # top-down affine maps
            v = rng.normal(0.0, c.affine_scale / math.sqrt(shape[0]), shape)
        elif name.endswith("shortcut"):
            v = rng.normal(c.shortcut_init_mean, c.shortcut_init_std, shape)
        elif name in ("readout/lr_kernel", "readout/lr_bias"):
            v = np.zeros(shape)  # zero_init_lr_weights: the LR starts at its sampled value
        elif name == "readout/scl_decay_bias":
            v = np.full(shape, c.scl_decay_bias_init)
        elif name == "readout/inp_decay_bias":
            v = np.full(shape, c.inp_decay_bias_init)
        elif name == "lr_momentum_logit":
            v = np.full(shape, c.lr_momentum_logit_init)
        elif name == "stepsize_offset":
            v = np.full(shape, c.stepsize_offset_init)
        elif name in ("lr/anchor_offset", "nominal/log_scale") or name.startswith("readout/global_lr"):
            v = np.zeros(shape)  # the anchor, the nominal step and the global multiplier start as configured
        else:  # readout kernels from the level-0 state
            v = rng.normal(0.0, c.readout_scale / math.sqrt(c.level_sizes[0]), shape)
        meta[name] = np.asarray(v, np.float32)
    if c.use_attention:  # the attention readouts start as copies of the update readouts (as in the original)
        meta["readout/attn_direction"] = meta["readout/direction"].copy()
        if c.use_gradient_shortcut:
            meta["readout/attn_shortcut"] = meta["readout/shortcut"].copy()
    return meta


def init_meta(config: HRNNConfig, seed: int = 0) -> dict[str, tf.Tensor]:
    """Deterministic initial meta-parameters as float32 tensors."""
    return {k: tf.constant(v) for k, v in init_meta_numpy(config, seed).items()}


# ----------------------------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------------------------
def padded_rows(num_params: int | None, pad_to: int | None) -> int | None:
    """Length of the parameter axis of the per-parameter buffers ("rows" of the flat parameter vector):
    `num_params` rounded up to a multiple of `pad_to` (None: as is)."""
    if not pad_to or num_params is None:
        return num_params
    return -(-num_params // pad_to) * pad_to


def state_shapes(config: HRNNConfig, layout: Layout) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every state tensor for parameters with this layout (its `num_rows` per-parameter rows:
    `Layout.of(params, rows=padded_rows(P, pad_to))` for `init_state(..., pad_to)`). The parameter is the last
    axis of the per-parameter buffers (`PER_PARAMETER_KEYS`)."""
    p, t, n, k = layout.num_rows, layout.num_tensors, config.level_sizes, config.num_gradient_scales
    shapes = {"h0": (n[0], p), "accum": (k, p), "ms": (k, p), "scl_decay": (p,), "inp_decay": (p,)}
    if config.dynamic_output_scale:
        shapes["log_lr"] = (p,)
    if config.use_attention:
        shapes["true_param"] = (p,)
    if config.nominal_term == "adam":
        shapes.update({"nominal_ms": (p,), "nominal_count": (t,)})
    if len(n) >= 2:
        shapes["h1"] = (t, n[1])
    if len(n) == 3:
        shapes["h2"] = (n[2],)
    shapes["skipped"] = ()
    return shapes


def to_feature_major(key: str, value, shape, num_params: int | None = None) -> np.ndarray | None:
    """`value` of state buffer `key` in the layout `shape` (`state_shapes`) expects, or None if it does not fit.

    Converts the layout written before h0, accum and ms were stored feature-major ([P, n], P possibly padded) by
    transposing it, and pads a parameter axis shorter than `shape`'s (buffers written before the padding: of
    `num_params` entries if given, else any shorter length) with zeros, which the step keeps inert. A value
    that already has `shape` is returned as is (a [P, n] buffer with P == n cannot be told apart from an [n, P]
    one; it is taken as the latter)."""
    value, shape = np.asarray(value), tuple(shape)
    if value.shape == shape:
        return value
    if len(shape) != value.ndim or key not in PER_PARAMETER_KEYS:
        return None
    if key in FEATURE_MAJOR_KEYS and value.ndim == 2 and value.shape[1] == shape[0]:
        value = value.T
    length = value.shape[-1]
    fits = length <= shape[-1] if num_params is None else length in (shape[-1], num_params)
    if value.shape[:-1] != shape[:-1] or not fits:
        return None
    return np.pad(value, [(0, 0)] * (value.ndim - 1) + [(0, shape[-1] - value.shape[-1])])


def init_state(meta, config: HRNNConfig, params, seed: int = 0, state_dtype=None,
               pad_to: int | None = None) -> dict[str, tf.Tensor]:
    """Initial optimizer state for `params` (a list of tensors), float32.

    `state_dtype` (e.g. `tf.bfloat16` or `"bfloat16"`; None: float32) is the dtype the per-parameter buffers of
    the RNN are stored in (`STORED_KEYS`: GRU state, momenta, mean squares, decays; 20 of the 21 floats per
    parameter with the default config). `step` computes in float32 and stores its results back in that dtype.
    The log learning rates and the true parameters stay float32: the log-LR moves by a few percent of its
    change per step (LR momentum), steps that bfloat16's 8-bit mantissa would round away at |log LR| ~ 10, and
    the true parameters are the model's own values.

    Hidden states start at the learned initial vectors, accumulators and mean squares at zero, the decays at
    zero (so the first step's momenta equal the gradient), as in the original `optimizer/hierarchical_rnn.py`.
    The log learning rates are the original's per-element plus per-tensor uniform draws over `init_lr_range`,
    from independent stateless streams (seed, salt 1 and 2;
    docs/differences_from_original.md#initial-learning-rates), or, with `init_lr="fixed"`, the anchor (the same
    for every parameter of a tensor, and for every tensor while the learned offsets are equal).

    The per-parameter buffers have the parameter as their last axis: h0 [n0, P], accum and ms [K, P], the
    others [P] (module docstring).

    `pad_to` (e.g. `ROW_MULTIPLE`; None: no padding) rounds the parameter axis of the per-parameter buffers up
    to a multiple of it: the compiled step is ~1.4x faster on XLA CPU when it is a multiple of 16
    (docs/performance.md). The real rows hold the same values as without padding; `step` and `true_params`
    accept either layout, and `step` returns the one it is given.
    """
    layout = Layout.of(params)
    layout = layout.with_rows(padded_rows(layout.num_params, pad_to))
    seg = Segments(layout)
    flat = layout.flatten(params, tf.float32)
    p = tf.shape(flat)[0]
    n, k = config.level_sizes, config.num_gradient_scales
    zeros = tf.zeros([p], tf.float32)
    state = {
        "h0": tf.broadcast_to(tf.cast(meta["init/h0"], tf.float32)[:, None], [n[0], p]),  # feature-major
        "accum": tf.zeros([k, p]), "ms": tf.zeros([k, p]), "scl_decay": zeros, "inp_decay": zeros,
    }
    if config.dynamic_output_scale:
        lo, hi = config.log_lr_bounds
        if config.init_lr == "fixed":
            log_lr = _anchor(meta, config, layout, seg, tf.float32) + zeros
        elif lo == hi:
            log_lr = tf.fill([p], lo)
        else:
            per_elem = tf.random.stateless_uniform([p - layout.num_padding], [seed, 1], lo / 2, hi / 2, alg="philox")
            per_elem = tf.pad(per_elem, [[0, layout.num_padding]])
            per_tensor = tf.random.stateless_uniform([layout.num_tensors], [seed, 2], lo / 2, hi / 2, alg="philox")
            log_lr = per_elem + tf.reshape(seg.broadcast(per_tensor[:, None]), [-1])
        state["log_lr"] = tf.clip_by_value(log_lr, -config.max_log_lr, config.max_log_lr)
    if config.use_attention:
        state["true_param"] = flat
    if config.nominal_term == "adam":
        state.update(nominal_ms=zeros, nominal_count=tf.zeros([layout.num_tensors]))
    if len(n) >= 2:
        state["h1"] = tf.broadcast_to(tf.cast(meta["init/h1"], tf.float32)[None], [layout.num_tensors, n[1]])
    if len(n) == 3:
        state["h2"] = tf.cast(meta["init/h2"], tf.float32)
    state["skipped"] = tf.constant(0, tf.int32)
    if state_dtype is not None:
        state.update({k: tf.cast(state[k], state_dtype) for k in STORED_KEYS})
    return state


def true_params(config: HRNNConfig, params, state) -> list:
    """The true parameters, where the loss is measured: `params` themselves, or, with the attention look-ahead
    on (`use_attention`: `params` are then the look-ahead points the gradient is taken at), the ones kept flat
    in `state["true_param"]`, returned in the shapes and dtypes of `params`."""
    if not config.use_attention:
        return list(params)
    return Layout.of(params, rows=state["true_param"].shape[0]).unflatten(state["true_param"], params)


# ----------------------------------------------------------------------------------------------------------
# The step
# ----------------------------------------------------------------------------------------------------------
def _bias_gru(meta, prefix: str, x, h, bias=None):
    """The original's `BiasGRUCell` (`optimizer/rnn_cells.py`): h' = u*h + (1-u)*c, with a top-down `bias`
    [.., 3*units] added to the reset, update and candidate pre-activations (the tensor and global GRUs; the
    per-parameter one is `_bias_gru_columns`).
    """
    gk, ck = meta[f"{prefix}/gate_kernel"], meta[f"{prefix}/cand_kernel"]
    n_in, units = x.shape[-1], h.shape[-1]
    static = tf.concat([meta[f"{prefix}/gate_bias"], meta[f"{prefix}/cand_bias"]], 0)
    bias = static if bias is None else bias + static
    gate_bias, cand_bias = bias[..., : 2 * units], bias[..., 2 * units:]
    xz = tf.matmul(x, tf.concat([gk[:n_in], ck[:n_in]], 1))
    gates = tf.sigmoid(xz[:, : 2 * units] + gate_bias + tf.matmul(h, gk[n_in:]))
    r, u = gates[:, :units], gates[:, units:]
    c = tf.tanh(xz[:, 2 * units:] + cand_bias + tf.matmul(r * h, ck[n_in:]))
    return u * h + (1.0 - u) * c


def _sqrt_chain(first, n: int):
    """[1,P] decay -> [n,P] decays gamma, sqrt(gamma), gamma^(1/4), ...: the paper's momentum at multiple
    timescales, each time constant twice the previous one (original `optimizer/hierarchical_rnn.py`)."""
    out = [first]
    for _ in range(n - 1):
        x = out[-1]
        positive = x > 0.0  # sqrt(0) = 0 exactly, with a finite gradient (double-where trick)
        out.append(tf.where(positive, tf.sqrt(tf.where(positive, x, tf.ones_like(x))), tf.zeros_like(x)))
    return tf.concat(out, 0)


@tf.custom_gradient
def _asinh(x):
    """asinh via log1p (TF's native kernel is ~6x slower on CPU), with the exact derivative 1/sqrt(1+x^2)
    (docs/differences_from_original.md#asinh)."""
    y = tf.abs(x)
    r = tf.math.log1p(y + y * y / (1.0 + tf.sqrt(y * y + 1.0)))
    return tf.where(x < 0, -r, r), lambda up: up * tf.math.rsqrt(x * x + 1.0)


def _straight_through_clip(x, bound: float):
    return x + tf.stop_gradient(tf.clip_by_value(x, -bound, bound) - x)


def _bias_gru_columns(meta, prefix: str, x, h, bias=None, ids=None):
    """`_bias_gru` on feature-major operands: x [n_in, P], h [units, P] -> [units, P]; `bias` [S, 3*units]
    per segment (looked up by `ids`, or [1, 3*units] for one segment) or None. Same math; the elementwise work
    runs on [units, P] arrays, whose innermost dimension is the parameter (XLA CPU vectorises those loops,
    not ones over the 10-20 features; docs/performance.md)."""
    gk, ck = meta[f"{prefix}/gate_kernel"], meta[f"{prefix}/cand_kernel"]
    n_in, units = x.shape[0], h.shape[0]
    static = tf.concat([meta[f"{prefix}/gate_bias"], meta[f"{prefix}/cand_bias"]], 0)
    bias = static[:, None] if bias is None else tf.transpose(bias + static)  # [3*units, S]
    gate_bias, cand_bias = bias[: 2 * units], bias[2 * units:]
    if ids is not None:
        gate_bias, cand_bias = tf.gather(gate_bias, ids, axis=1), tf.gather(cand_bias, ids, axis=1)
    xz = tf.matmul(tf.concat([gk[:n_in], ck[:n_in]], 1), x, transpose_a=True)
    gates = tf.sigmoid(xz[: 2 * units] + gate_bias + tf.matmul(gk[n_in:], h, transpose_a=True))
    r, u = gates[:units], gates[units:]
    c = tf.tanh(xz[2 * units:] + cand_bias + tf.matmul(ck[n_in:], r * h, transpose_a=True))
    return u * h + (1.0 - u) * c


def _features(config: HRNNConfig, m, ms, log_lr, lr_mean):
    """The per-parameter RNN input, in the order of the original `optimizer/hierarchical_rnn.py`, feature-major:
    [config.num_features, P] from m, ms [K, P]. `lr_mean`: [P] mean log LR to compare to."""
    feats = [m]
    if config.use_grad_products and config.num_gradient_scales > 1:
        feats.append(m[:-1] * m[1:])
    if config.use_log_means_squared:
        log_ms = tf.math.log(ms + _TINY)
        feats.append(log_ms - tf.reduce_mean(log_ms, 0, keepdims=True))
    if config.use_relative_lr:
        feats.append((log_lr - lr_mean)[None])
    if config.use_extreme_indicator:
        feats.append((tf.nn.relu(log_lr) - tf.nn.relu(math.log(1e-6) - log_lr))[None])
    if config.use_lr_shortcut:
        feats.append((log_lr - math.log(1e-3))[None])
    return tf.concat(feats, 0)


def _per_parameter(meta, config: HRNNConfig, old, ids, num_segments: int, bias0_t, lr_mean_t, count_t=None):
    """Everything of one step that is per parameter, on a slice of the flat buffer.

    `old`: slices over p parameters ([p], or [n, p] for h0, accum, ms) of the per-parameter state, of the
    gradients `g` (zero where not `ok`) and of `ok` (bool, False where the tensor keeps its state this step);
    `ids`: [p] tensor ids (None: one tensor);
    `bias0_t`: [S, 3*n0] top-down bias of the level-0 GRU per segment (the T tensors, and the padding if the
    buffers are padded); `lr_mean_t`: [S] mean log LR for the relative-LR feature; `count_t`: [S] steps of each
    segment including this one, at least 1 (`config.momentum_bias_correction`, else None). Returns `(out, sums)`:
    `out` holds such slices (the new per-parameter state, the raw directions and the LR readout), `sums` the
    per-segment sums the tensor-level math needs (the level-1 GRU input, the squared directions of the dynamic
    output scaling). `step` calls it on the whole buffer or, to bound memory, chunk by chunk; the math is the
    same.

    The math runs feature-major, on the state as it is stored (h0, accum, ms [n, p]), so that the elementwise
    work (most of the level-0 GRU's time) runs over the parameter as the innermost dimension
    (docs/performance.md#feature-major-level-0).
    """
    kk, g, ok = config.num_gradient_scales, old["g"][None], old["ok"]
    ok_row = ok[None]
    old_accum, old_ms, old_h0 = (old[k] for k in ("accum", "ms", "h0"))
    # Tensors without a usable gradient keep their state: each new value is masked where it is made, so the
    # mask fuses into the computation that makes it. What is computed from a masked value below only reaches
    # tensors that are masked again (their directions, LRs and tensor states), so the outputs are as if the
    # state were masked at the end.
    # Gradient history at multiple timescales and the paper's dynamic input scaling: momenta, EMAs of their
    # squares, asinh of their RMS-scaled values (original `optimizer/hierarchical_rnn.py`, `optimizer/utils.py`).
    gamma = _sqrt_chain(old["inp_decay"][None], kk)
    if count_t is None:
        accum = tf.where(ok_row, (1.0 - gamma) * g + gamma * old_accum, old_accum)
    else:  # Adam's bias correction (config docstring); the first step's rate is 1, as gamma^1 = gamma
        t = _gather(count_t, ids)[None]
        rate = (1.0 - gamma) / (1.0 - tf.pow(gamma, t) + _TINY)
        accum = tf.where(ok_row, old_accum + rate * (g - old_accum), old_accum)
    beta = old["scl_decay"][None]
    if config.use_multiple_scale_decays:
        beta = _sqrt_chain(beta, kk)
    ms = tf.where(ok_row, (1.0 - beta) * (tf.square(accum) + _MS_EPS) + beta * old_ms, old_ms)
    m = _asinh(accum * tf.math.rsqrt(ms + _TINY)) if config.dynamic_input_scaling else accum
    log_lr = old.get("log_lr")
    x = _features(config, m, ms, log_lr, None if lr_mean_t is None else _gather(lr_mean_t, ids))

    # Level 0 (per parameter), top-down biases from the previous step's tensor and global states (original
    # `optimizer/hierarchical_rnn.py`, `_compute_updates`).
    h0 = tf.where(ok_row, _bias_gru_columns(meta, "l0", x, old_h0, bias0_t, None if bias0_t is None else ids),
                  old_h0)
    out, sums = {"h0": h0, "accum": accum, "ms": ms}, {}
    if config.hold_without_gradient:  # a parameter moves once a non-zero gradient has reached its momenta
        out["moves"] = tf.reduce_any(tf.not_equal(accum, 0.0), 0)
    if len(config.level_sizes) >= 2:  # the level-1 input: mean of [new level-0 state, features] per tensor
        sums["level1_input"] = tf.concat([_segment_sum(tf.transpose(h0), ids, num_segments),
                                          _segment_sum(tf.transpose(x), ids, num_segments)], 1)

    # Readouts from the new level-0 state, all in one product: direction (+ gradient shortcut), next decays,
    # log-LR change.
    directions = ["direction"] + (["attn_direction"] if config.use_attention else [])
    heads = directions + (["scl_decay_kernel", "inp_decay_kernel"] if config.learnable_decay else []) + ["lr_kernel"]
    readouts = tf.matmul(tf.stack([meta[f"readout/{name}"] for name in heads], 1), h0, transpose_a=True)
    readout = {name: readouts[i] for i, name in enumerate(heads)}
    for name in directions:
        d = readout[name]
        if config.use_gradient_shortcut:
            d += tf.linalg.matvec(m, meta[f"readout/{name.replace('direction', 'shortcut')}"], transpose_a=True)
        out[name] = d
        if config.dynamic_output_scale:
            sums[f"{name}_sq"] = _segment_sum(tf.square(d)[:, None], ids, num_segments)
    if config.learnable_decay:
        decays = {k: tf.sigmoid(readout[f"{k}_kernel"] + meta[f"readout/{k}_bias"]) for k in ("scl_decay", "inp_decay")}
    else:
        decays = {"scl_decay": tf.constant(0.93, g.dtype), "inp_decay": tf.constant(0.89, g.dtype)}
    for key, value in decays.items():
        out[key] = tf.where(ok, value, old[key])
    out["lr_out"] = readout["lr_kernel"] + meta["readout/lr_bias"]
    return out, sums


def _anchor(meta, config: HRNNConfig, layout: Layout, seg: Segments, dtype):
    """[P] (or [1] for one tensor) anchor log learning rate: log(lr_anchor) plus the learned offset of the
    tensor's rank class (rank < 2: biases, scales; rank >= 2: weight matrices and kernels)."""
    offsets = tf.cast(meta["lr/anchor_offset"], dtype)
    rank2 = tf.constant([float(len(s) >= 2) for s in layout.shapes], dtype)  # static rank class per tensor
    per_tensor = offsets[0] * (1.0 - rank2) + offsets[1] * rank2  # not tf.gather: a dense meta-gradient
    return math.log(config.lr_anchor) + tf.reshape(seg.broadcast(per_tensor[:, None]), [-1])


def _log_lr_dynamics(meta, config: HRNNConfig, log_lr, lr_out, anchor):
    """(log LR of this step's update, stored log LR) from the stored log LR and the readout `lr_out`.

    "integrate": the original's clipped integrator with LR momentum (`optimizer/hierarchical_rnn.py`);
    "leaky": the same on the deviation from the anchor in atanh coordinates, with a leak, soft-clamped to the
    band; "readout": a bounded readout, no integration (config docstring).
    """
    band = config.lr_band
    if config.lr_dynamics == "readout":
        log_lr = anchor + band * tf.tanh(lr_out / band)
        return log_lr, log_lr
    keep = tf.sigmoid(meta["lr_momentum_logit"])
    if config.lr_dynamics == "integrate":
        clipped = _straight_through_clip(log_lr + lr_out, config.max_log_lr)
        return clipped, keep * log_lr + (1.0 - keep) * clipped
    z = band * tf.math.atanh(tf.clip_by_value((log_lr - anchor) / band, -_ATANH_LIMIT, _ATANH_LIMIT))
    step_log_lr = anchor + band * tf.tanh((z + lr_out) / band)
    return step_log_lr, anchor + band * tf.tanh(((1.0 - config.lr_leak) * z + (1.0 - keep) * lr_out) / band)


def _nominal_direction(config: HRNNConfig, state, g, accum, ms, count, seg: Segments):
    """The nominal term's direction [P] and its new state (nominal_term "adam" or "scaled_momentum").

    `accum`, `ms`: [P], the shortest timescale's momentum and mean square (rows 0 of the new `accum`, `ms`);
    `count`: [T] the new `nominal_count` ("adam"; None otherwise).
    "adam": Keras Adam's m / (sqrt(v_hat) + eps) with m the HRNN's shortest-timescale momentum `accum[0]`
    (equal to the gradient on the first step, as a bias-corrected m) and v_hat the bias-corrected EMA of g^2,
    kept as v_hat itself: v_hat_t = v_hat_{t-1} + (1 - beta2) / (1 - beta2^t) * (g^2 - v_hat_{t-1}), t counted
    per tensor over the steps it was updated. "scaled_momentum": accum[0] / sqrt(ms[0]).
    """
    if config.nominal_term == "scaled_momentum":
        return accum * tf.math.rsqrt(ms + _TINY), {}
    beta2 = config.nominal_beta2
    rate_t = (1.0 - beta2) / (1.0 - tf.pow(tf.constant(beta2, g.dtype), tf.maximum(count, 1.0)))
    rate = tf.reshape(seg.broadcast(rate_t[:, None]), [-1])
    v = state["nominal_ms"] + rate * (tf.square(g) - state["nominal_ms"])
    return accum / (tf.sqrt(v) + _ADAM_EPS), {"nominal_ms": v, "nominal_count": count}


def _chunked(fn, per_param: dict, ids, num_segments: int, chunk_size: int):
    """Run `fn(per_param_slice, ids_slice, num_segments)` over consecutive chunks of `chunk_size` parameters.

    The parameter is the last axis of every buffer in `per_param` and of every `out` of `fn` ([p] or [n, p]).
    Each chunk's slices are taken only after the previous chunk's results exist (control dependencies), so a
    graph runs the chunks one after the other and only one chunk's temporaries are alive at a time (eager
    execution is sequential anyway). Returns `fn`'s `(out, sums)` for the whole buffer: `out` concatenated,
    `sums` added over the chunks.
    """
    p = int(per_param["g"].shape[-1])
    outs, sums, previous = [], None, []
    for start in range(0, p, chunk_size):
        with tf.control_dependencies(previous):
            part = {k: v[..., start:start + chunk_size] for k, v in per_param.items()}
            part_ids = None if ids is None else ids[start:start + chunk_size]
        out, part_sums = fn(part, part_ids, num_segments)
        previous = tf.nest.flatten((out, part_sums))
        outs.append(out)
        sums = part_sums if sums is None else {k: sums[k] + v for k, v in part_sums.items()}
    return {k: tf.concat([o[k] for o in outs], -1) for k in outs[0]}, sums


def _in_xla_context() -> bool:
    """Is the graph being built compiled by XLA (`tf.function(jit_compile=True)`, or inside such a function)?"""
    from tensorflow.python.ops import control_flow_util  # no public API answers this

    return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _slice_last(v: tf.Tensor, start, size: int) -> tf.Tensor:
    """v[..., start:start + size] for a traced `start`."""
    begin = tf.stack([0] * (v.shape.rank - 1) + [start])
    return xla.dynamic_slice(v, begin, v.shape[:-1].as_list() + [size])


def _update_last(buffer: tf.Tensor, part: tf.Tensor, start) -> tf.Tensor:
    """buffer with buffer[..., start:start + part.shape[-1]] = part (in place under XLA)."""
    return xla.dynamic_update_slice(buffer, part, tf.stack([0] * (buffer.shape.rank - 1) + [start]))


def _chunked_loop(fn, per_param: dict, ids, num_segments: int, chunk_size: int):
    """`_chunked` for XLA: one `while` loop over the chunks, each chunk's outputs written into whole-buffer
    outputs in place (`dynamic_update_slice`).

    XLA schedules the chunks of `_chunked` as it likes (the control dependencies do not order the ops of a
    compiled computation), so their temporaries add up: with ResNet50V2's 23.5M parameters the compiled step's
    peak memory was larger chunked than unchunked. A loop body is one chunk, so its temporaries are one
    chunk's (docs/performance.md#chunks-and-compile-time). Same math, chunk sums added in the same order.

    An output with the name, shape and dtype of an input (the new per-parameter state) overwrites that input's
    buffer chunk by chunk, so no second whole-size copy is needed where the input's buffer can be reused (an
    XLA-compiled train step that updates the optimizer's variables). Each iteration reads the next chunk's old
    state after writing its own and carries it to the next iteration: a chunk read in the same iteration as the
    write made XLA copy every overwritten buffer whole, every iteration.
    """
    p = int(per_param["g"].shape[-1])
    num_full = p // chunk_size

    def chunk(carried, start, size):
        part = {k: carried[k] if k in carried else _slice_last(v, start, size) for k, v in per_param.items()}
        return fn(part, None if ids is None else _slice_last(ids, start, size), num_segments)

    # The first chunk traced outside the loop only for its outputs' shapes and dtypes (XLA drops its ops: the
    # loop computes every full chunk).
    first, first_sums = chunk({}, 0, chunk_size)
    in_place = [k for k, v in first.items() if k in per_param and v.dtype == per_param[k].dtype
                and v.shape[:-1] == per_param[k].shape[:-1]]
    outs = {k: per_param[k] if k in in_place else tf.zeros(v.shape[:-1].as_list() + [p], v.dtype)
            for k, v in first.items()}
    sums = {k: tf.zeros_like(v) for k, v in first_sums.items()}

    def next_old(outs, start, size):
        """The old state of the chunk at `start`, read from the buffers after the previous chunk was written
        into them, so that no write waits for a read of the same buffer (else XLA copies the whole buffer)."""
        return {k: _slice_last(outs[k], start, size) for k in in_place}

    def body(i, outs, sums, old):
        start = i * chunk_size
        out, part_sums = chunk(old, start, chunk_size)
        outs = {k: _update_last(outs[k], out[k], start) for k in outs}
        return (i + 1, outs, {k: sums[k] + v for k, v in part_sums.items()},  # the last iteration's read is
                next_old(outs, tf.minimum(start + chunk_size, p - chunk_size), chunk_size))  # unused: in bounds

    _, outs, sums, _ = tf.while_loop(lambda i, *_: i < num_full, body,
                                     (tf.constant(0), outs, sums, next_old(outs, 0, chunk_size)),
                                     parallel_iterations=1)
    if p > num_full * chunk_size:  # the last, shorter chunk
        start = num_full * chunk_size
        out, part_sums = chunk(next_old(outs, start, p - start), start, p - start)
        outs = {k: _update_last(outs[k], out[k], start) for k in outs}
        sums = {k: sums[k] + v for k, v in part_sums.items()}
    return outs, sums


def step(meta, config: HRNNConfig, params, grads, state, learning_rate=1.0, active=None, chunk_size=None):
    """One optimizer step on a list of parameter tensors.

    Args:
      meta: dict of meta-parameters (`meta_shapes(config)`), tensors or arrays.
      config: the HRNNConfig the meta-parameters were made for.
      params: list of tensors. With attention on these are the look-ahead points the gradient was taken at;
        the true parameters are in `state["true_param"]`.
      grads: list of tensors, same shapes (dense; densify IndexedSlices first).
      state: dict from `init_state` or a previous `step` (padded or not: the returned state has the layout of
        the given one).
      learning_rate: multiplies the learned step size (1.0 = the learned step).
      active: optional list of T Python bools; False marks a tensor that got no gradient this step: its
        parameters and state are left as they are (it is not counted as skipped).
      chunk_size: optional int. With more parameters than this, the per-parameter math (the level-0 GRU and
        its ~30 floats of temporaries per parameter) runs over chunks of this many parameters one after the
        other, so its memory is bounded by the chunk instead of the model (under XLA, as one `while` loop over
        the chunks). Same math; per-tensor sums are added chunk by chunk, so results agree to float32 rounding.

    Returns:
      (new_params, new_state). Tensors whose gradient holds a NaN/Inf keep their parameters and state and are
      counted in `new_state["skipped"]`.
    """
    layout = Layout.of(params)
    layout = layout.with_rows(state["scl_decay"].shape[0] if layout.num_params is not None else None)
    seg = Segments(layout)
    dtype = state["log_lr" if "log_lr" in state else "h1" if "h1" in state else "ms"].dtype
    if dtype in (tf.bfloat16, tf.float16):  # only the per-parameter buffers: math in float32
        dtype = tf.float32
    meta = {k: tf.cast(v, dtype) for k, v in meta.items()}
    n = config.level_sizes
    lr_mult = tf.cast(learning_rate, dtype)

    # Which tensors are updated: they have a gradient and it is finite everywhere.
    g = layout.flatten(grads, dtype)
    bad = seg.any(tf.logical_not(tf.math.is_finite(g)))  # [T]
    has_grad = tf.constant(True, shape=[layout.num_tensors]) if active is None else tf.constant(list(active), tf.bool)
    tensor_ok = tf.logical_and(has_grad, tf.logical_not(bad))
    ok = tf.reshape(seg.broadcast(tensor_ok[:, None]), [-1])
    if seg.ids is None:
        ok = tf.broadcast_to(ok, tf.shape(g))
    g = tf.where(ok, g, tf.zeros_like(g))
    theta = layout.flatten(params, dtype)

    # Per-tensor inputs of the per-parameter math: top-down biases of level 0 (from the previous step's tensor
    # and global states) and the mean log LR of the relative-LR feature.
    log_lr = state.get("log_lr")
    h1_prev, h2_prev = state.get("h1"), state.get("h2")
    bias0_t = lr_mean_t = None
    if len(n) >= 2:
        bias0_t = tf.matmul(h1_prev, meta["l0/from_tensor/kernel"]) + meta["l0/from_tensor/bias"]
        if len(n) == 3:
            bias0_t += tf.matmul(h2_prev[None], meta["l0/from_global/kernel"]) + meta["l0/from_global/bias"]
        bias0_t = pad_segments(bias0_t, layout)
    num_segments = layout.num_segments  # 1 when seg.ids is None
    if config.use_relative_lr:
        lr_mean_t = (tf.fill([num_segments], tf.reduce_mean(log_lr[: layout.num_params]))
                     if config.use_problem_lr_mean else pad_segments(seg.mean(log_lr[:, None])[:, 0], layout))

    old = {k: state[k] for k in PER_PARAMETER_KEYS if k in state and k not in ("true_param", "nominal_ms")}
    old.update(g=g, ok=ok)

    # Steps per tensor, this one included: the nominal Adam term's bias correction and the momenta's. Per segment,
    # at least 1 (the padding segment counts no steps), so the per-parameter math needs no clamp.
    count = state["nominal_count"] + tf.cast(tensor_ok, dtype) if config.nominal_term == "adam" else None
    count_t = tf.maximum(pad_segments(count, layout), 1.0) if config.momentum_bias_correction else None

    def per_parameter(old_slice, ids, segments):
        old_slice = {k: v if k == "ok" else tf.cast(v, dtype) for k, v in old_slice.items()}  # per chunk
        out, sums = _per_parameter(meta, config, old_slice, ids, segments, bias0_t, lr_mean_t, count_t)
        if config.nominal_term != "none":  # what the nominal term reads, before the state is stored
            out["accum0"], out["ms0"] = out["accum"][0], out["ms"][0]
        # The new state in its stored dtype as soon as it is made, so that a chunked step holds no float32 copy
        # of bfloat16 state.
        return {k: tf.cast(v, state[k].dtype) if k in STORED_KEYS else v for k, v in out.items()}, sums

    p = layout.num_rows
    if chunk_size and p is not None and p > chunk_size:
        chunked = _chunked_loop if _in_xla_context() else _chunked
        out, sums = chunked(per_parameter, old, seg.ids, num_segments, int(chunk_size))
    else:
        out, sums = per_parameter(old, seg.ids, num_segments)
    sums = {k: v[: layout.num_tensors] for k, v in sums.items()}  # without the padding segment
    new_state = {k: out[k] for k in ("h0", "accum", "ms", "scl_decay", "inp_decay")}
    counts = tf.reshape(tf.cast(tf.shape(g)[0] if seg.ids is None else seg.counts, dtype), [-1, 1])  # [T, 1]

    # Level 1 (per tensor): mean of [new level-0 state, features]; level 2 (global): mean of tensor states, or
    # the last tensor's as in the original (docs/differences_from_original.md#global-rnn-input).
    if len(n) >= 2:
        bias1 = None
        if len(n) == 3:
            bias1 = tf.matmul(h2_prev[None], meta["l1/from_global/kernel"]) + meta["l1/from_global/bias"]
        h1 = _bias_gru(meta, "l1", sums["level1_input"] / counts, h1_prev, bias1)
        h1 = tf.where(tensor_ok[:, None], h1, h1_prev)
        new_state["h1"] = h1
        if len(n) == 3:
            g_in = tf.reduce_mean(h1, 0, keepdims=True) if config.global_input == "mean" else h1[-1:]
            new_state["h2"] = _bias_gru(meta, "l2", g_in, h2_prev[None])[0]
    if config.global_lr == "readout":  # the bounded global log step, read from this step's global state
        raw = tf.reduce_sum(new_state["h2"] * meta["readout/global_lr_kernel"]) + meta["readout/global_lr_bias"]
        lr_mult = lr_mult * tf.exp(config.global_lr_band * tf.tanh(raw))

    def unit_rms(name):
        """The direction normalised to unit RMS over each tensor (dynamic output scaling)."""
        scale = tf.math.rsqrt(sums[f"{name}_sq"] / counts + _TINY)
        return out[name] * tf.reshape(seg.broadcast(scale), [-1])

    # Step size exp(clipped log LR + offset), LR momentum, the update; with attention, the look-ahead point the
    # next gradient is taken at (original `optimizer/hierarchical_rnn.py`).
    d = out["direction"]
    if config.dynamic_output_scale:
        d = unit_rms("direction")
        anchor = _anchor(meta, config, layout, seg, dtype) if config.uses_anchor else None
        step_log_lr, new_state["log_lr"] = _log_lr_dynamics(meta, config, log_lr, out["lr_out"], anchor)
        step_size = lr_mult * tf.exp(step_log_lr + meta["stepsize_offset"])
        look_size = lr_mult * tf.exp(step_log_lr)
    else:
        step_size = look_size = lr_mult * 2.0 * tf.sigmoid(out["lr_out"])
    nominal_step = None  # the nominal Adam-like step (config.nominal_term), added to the learned one
    if config.nominal_term != "none":
        nominal, nominal_state = _nominal_direction(config, state, g, out["accum0"], out["ms0"], count, seg)
        new_state.update(nominal_state)
        nominal_step = lr_mult * config.nominal_lr * tf.exp(meta["nominal/log_scale"]) * nominal
        if config.learned_scale == "nominal_rms":  # the learned direction takes the nominal one's RMS per tensor
            rms = tf.sqrt(seg.mean(tf.square(nominal)[:, None]) + _TINY)  # [T, 1]
            d = d * tf.reshape(seg.broadcast(rms), [-1])

    if config.use_attention:
        phi = state["true_param"]
        d_att = unit_rms("attn_direction") if config.dynamic_output_scale else out["attn_direction"]
        new_state["true_param"] = phi - step_size * d
        new_theta = phi - look_size * d_att
    else:
        new_theta = theta - step_size * d
    if nominal_step is not None:
        new_theta -= nominal_step
        if config.use_attention:
            new_state["true_param"] -= nominal_step

    # Leave tensors without a usable gradient untouched (the per-parameter state is already masked;
    # docs/differences_from_original.md#non-finite-gradients).
    for key in ("log_lr", "true_param", "nominal_ms"):
        if key in new_state:
            new_state[key] = tf.where(ok, new_state[key], state[key])
    moves = tf.logical_and(ok, out["moves"]) if config.hold_without_gradient else ok
    if "true_param" in new_state:
        new_state["true_param"] = tf.where(moves, new_state["true_param"], state["true_param"])
    new_theta = tf.where(moves, new_theta, theta)
    new_state["skipped"] = state["skipped"] + tf.reduce_sum(tf.cast(tf.logical_and(has_grad, bad), tf.int32))
    new_state = {k: tf.cast(v, state[k].dtype) for k, v in new_state.items()}  # the stored dtypes
    return layout.unflatten(new_theta, params), new_state
