"""One partial unroll of inner optimization, differentiable w.r.t. the meta-parameters (truncated BPTT).

`make_unroll(problem, config, ...)` returns a `tf.function` that runs up to `max_length` inner steps in a
`tf.while_loop` (the actual length is a tensor, so one trace serves every sampled length), calling the same
`lopt_tf.hrnn.step` as `LearnedOptimizer`, and returns the meta-loss, its gradient w.r.t. the meta-parameters,
and the final parameters and optimizer state (no gradient crosses the unroll boundary).

Meta-loss (the log objective of the original `metaopt.py`, `use_log_objective`): mean over the unroll of
log(f_t / (f_init + eps) + eps), f_t = full-batch objective at the true parameters after each of the L updates,
each counted once (the original collects the start value twice and never the loss after the last update),
f_init = objective at the start of the task's first unroll. The optimizer sees the problem's mini-batch /
noisy / sparse gradient.
"""

from __future__ import annotations

import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout

EPS = 1e-6


def log_ratio(f, f_init):
    return tf.math.log(f / (f_init + EPS) + EPS)


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
                jit_compile: bool = False, remat: bool = False):
    """Build `unroll(params, state, f_init, start_step, length, seed) -> (loss, grads, params, state, f_last)`.

    `grads` is a dict like `meta_vars` (None-free: zeros where a meta-parameter has no influence).
    `remat=True` recomputes each optimizer step in the backward pass: memory per inner step drops to the step's
    inputs, for about one extra forward step of compute.
    """
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
            total += log_ratio(problem.objective(hrnn.true_params(config, params, state)), f_init)
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
