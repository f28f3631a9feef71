"""lopt_tf: the hierarchical-RNN learned optimizer (Wichrowska et al., 2017) for Keras 3 / TensorFlow.

    model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss=...)

`lopt_tf.hrnn` holds the update rule as pure functions (`init_meta`, `init_state`, `step`);
`LearnedOptimizer` is the Keras wrapper around the same `step`.
"""

import os as _os

if _os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(
        f"lopt_tf needs Keras's TensorFlow backend, but KERAS_BACKEND={_os.environ['KERAS_BACKEND']!r}. "
        "Unset it or set KERAS_BACKEND=tensorflow before importing keras.")

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"lopt_tf needs Keras's TensorFlow backend, but Keras runs on {_keras.backend.backend()!r} "
        "(set in ~/.keras/keras.json). Set KERAS_BACKEND=tensorflow before importing keras.")

from lopt_tf.config import HRNNConfig  # noqa: E402
from lopt_tf.export import export_saved_model, load_saved_model  # noqa: E402
from lopt_tf.hrnn import init_meta, init_state, meta_shapes, num_meta_params, step  # noqa: E402
from lopt_tf.optimizer import LearnedOptimizer  # noqa: E402
from lopt_tf.weights import DEFAULT_WEIGHTS, WeightsError, available_weights, load_weights, save_weights  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "HRNNConfig", "LearnedOptimizer", "WeightsError", "DEFAULT_WEIGHTS", "available_weights", "load_weights",
    "save_weights", "export_saved_model", "load_saved_model", "init_meta", "init_state", "step", "meta_shapes",
    "num_meta_params",
]
