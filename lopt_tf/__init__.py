"""lopt_tf: the hierarchical-RNN learned optimizer (Wichrowska et al., 2017) for Keras 3 / TensorFlow.

    model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss=...)

`lopt_tf.hrnn` holds the update rule as pure functions (`init_meta`, `init_state`, `step`);
`LearnedOptimizer` is the Keras wrapper around the same `step`.
"""

from lopt_tf.config import HRNNConfig
from lopt_tf.export import export_saved_model, load_saved_model
from lopt_tf.hrnn import init_meta, init_state, meta_shapes, num_meta_params, step
from lopt_tf.optimizer import LearnedOptimizer
from lopt_tf.weights import DEFAULT_WEIGHTS, WeightsError, available_weights, load_weights, save_weights

__version__ = "0.1.0"
__all__ = [
    "HRNNConfig", "LearnedOptimizer", "WeightsError", "DEFAULT_WEIGHTS", "available_weights", "load_weights",
    "save_weights", "export_saved_model", "load_saved_model", "init_meta", "init_state", "step", "meta_shapes",
    "num_meta_params",
]
