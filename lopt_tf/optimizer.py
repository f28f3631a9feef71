"""`LearnedOptimizer`: the hierarchical-RNN update rule as a Keras 3 optimizer.

A thin stateful wrapper around `lopt_tf.hrnn.step`: meta-parameters are non-trainable optimizer variables,
the state lives in one flat variable per state kind (no per-tensor variables), and the whole list of model
variables is updated at once, after the gradient all-reduce, so the tensor and global RNNs see every tensor.
The per-parameter variables have the parameter as their last axis (h0, accum, ms feature-major, [n, P]) and the
parameter count rounded up to a multiple of 16 (`hrnn.init_state(..., pad_to=hrnn.ROW_MULTIPLE)`, faster under
XLA); `state` shows them without the padding.
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout
from lopt_tf.weights import DEFAULT_WEIGHTS, available_weights, load_weights


DEFAULT_CHUNK_SIZE = 1 << 20  # parameters per chunk of the per-parameter RNN (benchmarks/step_memory.py)
# The step size `weight_decay` is measured against: Adam's and AdamW's default learning rate. With it,
# `weight_decay=1e-2` shrinks each weight by 1e-2 * 1e-3 per step at `learning_rate=1.0`, as AdamW(1e-3, 1e-2).
WEIGHT_DECAY_REFERENCE_STEP = 1e-3


def _var_name(key: str) -> str:
    return key.replace("/", "__")  # Keras variable names may not contain "/"


def _describe(variable) -> str:
    return f"variable {getattr(variable, 'path', None) or getattr(variable, 'name', None) or variable!r}"


def _densify(grad, var):
    if isinstance(grad, tf.IndexedSlices):  # e.g. an Embedding: scatter the rows into a dense gradient
        dense = tf.math.unsorted_segment_sum(grad.values, grad.indices, var.shape[0])
        return tf.reshape(dense, var.shape)
    return grad


@keras.saving.register_keras_serializable(package="lopt_tf")
class LearnedOptimizer(keras.optimizers.Optimizer):
    """The learned optimizer of Wichrowska et al. (2017), "Learned Optimizers that Scale and Generalize".

    Usage: `model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss=...)`; no horizon, no tuning.

    Args:
      learning_rate: float, schedule or callable; multiplies the learned step size (1.0 = as learned).
        Keras LR callbacks and schedules work as with any optimizer.
      weights: a shipped weight-set name (`lopt_tf.available_weights()`), a path to a `.npz` weights file or
        a SavedModel directory from `lopt_tf.export_saved_model`, or None for the fresh initialisation of
        `hrnn_config`.
      hrnn_config: `HRNNConfig` (or its dict). Default: the one stored with the weights; if given it must
        match them.
      seed: seed of the initial per-parameter learning rates (stateless, so replicas agree).
      chunk_size: models with more parameters than this run the per-parameter RNN over chunks of this many
        parameters one after the other, which bounds the step's temporary memory (about 30 floats per
        parameter at once otherwise); None or 0 never chunks. Same update up to float32 rounding. Under XLA the
        chunks are a while loop, slower than no chunks (ResNet50V2: about 25%, half the extra memory;
        docs/performance.md#resnet50v2-fit).
      weight_decay: decoupled weight decay, as AdamW at its default learning rate: each step multiplies every
        decayed weight by `1 - weight_decay * learning_rate * 1e-3` (`WEIGHT_DECAY_REFERENCE_STEP`). Keras's
        own rule (`weight_decay * learning_rate`) would decay about 1,000x harder than AdamW here, because
        `learning_rate` multiplies the learned step instead of being a step of ~1e-3.
      state_dtype: None (float32) or e.g. "bfloat16": the dtype the per-parameter RNN state is stored in
        (`hrnn.init_state`'s `state_dtype`: GRU state, momenta, mean squares, decays; about half the optimizer
        memory in bfloat16); the update is computed in float32.
      jit_compile: compile the update's math (`hrnn.step`) with XLA even when the train step itself is not
        (`model.compile(jit_compile=False)`, custom loops in a plain `tf.function`, eager): the step is a few
        hundred small ops that XLA fuses into a few dozen loops (about 1.6x faster `fit` steps on a small MLP,
        `benchmarks/fit_step.py`). Inside an XLA-compiled train step it changes nothing. False runs the ops
        as TensorFlow ops (for devices without XLA). Same update up to float32 rounding.
      name, **kwargs: as for every Keras optimizer (`clipnorm`, `global_clipnorm`, `use_ema`,
        `loss_scale_factor`, ...).

    Parameters that have never received a non-zero gradient (an embedding row never looked up, a frozen
    branch) stay where they are, as with Adam (`HRNNConfig.hold_without_gradient`).

    String identifier: `model.compile(optimizer="learned_optimizer")` gives `LearnedOptimizer()`.

    Look-ahead (`hrnn_config.use_attention=True`): during training the model's variables hold the look-ahead
    point where the gradient is taken; the true parameters are in the optimizer state
    (`true_parameters()`), and `finalize_variable_values` -- called by Keras at the end of `fit` -- writes them
    back. In a custom loop, call `optimizer.finalize_variable_values(model.trainable_variables)` yourself.

    Non-finite gradients: a tensor whose gradient holds a NaN or Inf keeps its parameters and state for that
    step; `skipped_updates` counts such tensor updates.

    Distribution: construct the optimizer inside `strategy.scope()` (checked in `build`).
    """

    def __init__(self, learning_rate=1.0, weights=DEFAULT_WEIGHTS, hrnn_config=None, seed=0,
                 chunk_size=DEFAULT_CHUNK_SIZE, state_dtype=None, jit_compile=True, name="learned_optimizer",
                 **kwargs):
        if isinstance(learning_rate, (int, float)):
            learning_rate = float(learning_rate)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if isinstance(hrnn_config, dict):
            hrnn_config = HRNNConfig.from_dict(hrnn_config)
        elif hrnn_config is not None and not isinstance(hrnn_config, HRNNConfig):
            raise TypeError(f"hrnn_config must be an HRNNConfig, its dict or None, got {hrnn_config!r} "
                            f"({type(hrnn_config).__name__}).")
        meta, config, info = load_weights(weights, hrnn_config)
        self.hrnn_config = config
        self.weights_name = None if weights is None else os.fspath(weights)
        self.weights_info = info
        self.seed = int(seed)
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                       or chunk_size < 0):
            raise ValueError(f"chunk_size must be a non-negative integer or None, got {chunk_size!r}.")
        self.chunk_size = int(chunk_size) if chunk_size else None
        self.state_dtype = None if state_dtype is None else tf.as_dtype(state_dtype).name
        if not isinstance(jit_compile, bool):
            raise TypeError(f"jit_compile must be True or False, got {jit_compile!r}.")
        self.jit_compile = jit_compile
        self._steps = {}  # which tensors have a gradient -> the (compiled) step
        self._meta_vars = {
            k: self.add_variable(v.shape, initializer=lambda shape, dtype, v=v: tf.constant(v, dtype),
                                 dtype="float32", name=f"meta__{_var_name(k)}")
            for k, v in sorted(meta.items())
        }
        self._state_vars = {}

    # -- Keras hooks ---------------------------------------------------------------------------------------
    def add_variable(self, *args, **kwargs):
        # Create variables eagerly even when first called inside a tf.function (keras-team/keras PR #23087).
        with tf.init_scope():
            return super().add_variable(*args, **kwargs)

    def build(self, var_list):
        if self.built:
            return
        if tf.distribute.has_strategy() and tf.distribute.get_strategy() is not self._distribution_strategy:
            raise RuntimeError(
                "LearnedOptimizer was constructed outside the current tf.distribute strategy's scope. "
                "Construct it inside `strategy.scope()` (its iteration counter and meta-weights must be "
                "mirrored like the model's variables).")
        for variable in var_list:
            if not tf.as_dtype(variable.dtype).is_floating:
                raise TypeError(f"LearnedOptimizer can only train floating-point variables; "
                                f"{_describe(variable)} has dtype {tf.as_dtype(variable.dtype).name}.")
        super().build(var_list)
        self._layout = Layout.of(var_list)
        self._layout = self._layout.with_rows(hrnn.padded_rows(self._layout.num_params, hrnn.ROW_MULTIPLE))
        if var_list:
            with tf.init_scope():  # build may be first called while tracing a train step
                meta = {k: tf.convert_to_tensor(v) for k, v in self._meta_vars.items()}
                init = hrnn.init_state(meta, self.hrnn_config, [tf.convert_to_tensor(v) for v in var_list], self.seed,
                                       state_dtype=self.state_dtype, pad_to=hrnn.ROW_MULTIPLE)
            for key, value in init.items():
                self._state_vars[key] = self.add_variable(
                    value.shape, initializer=lambda shape, dtype, value=value: tf.cast(value, dtype),
                    dtype=value.dtype.name, name=f"state__{key}")

    def load_own_variables(self, store):
        # Older files hold the per-parameter buffers in older layouts: h0, accum and ms as [P, n] (before they were
        # stored feature-major) and P unpadded (before the padding). They are converted here: transposed, and the
        # padding added as zeros (the step never reads it into anything but itself).
        if self._state_vars and len(store.keys()) == len(self.variables):
            keys = {id(v): k for k, v in self._state_vars.items() if k in hrnn.PER_PARAMETER_KEYS}
            values = {}
            for i, variable in enumerate(self.variables):
                value, shape = store[str(i)], tuple(variable.shape)
                if id(variable) in keys and tuple(np.shape(value)) != shape:
                    converted = hrnn.to_feature_major(keys[id(variable)], value, shape, self._layout.num_params)
                    value = value if converted is None else converted
                values[str(i)] = value
            store = values
        super().load_own_variables(store)

    def apply(self, grads, trainable_variables=None):
        # Checked before anything is changed: a gradient of another shape would otherwise be flattened into
        # the same buffer (same size) or fail deep inside the step with the buffer's internal shapes.
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        for grad, variable in zip(grads, variables):
            if grad is None:
                continue
            shape = grad.shape
            if isinstance(grad, tf.IndexedSlices):  # rows of the variable: only the row shape is known
                shape = tf.TensorShape([variable.shape[0]]).concatenate(grad.values.shape[1:])
            if not tf.TensorShape(shape).is_compatible_with(variable.shape):
                raise ValueError(f"Gradient of shape {tf.TensorShape(shape)} for {_describe(variable)} of shape "
                                 f"{tf.TensorShape(variable.shape)}: shapes must match.")
        return super().apply(grads, trainable_variables)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return

        def decay(distribution, variables):
            def decay_one(variable):
                if self._use_weight_decay(variable):
                    factor = (tf.cast(self.weight_decay, variable.dtype) * tf.cast(self.learning_rate, variable.dtype)
                              * WEIGHT_DECAY_REFERENCE_STEP)
                    variable.assign_sub(variable * factor)

            for variable in variables:
                variable = variable.value if isinstance(variable, keras.Variable) else variable
                distribution.extended.update(variable, decay_one, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(decay, self._distribution_strategy, variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        tvars = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, tvars)))
        indices = [self._get_variable_index(v) for v in trainable_variables]
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._update_all, self._distribution_strategy, grads_and_vars, indices, learning_rate)

    def _update_all(self, distribution, grads_and_vars, indices, learning_rate):
        """Cross-replica: one `extended.update` whose body runs `hrnn.step` once per device on local copies."""
        all_vars = [v.value if isinstance(v, keras.Variable) else v for v in self._trainable_variables]
        got = dict(zip(indices, (g for g, _ in grads_and_vars)))
        active = [i in got for i in range(len(all_vars))]
        meta = {k: v.value for k, v in self._meta_vars.items()}
        states = {k: v.value for k, v in self._state_vars.items()}
        grads = [got.get(i) for i in range(len(all_vars))]

        step = self._step_fn(tuple(active))

        def body(_, grads, params, states, meta, lr):
            grads = [tf.zeros(p.shape, p.dtype) if g is None else _densify(g, p) for g, p in zip(grads, params)]
            values = [tf.convert_to_tensor(p) for p in params]
            new_params, new_state = step(
                {k: tf.convert_to_tensor(v) for k, v in meta.items()}, values, grads,
                {k: tf.convert_to_tensor(v) for k, v in states.items()}, tf.cast(lr, tf.float32))
            ops = [p.assign(v) for p, v, a in zip(params, new_params, active) if a]
            ops += [states[k].assign(v) for k, v in new_state.items()]
            return tf.group(ops)

        distribution.extended.update(
            states["skipped"], body, args=(grads, all_vars, states, meta, learning_rate), group=False)

    def _step_fn(self, active: tuple):
        """`hrnn.step` for this optimizer's config on tensors, XLA-compiled if `jit_compile` (one per pattern of
        tensors with a gradient)."""
        if active not in self._steps:
            config, chunk_size = self.hrnn_config, self.chunk_size

            def step(meta, params, grads, state, lr):
                return hrnn.step(meta, config, params, grads, state, learning_rate=lr, active=list(active),
                                 chunk_size=chunk_size)

            self._steps[active] = tf.function(step, jit_compile=True, autograph=False) if self.jit_compile else step
        return self._steps[active]

    def finalize_variable_values(self, var_list):
        super().finalize_variable_values(var_list)
        if self.hrnn_config.use_attention and self.built and self._state_vars:
            for var, value in zip(self._trainable_variables, self.true_parameters()):
                var.assign(value)

    # -- Public extras ---------------------------------------------------------------------------------------
    @property
    def meta_parameters(self) -> dict[str, np.ndarray]:
        """The optimizer's own (meta-learned) weights, as numpy arrays."""
        return {k: v.numpy() for k, v in self._meta_vars.items()}

    @property
    def state(self) -> dict[str, tf.Tensor]:
        """The current optimizer state, in the layout of `lopt_tf.hrnn.init_state` without padding: per-parameter
        buffers with the parameter count as their last axis (empty before build)."""
        p = self._layout.num_params if self._state_vars else None
        return {k: tf.convert_to_tensor(v)[..., :p] if k in hrnn.PER_PARAMETER_KEYS else tf.convert_to_tensor(v)
                for k, v in self._state_vars.items()}

    @property
    def skipped_updates(self):
        """Number of tensor updates skipped so far because their gradient held a NaN or Inf."""
        return self._state_vars["skipped"] if self._state_vars else 0

    def true_parameters(self) -> list[tf.Tensor]:
        """The true parameters: the model's variables, or, with look-ahead on, the ones kept in the state."""
        return hrnn.true_params(self.hrnn_config, [tf.convert_to_tensor(v) for v in self._trainable_variables],
                                self.state)

    def get_config(self):
        config = super().get_config()
        config.update({"weights": self.weights_name, "hrnn_config": self.hrnn_config.to_dict(), "seed": self.seed,
                       "chunk_size": self.chunk_size, "state_dtype": self.state_dtype,
                       "jit_compile": self.jit_compile})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        weights = config.get("weights")
        if weights and weights not in available_weights() and not os.path.exists(weights):
            # A model saved elsewhere: the meta-weights come back from the saved optimizer variables, so start
            # from the initialisation of the stored architecture.
            warnings.warn(f"LearnedOptimizer weights {weights!r} not found; using the initialisation of the "
                          "stored architecture (saved optimizer variables, if any, restore the real values).")
            config = {**config, "weights": None}
        return super().from_config(config, custom_objects=custom_objects)


# `compile(optimizer="learned_optimizer")`: Keras resolves string identifiers among the registered objects.
keras.saving.get_custom_objects()["learned_optimizer"] = LearnedOptimizer
