"""Any Keras classifier as a pure problem through `model.stateless_call`, and as a normal model under `fit`.

The same object serves both uses:

* meta-training / pure use: `init_params`, `objective`, `gradient` are functions of the trainable weights only
  (`stateless_call(trainable, non_trainable, x)`), so a real Keras model can be a meta-training task;
* Keras use: `make_model(seed)` returns a fresh model carrying exactly `init_params(seed)`, `loss_fn()` the matching
  Keras loss and `train_dataset()` / `eval_dataset()` the data, for `model.compile(optimizer=...)` + `model.fit`.

`init_params(seed)` re-draws every trainable weight from its own layer's initializer, cloned with an explicit
per-variable seed, so initialisation follows the architecture's rules without any global random state (the
builder's own initial values are discarded). Non-trainable weights (BatchNorm moving statistics) are held fixed at
their built values in the pure view; with `training=True` BatchNorm uses batch statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from problems.base import Problem, derive_seed, split_key

_BATCH_SALT = 301
# weight attribute -> the layer attributes that may hold its initializer
_INITIALIZER_ATTRIBUTES = {
    "kernel": ("kernel_initializer", "depthwise_initializer"),
    "bias": ("bias_initializer",),
    "gamma": ("gamma_initializer",),
    "beta": ("beta_initializer",),
    "depthwise_kernel": ("depthwise_initializer",),
    "pointwise_kernel": ("pointwise_initializer",),
    "embeddings": ("embeddings_initializer",),
}


def _walk_layers(layer):
    yield layer
    for sub in getattr(layer, "layers", ()):
        yield from _walk_layers(sub)


def variable_initializers(model: keras.Model) -> list:
    """The initializer of each trainable variable of `model`, in `model.trainable_variables` order."""
    by_id = {}
    for layer in _walk_layers(model):
        for attribute, initializer_names in _INITIALIZER_ATTRIBUTES.items():
            variable = getattr(layer, attribute, None)
            initializers = [getattr(layer, n) for n in initializer_names if getattr(layer, n, None) is not None]
            if isinstance(variable, keras.Variable) and initializers:
                by_id[id(variable)] = keras.initializers.get(initializers[0])
    missing = [v.path for v in model.trainable_variables if id(v) not in by_id]
    if missing:
        raise ValueError(f"no initializer found for trainable variables {missing[:5]}")
    return [by_id[id(v)] for v in model.trainable_variables]


def seeded_initial_weights(model: keras.Model, seed: int) -> list[tf.Tensor]:
    """Fresh values for `model.trainable_variables`, each from its layer's initializer with a derived seed."""
    values = []
    for index, (variable, initializer) in enumerate(zip(model.trainable_variables, variable_initializers(model))):
        config = initializer.get_config()
        if "seed" in config:
            initializer = type(initializer).from_config({**config, "seed": derive_seed(seed, index)})
        values.append(tf.convert_to_tensor(initializer(tuple(variable.shape), dtype="float32")))
    return values


def normalise_uint8(x: tf.Tensor) -> tf.Tensor:
    """uint8 pixels → float32 in [0, 1]."""
    return tf.cast(x, tf.float32) / 255.0


@dataclasses.dataclass(frozen=True, eq=False)
class KerasProblem(Problem):
    """A Keras classifier (logits output) with mean sparse softmax cross-entropy on constant in-memory data.

    `x_train` may be stored compactly (e.g. uint8) and is mapped by `preprocess` in-graph. `objective` is the loss
    over the first `objective_examples` training examples (all when None): the full-batch objective of the
    meta-objective, over a fixed subset when the whole set is too expensive to evaluate at every step.
    """

    problem_name: str
    build_model: Callable[[], keras.Model]
    x_train: np.ndarray
    y_train: np.ndarray
    batch_size: int
    x_eval: np.ndarray | None = None
    y_eval: np.ndarray | None = None
    preprocess: Callable[[tf.Tensor], tf.Tensor] = normalise_uint8
    training: bool = False
    objective_examples: int | None = None
    default_family = "keras"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "model", self.build_model())
        fixed = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]
        object.__setattr__(self, "_non_trainable", fixed)

    @property
    def name(self) -> str:
        return self.problem_name

    @property
    def param_shapes(self):
        return tuple(tuple(int(d) for d in v.shape) for v in self.model.trainable_variables)

    def init_params(self, seed):
        return seeded_initial_weights(self.model, seed)

    @staticmethod
    def loss_fn() -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def logits(self, params, x) -> tf.Tensor:
        outputs, _ = self.model.stateless_call(list(params), self._non_trainable, self.preprocess(x),
                                               training=self.training)
        return outputs

    def loss(self, params, x, y) -> tf.Tensor:
        return self.loss_fn()(y, self.logits(params, x))

    def objective(self, params):
        count = self.objective_examples or self.x_train.shape[0]
        return self.loss(params, tf.constant(self.x_train[:count]), tf.constant(self.y_train[:count]))

    def stochastic_loss(self, params, key):
        idx = tf.random.stateless_uniform([self.batch_size], seed=split_key(key, _BATCH_SALT), minval=0,
                                          maxval=self.x_train.shape[0], dtype=tf.int32, alg="philox")
        return self.loss(params, tf.gather(tf.constant(self.x_train), idx), tf.gather(tf.constant(self.y_train), idx))

    # --- the Keras (fit) view -------------------------------------------------------------------------------
    def make_model(self, seed: int) -> keras.Model:
        """A fresh model whose trainable weights are exactly `init_params(seed)`."""
        model = self.build_model()
        for variable, value in zip(model.trainable_variables, self.init_params(seed)):
            variable.assign(value)
        return model

    def _dataset(self, x, y, batch_size, shuffle_seed) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size or self.batch_size).map(lambda a, b: (self.preprocess(a), b))

    def train_dataset(self, shuffle_seed: int | None = 0, batch_size: int | None = None) -> tf.data.Dataset:
        """(inputs, labels) batches for `fit`, preprocessed like the pure view."""
        return self._dataset(self.x_train, self.y_train, batch_size, shuffle_seed)

    def eval_dataset(self, batch_size: int | None = None) -> tf.data.Dataset:
        if self.x_eval is None:
            raise ValueError(f"{self.name} has no evaluation split")
        return self._dataset(self.x_eval, self.y_eval, batch_size, None)
