"""SavedModel export of a weight set: meta-parameters, config and a serving signature of one step.

The exported module holds the meta-parameters as variables, the config as JSON, and two signatures on a single
flat float32 tensor of any length: `init_state(param)` and `step(param, grad, <state...>)`, both calling
`lopt_tf.hrnn` -- so a TF Serving / C++ / other-language user gets the same update rule.
"""

from __future__ import annotations

import json

import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout


class _ExportedOptimizer(tf.Module):
    def __init__(self, meta, config: HRNNConfig, info: dict):
        super().__init__(name="lopt_tf_hrnn")
        self.meta = {k.replace("/", "__"): tf.Variable(v, trainable=False, name=k.replace("/", "__"))
                     for k, v in meta.items()}
        self.config_json = tf.Variable(config.to_json(), trainable=False, dtype=tf.string)
        self.info_json = tf.Variable(json.dumps(info, sort_keys=True), trainable=False, dtype=tf.string)
        self._config = config
        spec = tf.TensorSpec([None], tf.float32)
        self._state_keys = sorted(hrnn.state_shapes(config, Layout(((None,),))))
        state_specs = [tf.TensorSpec(self._state_spec_shape(k), tf.int32 if k == "skipped" else tf.float32, name=k)
                       for k in self._state_keys]
        self.init_state = tf.function(self._init_state, input_signature=[spec])
        self.step = tf.function(self._step, input_signature=[tf.TensorSpec([None], tf.float32, name="param"),
                                                             tf.TensorSpec([None], tf.float32, name="grad"),
                                                             *state_specs])

    def _state_spec_shape(self, key):
        """The state spec for a parameter of any length: its parameter axis unknown (the last axis of the
        per-parameter buffers, e.g. h0 [n0, None]; nominal_count's one tensor: [None])."""
        shape = hrnn.state_shapes(self._config, Layout(((1,),)))[key]
        unknown = len(shape) - 1 if key in hrnn.PER_PARAMETER_KEYS else None if key in ("h1", "h2", "skipped") else 0
        return [None if i == unknown else d for i, d in enumerate(shape)]

    def _meta(self):
        return {k.replace("__", "/"): v for k, v in self.meta.items()}

    def _init_state(self, param):
        return hrnn.init_state(self._meta(), self._config, [param])

    def _step(self, param, grad, *state_values):
        state = dict(zip(self._state_keys, state_values))
        (new_param,), new_state = hrnn.step(self._meta(), self._config, [param], [grad], state)
        return {"param": new_param, **{f"state_{k}": v for k, v in new_state.items()}}


def export_saved_model(path: str, weights="init", hrnn_config: HRNNConfig | None = None) -> None:
    """Write `weights` (a shipped name, an `.npz` path, or None for the initialisation) as a SavedModel."""
    from lopt_tf.weights import load_weights

    meta, config, info = load_weights(weights, hrnn_config)
    module = _ExportedOptimizer(meta, config, info)
    tf.saved_model.save(module, path, signatures={"init_state": module.init_state, "step": module.step})


def load_saved_model(path: str):
    """Read back (meta, config, info) from a SavedModel written by `export_saved_model`."""
    loaded = tf.saved_model.load(path)
    config = HRNNConfig.from_json(loaded.config_json.numpy().decode())
    meta = {k.replace("__", "/"): v.numpy() for k, v in loaded.meta.items()}
    return meta, config, json.loads(loaded.info_json.numpy().decode())
