"""Mini-batched classifiers on synthetic data: k-class softmax regression and (opt-in) small MLPs and ConvNets.

The original (`problems/problem_generator.py` in `tensorflow/models` `research/learned_optimizer/`) supported
only 2 classes and scored only `logits[:, 0]` with a sigmoid loss; here the loss is softmax cross-entropy over
all k classes (docs/differences_from_original.md#k-class-softmax-loss). `single_logit_loss=True` reproduces the
original 2-class loss for comparisons. Mini-batches are drawn with replacement by stateless index sampling from
the constant dataset.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from problems.base import Problem, split_key, stateless_normal

_BATCH_SALT = 101
DEFAULT_WEIGHT_DECAY = 1e-3  # the original's; problem names leave it out, so every original name is unchanged
_ACTIVATIONS = {"sigmoid": tf.sigmoid, "relu": tf.nn.relu, "tanh": tf.tanh}


@dataclasses.dataclass(frozen=True, eq=False)
class _Classifier(Problem):
    """Shared data handling and loss: mean cross-entropy + weight_decay · mean over tensors of ‖param‖²."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    batch_size: int
    weight_decay: float = dataclasses.field(default=DEFAULT_WEIGHT_DECAY, kw_only=True)
    single_logit_loss: bool = dataclasses.field(default=False, kw_only=True)

    def __post_init__(self):
        if self.single_logit_loss and self.num_classes != 2:
            raise ValueError("single_logit_loss reproduces the original 2-class loss; it needs num_classes == 2")
        if self.y.min() < 0 or self.y.max() >= self.num_classes:
            raise ValueError("labels must lie in [0, num_classes)")
        super().__post_init__()

    def logits(self, params, x):
        raise NotImplementedError

    @property
    def _decay_suffix(self) -> str:
        """Name suffix for a non-default weight decay ("" for the original's, so original names are unchanged)."""
        return "" if self.weight_decay == DEFAULT_WEIGHT_DECAY else f"_wd{self.weight_decay:g}"

    def init_params(self, seed):
        # Original rule: N(0, 1) · 1.2 / sqrt(shape[0]).
        return [stateless_normal(s, [seed, k]) * (1.2 / np.sqrt(s[0])) for k, s in enumerate(self.param_shapes)]

    def _loss(self, params, x, y):
        logits = self.logits(params, x)
        if self.single_logit_loss:
            labels = tf.cast(y, tf.float32)
            data_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits[:, 0]))
        else:
            data_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        decay = tf.add_n([tf.reduce_sum(tf.square(p)) for p in params]) / len(params)
        return data_loss + self.weight_decay * decay

    def objective(self, params):
        return self._loss(params, tf.constant(self.x), tf.constant(self.y))

    def stochastic_loss(self, params, key):
        n = self.x.shape[0]
        idx = tf.random.stateless_uniform(
            [self.batch_size], seed=split_key(key, _BATCH_SALT), minval=0, maxval=n, dtype=tf.int32, alg="philox"
        )
        return self._loss(params, tf.gather(tf.constant(self.x), idx), tf.gather(tf.constant(self.y), idx))


@dataclasses.dataclass(frozen=True, eq=False)
class SoftmaxRegression(_Classifier):
    """Linear classifier W (d, k), b (k,)."""

    default_family = "softmax_regression"

    @property
    def name(self) -> str:
        return f"softmax_regression_d{self.x.shape[1]}_k{self.num_classes}_b{self.batch_size}"

    @property
    def param_shapes(self):
        return ((self.x.shape[1], self.num_classes), (self.num_classes,))

    def logits(self, params, x):
        return tf.matmul(x, params[0]) + params[1]


@dataclasses.dataclass(frozen=True, eq=False)
class MLPClassifier(_Classifier):
    """Fully connected classifier d → hidden… → k with `activation` (sigmoid in the original set)."""

    hidden: tuple[int, ...] = (8,)
    activation: str = "sigmoid"
    default_family = "mlp"

    @property
    def name(self) -> str:
        widths = "x".join(str(h) for h in self.hidden)
        return (f"mlp_d{self.x.shape[1]}_h{widths}_k{self.num_classes}_{self.activation}_b{self.batch_size}"
                f"{self._decay_suffix}")

    @property
    def param_shapes(self):
        sizes = (self.x.shape[1], *self.hidden, self.num_classes)
        shapes = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            shapes += [(fan_in, fan_out), (fan_out,)]
        return tuple(shapes)

    def logits(self, params, x):
        act = _ACTIVATIONS[self.activation]
        h = x
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = tf.matmul(h, params[2 * i]) + params[2 * i + 1]
            if i < n_layers - 1:
                h = act(h)
        return h


@dataclasses.dataclass(frozen=True, eq=False)
class ConvClassifier(_Classifier):
    """ConvNet on images x (n, h, w, c): `conv` layers (channels, kernel, stride), SAME padding, each followed by
    `activation` (after batch normalisation with batch statistics and a learned scale and shift, if
    `batch_norm`), then flatten and an affine map to k logits.

    Kernels and the affine map start at N(0, init_stddev²), or N(0, 1.2² / fan_in) (the original rule, fan_in =
    kernel² · input channels) when `init_stddev` is None; biases likewise (the original rule uses their length);
    BatchNorm scales start at 1 and shifts at 0 (and a convolution followed by BatchNorm has no bias).
    Why: deep ConvNets with BatchNorm are what users train, and the MLP families do not show how a learned
    optimizer behaves on them (the shipped weights blow up ResNet50V2 in its first steps; meta_runs/step_scale).
    """

    conv: tuple[tuple[int, int, int], ...] = ((8, 3, 1),)
    activation: str = "relu"
    batch_norm: bool = False
    init_stddev: float | None = None
    default_family = "conv"

    @property
    def name(self) -> str:
        layers = "-".join(f"{c}k{k}s{st}" for c, k, st in self.conv)
        extras = ("_bn" if self.batch_norm else "") + ("" if self.init_stddev is None else f"_init{self.init_stddev:g}")
        return (f"conv_s{self.x.shape[1]}_{layers}_k{self.num_classes}_{self.activation}{extras}"
                f"_b{self.batch_size}{self._decay_suffix}")

    def _roles(self) -> list[tuple[str, tuple[int, ...]]]:
        """(role, shape) of every parameter: kernel, bias, scale or shift."""
        roles, channels, size = [], self.x.shape[3], self.x.shape[1]
        for out_channels, kernel, stride in self.conv:
            roles.append(("kernel", (kernel, kernel, channels, out_channels)))
            roles += ([("scale", (out_channels,)), ("shift", (out_channels,))] if self.batch_norm
                      else [("bias", (out_channels,))])
            channels, size = out_channels, -(-size // stride)
        return roles + [("kernel", (size * size * channels, self.num_classes)), ("bias", (self.num_classes,))]

    @property
    def param_shapes(self):
        return tuple(shape for _, shape in self._roles())

    def init_params(self, seed):
        params = []
        for k, (role, shape) in enumerate(self._roles()):
            if role in ("scale", "shift"):
                params.append(tf.fill(shape, 1.0 if role == "scale" else 0.0))
                continue
            fan_in = int(np.prod(shape[:-1])) if role == "kernel" else shape[0]
            std = self.init_stddev if self.init_stddev is not None else 1.2 / np.sqrt(fan_in)
            params.append(stateless_normal(shape, [seed, k]) * std)
        return params

    def logits(self, params, x):
        act = _ACTIVATIONS[self.activation]
        h, i = x, 0
        for _, _, stride in self.conv:
            h = tf.nn.conv2d(h, params[i], strides=stride, padding="SAME")
            if self.batch_norm:
                mean, var = tf.nn.moments(h, axes=[0, 1, 2])
                h = tf.nn.batch_normalization(h, mean, var, params[i + 2], params[i + 1], 1e-3)
                i += 3
            else:
                h, i = h + params[i + 1], i + 2
            h = act(h)
        h = tf.reshape(h, [tf.shape(h)[0], -1])
        return tf.matmul(h, params[i]) + params[i + 1]
