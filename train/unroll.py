"""One partial unroll of inner optimization, differentiable w.r.t. the meta-parameters (truncated BPTT).

`make_unroll(problem, config, ...)` returns a `tf.function` that runs up to `max_length` inner steps in a
`tf.while_loop` (the actual length is a tensor, so one trace serves every sampled length), calling the same
`lopt_tf.hrnn.step` as `LearnedOptimizer`, and returns the meta-loss, its gradient w.r.t. the meta-parameters,
and the final parameters and optimizer state (no gradient crosses the unroll boundary).

Meta-loss: the mean over the unroll of a per-step term of r_t = f_t / (f_init + eps), f_t = full-batch
objective at the true parameters after each of the L updates, each counted once (the original collects the start
value twice and never the loss after the last update), f_init = objective at the start of the task's first
unroll. The optimizer sees the problem's mini-batch / noisy / sparse gradient. Terms (`objective_term`):

* `log_ratio` (the log objective of the original `metaopt.py`, `use_log_objective`): log(r_t + eps). Its floor
  log(eps) makes time spent at tiny losses worth little and hides short late spikes: a run that converges, lets
  its learning rate creep up, spikes and re-converges can score better than steady progress.
* `clipped_ratio`: min(r_t, clip), the normalised loss clipped at `clip` (in the spirit of the clipped task
  losses of Celo, Moudgil et al. 2025, and `learned_optimization`'s task normalizers). A late spike to a
  fraction of the initial loss costs that fraction for every step it lasts, while any loss far below the initial
  one scores near 0.
"""

from __future__ import annotations

import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout

EPS = 1e-6
OBJECTIVES = ("log_ratio", "clipped_ratio")


def log_ratio(f, f_init):
    return tf.math.log(f / (f_init + EPS) + EPS)


def check_objective(kind: str, clip: float) -> None:
    if kind not in OBJECTIVES:
        raise ValueError(f"meta_objective must be one of {OBJECTIVES}, got {kind!r}")
    if kind == "clipped_ratio" and not clip > 0:
        raise ValueError(f"the clipped_ratio meta-objective needs a clip > 0, got {clip}")


def objective_term(f, f_init, kind: str = "log_ratio", clip: float = 0.0):
    """The meta-objective's term for loss `f` (any shape) of a task whose initial loss is `f_init`.

    `log_ratio`: log(r + eps) with r = f / (f_init + eps), r first clipped at `clip` if `clip` > 0;
    `clipped_ratio`: min(r, clip) (`clip` > 0 required). A non-finite `f` gives a non-finite term.
    """
    check_objective(kind, clip)
    ratio = f / (f_init + EPS)
    if clip > 0:
        ratio = tf.where(ratio > clip, tf.cast(clip, ratio.dtype), ratio)  # NaN stays NaN
    return tf.math.log(ratio + EPS) if kind == "log_ratio" else ratio


def _rematerialized_step(config: HRNNConfig):
    """`hrnn.step` whose internals are recomputed in the backward pass (only its inputs are kept per step)."""

    def step(meta, params, grads, state):
        floats = {k: v for k, v in state.items() if v.dtype.is_floating}
        structure = (meta, params, grads, floats)

        @tf.recompute_grad
        def inner(*flat):
            m, p, g, s = tf.nest.pack_sequence_as(structure, list(flat))
            new_p, new_s = hrnn.step(m, config, p, g, {**s, "skipped": state["skipped"]})
            return tf.nest.flatten((new_p, {k: new_s[k] for k in floats}))

        out = inner(*tf.nest.flatten(structure))
        new_params, new_floats = tf.nest.pack_sequence_as((list(params), floats), out)
        # The skip counter (an integer, no gradient) is recomputed outside.
        bad = sum(tf.cast(tf.logical_not(tf.reduce_all(tf.math.is_finite(g))), tf.int32) for g in grads)
        return new_params, {**new_floats, "skipped": state["skipped"] + bad}

    return step


def make_unroll(problem, config: HRNNConfig, meta_vars: dict, max_length: int, first_order: bool = False,
                jit_compile: bool = False, remat: bool = False, meta_objective: str = "log_ratio",
                loss_clip: float = 0.0):
    """Build `unroll(params, state, f_init, start_step, length, seed) -> (loss, grads, params, state, f_last)`.

    `grads` is a dict like `meta_vars` (None-free: zeros where a meta-parameter has no influence).
    `remat=True` recomputes each optimizer step in the backward pass: memory per inner step drops to the step's
    inputs, for about one extra forward step of compute. The loss is the mean of
    `objective_term(f_t, f_init, meta_objective, loss_clip)` over the unroll.
    """
    check_objective(meta_objective, loss_clip)
    term = lambda f, f_init: objective_term(f, f_init, meta_objective, loss_clip)  # noqa: E731
    step_fn = _rematerialized_step(config) if remat else (
        lambda meta, params, grads, state: hrnn.step(meta, config, params, grads, state))
    keys = sorted(meta_vars)
    layout = Layout(tuple(tuple(s) for s in problem.param_shapes))
    state_spec = {k: tf.TensorSpec(shape, tf.int32 if k == "skipped" else tf.float32)
                  for k, shape in hrnn.state_shapes(config, layout).items()}
    scalar = lambda dtype: tf.TensorSpec([], dtype)  # noqa: E731
    signature = [[tf.TensorSpec(s, tf.float32) for s in layout.shapes], state_spec, scalar(tf.float32),
                 scalar(tf.int32), scalar(tf.int32), scalar(tf.int32)]

    def inner_loop(meta, params, state, f_init, start_step, length, seed):
        def body(t, total, params, state):
            _, grads = problem.gradient(params, start_step + t, seed)
            if first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            params, state = step_fn(meta, params, grads, state)
            total += term(problem.objective(hrnn.true_params(config, params, state)), f_init)
            return t + 1, total, params, state

        _, total, params, state = tf.while_loop(
            lambda t, *_: t < length, body, (tf.constant(0), tf.constant(0.0), list(params), dict(state)),
            maximum_iterations=max_length)
        return total / tf.cast(length, tf.float32), params, state

    @tf.function(jit_compile=jit_compile, input_signature=signature)
    def unroll(params, state, f_init, start_step, length, seed):
        meta_list = [meta_vars[k] for k in keys]
        with tf.GradientTape() as tape:
            meta = {k: tf.convert_to_tensor(v) for k, v in zip(keys, meta_list)}
            loss, params, state = inner_loop(meta, params, state, f_init, start_step, length, seed)
        grads = tape.gradient(loss, meta_list, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        f_last = problem.objective(hrnn.true_params(config, params, state))
        return loss, dict(zip(keys, grads)), params, state, f_last

    @tf.function(jit_compile=jit_compile, input_signature=signature)
    def evaluate(params, state, f_init, start_step, length, seed):
        """The same unroll without the meta-gradient (validation)."""
        meta = {k: tf.convert_to_tensor(meta_vars[k]) for k in keys}
        loss, params, state = inner_loop(meta, params, state, f_init, start_step, length, seed)
        return loss, params, state

    unroll.evaluate = evaluate
    unroll.signature = signature
    return unroll
