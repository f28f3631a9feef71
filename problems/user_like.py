"""Problems like the models users train, on freshly sampled data: small MLPs and ConvNets (plain, BatchNorm or
LayerNorm) and small recurrent nets (vanilla RNN or GRU), trained with softmax cross-entropy.

Data comes from a fixed generative process rather than a finite dataset: the mini-batch at inner step t is drawn
afresh with stateless philox RNG keyed on (seed, t), so a 10,000-step run never sees an example twice and its
minibatch noise never goes away (nothing is memorised, as on real data with augmentation). Two kinds of process:

* teacher-labelled (`VectorTeacherSource`, `ImageTeacherSource`, `SequenceTeacherSource`): random inputs
  (gaussian vectors, blurred random fields, gaussian sequences), labelled by the argmax of a random network's
  standardised outputs. The boundaries are sharp, so a student's loss keeps falling slowly for 10^4 steps;
* class-conditional (`VectorMixtureSource`, `ImageTemplateSource`, `SequenceTemplateSource`): the class first,
  then the input from a class-dependent distribution (a nonlinearly embedded Gaussian mixture, noisy class
  templates). Posteriors are smooth and a student gets close to its floor within a few thousand steps.

Either way each label is replaced by a uniform random class with probability `label_noise`, so even a perfect
student keeps a non-zero loss and gradient noise (`bayes_loss`: exact floor for teacher sources, a lower bound
for class-conditional ones, whose classes also overlap). The objective is the loss on a fixed evaluation sample
of `eval_size` examples from the same process (drawn once from the source's seed, never trained on): a noise-free
estimate of the expected loss, whose minimiser is the minibatch loss's.

Parameters are functional (a list of tensors). Normalisation layers are written out: BatchNorm in training mode
(statistics of the minibatch, or of the evaluation sample in the objective) and LayerNorm over the last axis
(Keras's `LayerNormalization()` default), each with a learned scale (init 1) and offset (init 0); a layer followed
by a normalisation has no bias. The moments are computed without `tf.nn.moments`'s stop_gradient, so that
second derivatives through the normalisation are exact. Kernels start as Keras's Glorot (variance
2 / (fan_in + fan_out)), recurrent kernels at N(0, 1 / hidden), biases at 0.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from problems.base import Problem, make_key, split_key, stateless_normal, stateless_uniform

_INPUT_SALT = 301
_FLIP_SALT = 302
_CLASS_SALT = 303
_EVAL_SALT = 304
_STATS_SALT = 305
_STATS_SAMPLES = 4096
_NORM_EPSILON = 1e-3  # Keras's BatchNormalization and LayerNormalization default
NORMS = ("none", "batch", "layer")
_ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.tanh, "sigmoid": tf.sigmoid}


def _eager(fn):
    """Run `fn` eagerly even when called while a `tf.function` is being traced (data built once, as constants)."""
    with tf.init_scope():
        return fn()


def noisy_label_entropy(num_classes: int, label_noise: float) -> float:
    """Cross-entropy of the best possible predictor when each label is replaced by a uniform random class with
    probability `label_noise`: the entropy of (1 - ε + ε/k, ε/k, ..., ε/k)."""
    k, eps = num_classes, label_noise
    top, other = 1.0 - eps + eps / k, eps / k
    return -top * math.log(top) - ((k - 1) * other * math.log(other) if other > 0 else 0.0)


def conv2d(x, kernel, stride: int = 1):
    """SAME-padded 2-D convolution (as `tf.nn.conv2d`) written as one matmul over image patches: XLA on CPU runs
    it several times faster than its own convolution for these small images, and it is twice differentiable."""
    k, channels = int(kernel.shape[0]), int(x.shape[-1])
    size_h, size_w = int(x.shape[1]), int(x.shape[2])
    out_h, out_w = -(-size_h // stride), -(-size_w // stride)
    pad_h, pad_w = max((out_h - 1) * stride + k - size_h, 0), max((out_w - 1) * stride + k - size_w, 0)
    x = tf.pad(x, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    patches = tf.concat([x[:, i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride]
                         for i in range(k) for j in range(k)], axis=-1)
    return tf.tensordot(patches, tf.reshape(kernel, [k * k * channels, -1]), axes=1)


# --- data sources ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class _Source:
    """A generative process of labelled examples, drawn from a stateless key; its fixed parts (teacher weights,
    class means, templates) are drawn once from `seed` with numpy. Each clean label is replaced by a uniform
    random class with probability `label_noise`. Builds its evaluation sample (`x_eval`, `y_eval`) once."""

    num_classes: int
    seed: int
    label_noise: float = 0.02
    eval_size: int = 1024

    def __post_init__(self):
        if self.num_classes < 2 or not 0.0 <= self.label_noise < 1.0:
            raise ValueError("need num_classes >= 2 and label_noise in [0, 1)")
        rng = np.random.default_rng([int(self.seed), 31])
        object.__setattr__(self, "_fixed", tuple(np.asarray(w, np.float32) for w in self._draw_fixed(rng)))

        def build():
            key = make_key(self.seed, 0)
            self._prepare(split_key(key, _STATS_SALT))
            x, y = self.sample(split_key(key, _EVAL_SALT), self.eval_size)
            return x.numpy(), y.numpy()

        x, y = _eager(build)
        object.__setattr__(self, "x_eval", x)
        object.__setattr__(self, "y_eval", y)

    # subclass interface
    @property
    def input_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def tag(self) -> str:
        raise NotImplementedError

    def _draw_fixed(self, rng) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _prepare(self, key) -> None:
        """Eager set-up after the fixed parts are drawn (teacher output statistics)."""

    def _clean_sample(self, key, n) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    # shared
    @property
    def bayes_loss(self) -> float:
        """The expected cross-entropy of the best predictor if the clean labels were a function of the inputs
        (teacher sources: exact; class-conditional sources: a lower bound, their classes also overlap)."""
        return noisy_label_entropy(self.num_classes, self.label_noise)

    def _corrupt(self, labels, key) -> tf.Tensor:
        n = tf.shape(labels)
        flip = stateless_uniform(n, split_key(key, _FLIP_SALT)) < self.label_noise
        return tf.where(flip, self._uniform_class(n, split_key(key, _CLASS_SALT)), labels)

    def _uniform_class(self, n, key) -> tf.Tensor:
        c = tf.cast(tf.floor(stateless_uniform(n, key) * self.num_classes), tf.int32)
        return tf.minimum(c, self.num_classes - 1)

    def sample(self, key, n) -> tuple[tf.Tensor, tf.Tensor]:
        """`n` fresh examples (inputs float32 [n, *input_shape], labels int32 [n]), deterministic in `key`."""
        x, labels = self._clean_sample(split_key(key, _INPUT_SALT), n)
        return x, self._corrupt(labels, key)


@dataclasses.dataclass(frozen=True, eq=False)
class _TeacherSource(_Source):
    """Inputs from a fixed distribution; clean label = the class of the largest of a random teacher network's
    outputs, each standardised over the input distribution (so that no class dominates). Decision boundaries
    are sharp, so the loss keeps falling slowly for thousands of steps as a student sharpens its own."""

    def _inputs(self, key, n) -> tf.Tensor:
        raise NotImplementedError

    def _teacher_outputs(self, x) -> tf.Tensor:
        raise NotImplementedError

    def _prepare(self, key):
        out = self._teacher_outputs(self._inputs(key, _STATS_SAMPLES))
        object.__setattr__(self, "_mean", tf.reduce_mean(out, 0).numpy())
        object.__setattr__(self, "_std", (tf.math.reduce_std(out, 0) + 1e-6).numpy())

    def _clean_sample(self, key, n):
        x = self._inputs(key, n)
        scores = (self._teacher_outputs(x) - self._mean) / self._std
        return x, tf.argmax(scores, axis=1, output_type=tf.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class _ClassConditionalSource(_Source):
    """Class first (uniform), then the input from a class-dependent distribution (as real data is generated):
    the best predictor's posteriors are smooth, and `separation` sets how much the classes overlap."""

    separation: float = 1.0

    def _generate(self, classes, key) -> tf.Tensor:
        raise NotImplementedError

    def _clean_sample(self, key, n):
        classes = self._uniform_class(tf.reshape(n, [1]), split_key(key, _CLASS_SALT))
        return self._generate(classes, split_key(key, _INPUT_SALT)), classes


def _blur_taps(width: float) -> np.ndarray:
    """5 taps of a Gaussian of stddev `width` pixels, normalised so that blurring white noise along both axes
    (separably) keeps unit variance."""
    r = np.arange(-2, 3, dtype=np.float64)
    taps = np.exp(-r ** 2 / (2.0 * width ** 2))
    return taps / np.sqrt(np.sum(taps ** 2))


def _blur(images, width: float):
    """Separable 5x5 Gaussian blur of [n, h, w, c] images (zero padding), written with shifted adds."""
    taps, (h, w) = _blur_taps(width), images.shape[1:3]
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
    rows = sum(float(t) * padded[:, i:i + h] for i, t in enumerate(taps))
    return sum(float(t) * rows[:, :, i:i + w] for i, t in enumerate(taps))


def _random_field(key, n, size: int, channels: int, width: float):
    """Image-like random fields: white noise blurred by a Gaussian of `width` pixels (unit variance per pixel
    away from the border, neighbouring pixels correlated)."""
    return _blur(stateless_normal(tf.stack([n, size, size, channels]), key), width)


@dataclasses.dataclass(frozen=True, eq=False)
class VectorTeacherSource(_TeacherSource):
    """x ~ N(0, I_dim); teacher: one ReLU layer of `teacher_width` units (N(0, 1/dim) weights, N(0, 1) biases)
    and a linear map to the classes."""

    dim: int = 16
    teacher_width: int = 8

    @property
    def input_shape(self):
        return (self.dim,)

    @property
    def tag(self):
        return f"d{self.dim}t{self.teacher_width}"

    def _draw_fixed(self, rng):
        return (rng.standard_normal((self.dim, self.teacher_width)) / np.sqrt(self.dim),
                rng.standard_normal(self.teacher_width),
                rng.standard_normal((self.teacher_width, self.num_classes)))

    def _inputs(self, key, n):
        return stateless_normal(tf.stack([n, self.dim]), key)

    def _teacher_outputs(self, x):
        w1, b1, w2 = self._fixed
        return tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2)


@dataclasses.dataclass(frozen=True, eq=False)
class VectorMixtureSource(_ClassConditionalSource):
    """A Gaussian mixture in a `latent`-dimensional space, embedded nonlinearly in `dim` dimensions:
    z ~ N(μ_c, I) with class means μ_c ~ N(0, separation² I), x = tanh(z A) + 0.3 z B (random A, B)."""

    dim: int = 16
    latent: int = 8

    @property
    def input_shape(self):
        return (self.dim,)

    @property
    def tag(self):
        return f"mix_d{self.dim}l{self.latent}s{self.separation:g}"

    def _draw_fixed(self, rng):
        scale = 1.0 / np.sqrt(self.latent)
        return (rng.standard_normal((self.num_classes, self.latent)) * self.separation,
                rng.standard_normal((self.latent, self.dim)) * scale,
                rng.standard_normal((self.latent, self.dim)) * scale)

    def _generate(self, classes, key):
        means, a, b = self._fixed
        n = tf.shape(classes)[0]
        z = tf.gather(means, classes) + stateless_normal(tf.stack([n, self.latent]), key)
        return tf.tanh(tf.matmul(z, a)) + 0.3 * tf.matmul(z, b)


@dataclasses.dataclass(frozen=True, eq=False)
class ImageTeacherSource(_TeacherSource):
    """Random fields (`_random_field`), `size` x `size` x `channels`. Teacher: a 3x3 convolution to
    `teacher_channels` ReLU maps, 2x2 average pooling, and a linear map to the classes."""

    size: int = 8
    channels: int = 1
    teacher_channels: int = 4
    blur: float = 1.0

    @property
    def input_shape(self):
        return (self.size, self.size, self.channels)

    @property
    def tag(self):
        return f"s{self.size}c{self.channels}t{self.teacher_channels}"

    def _draw_fixed(self, rng):
        pooled = (-(-self.size // 2)) ** 2 * self.teacher_channels
        return (rng.standard_normal((3, 3, self.channels, self.teacher_channels)) / np.sqrt(9 * self.channels),
                rng.standard_normal(self.teacher_channels) * 0.5,
                rng.standard_normal((pooled, self.num_classes)) / np.sqrt(pooled))

    def _inputs(self, key, n):
        return _random_field(key, n, self.size, self.channels, self.blur)

    def _teacher_outputs(self, x):
        kernel, bias, w = self._fixed
        h = tf.nn.avg_pool2d(tf.nn.relu(conv2d(x, kernel) + bias), 2, 2, "SAME")
        return tf.matmul(tf.reshape(h, [tf.shape(h)[0], -1]), w)


@dataclasses.dataclass(frozen=True, eq=False)
class ImageTemplateSource(_ClassConditionalSource):
    """Noisy class templates: x = g · (field + separation · T_c), a random field (`_random_field`) plus the
    class's fixed template (itself a random field), times a per-example contrast g ~ U(0.5, 1.5)."""

    size: int = 8
    channels: int = 1
    blur: float = 1.0

    @property
    def input_shape(self):
        return (self.size, self.size, self.channels)

    @property
    def tag(self):
        return f"tpl_s{self.size}c{self.channels}s{self.separation:g}"

    def _draw_fixed(self, rng):
        white = rng.standard_normal((self.num_classes, self.size, self.size, self.channels)).astype(np.float32)
        return (_eager(lambda: _blur(tf.constant(white), self.blur).numpy()),)

    def _generate(self, classes, key):
        (templates,) = self._fixed
        n = tf.shape(classes)[0]
        field = _random_field(split_key(key, 1), n, self.size, self.channels, self.blur)
        gain = 0.5 + stateless_uniform(tf.stack([n, 1, 1, 1]), split_key(key, 2))
        return gain * (field + self.separation * tf.gather(templates, classes))


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceTeacherSource(_TeacherSource):
    """Sequences of `length` steps of x_t ~ N(0, I_dim). Teacher: a tanh RNN of `teacher_width` units whose
    recurrent matrix is `memory` times a random orthogonal one (memory of a few steps), read out linearly from
    its last state."""

    length: int = 8
    dim: int = 4
    teacher_width: int = 8
    memory: float = 0.8

    @property
    def input_shape(self):
        return (self.length, self.dim)

    @property
    def tag(self):
        return f"l{self.length}d{self.dim}t{self.teacher_width}"

    def _draw_fixed(self, rng):
        q, _ = np.linalg.qr(rng.standard_normal((self.teacher_width, self.teacher_width)))
        return (rng.standard_normal((self.dim, self.teacher_width)) / np.sqrt(self.dim) * 1.5,
                self.memory * q,
                rng.standard_normal((self.teacher_width, self.num_classes)))

    def _inputs(self, key, n):
        return stateless_normal(tf.stack([n, self.length, self.dim]), key)

    def _teacher_outputs(self, x):
        w_in, w_rec, w_out = self._fixed
        h = tf.zeros([tf.shape(x)[0], self.teacher_width])
        for t in range(self.length):
            h = tf.tanh(tf.matmul(x[:, t], w_in) + tf.matmul(h, w_rec))
        return tf.matmul(h, w_out)


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceTemplateSource(_ClassConditionalSource):
    """Noisy class sequences: x_t = ε_t + M_c[t], ε_t ~ N(0, I_dim), with a fixed template M_c of entries
    N(0, separation² / length): the evidence is spread over the whole sequence, so the net must integrate it."""

    length: int = 8
    dim: int = 4

    @property
    def input_shape(self):
        return (self.length, self.dim)

    @property
    def tag(self):
        return f"tpl_l{self.length}d{self.dim}s{self.separation:g}"

    def _draw_fixed(self, rng):
        shape = (self.num_classes, self.length, self.dim)
        return (rng.standard_normal(shape) * self.separation / np.sqrt(self.length),)

    def _generate(self, classes, key):
        (templates,) = self._fixed
        n = tf.shape(classes)[0]
        return stateless_normal(tf.stack([n, self.length, self.dim]), key) + tf.gather(templates, classes)


# --- students ---------------------------------------------------------------------------------------------------------
def _moments(h, axes):
    """Mean and (biased) variance; unlike `tf.nn.moments`, the variance keeps its gradient through the mean, so
    second derivatives are exact."""
    mean = tf.reduce_mean(h, axes, keepdims=True)
    return mean, tf.reduce_mean(tf.square(h - mean), axes, keepdims=True)


def _normalise(h, norm: str, scale, offset):
    """BatchNorm (statistics over every axis but the last) or LayerNorm (over the last axis)."""
    rank = len(h.shape)
    axes = list(range(rank - 1)) if norm == "batch" else [rank - 1]
    mean, var = _moments(h, axes)
    return (h - mean) * tf.math.rsqrt(var + _NORM_EPSILON) * scale + offset


@dataclasses.dataclass(frozen=True, eq=False)
class _FreshDataClassifier(Problem):
    """Shared parts: parameter roles and initialisation, cross-entropy loss, minibatches from `source`."""

    source: _Source
    batch_size: int = 64

    def _roles(self) -> list[tuple[str, tuple[int, ...], int, int]]:
        """(role, shape, fan_in, fan_out) of each parameter; role: kernel, recurrent, bias, scale or offset."""
        raise NotImplementedError

    def logits(self, params, x) -> tf.Tensor:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def bayes_loss(self) -> float:
        return self.source.bayes_loss

    @property
    def param_roles(self) -> tuple[str, ...]:
        return tuple(role for role, *_ in self._roles())

    @property
    def param_shapes(self):
        return tuple(shape for _, shape, _, _ in self._roles())

    def init_params(self, seed):
        params = []
        for k, (role, shape, fan_in, fan_out) in enumerate(self._roles()):
            if role in ("bias", "offset"):
                params.append(tf.zeros(shape))
            elif role == "scale":
                params.append(tf.ones(shape))
            else:
                std = math.sqrt(1.0 / fan_in) if role == "recurrent" else math.sqrt(2.0 / (fan_in + fan_out))
                params.append(stateless_normal(shape, [seed, k]) * std)
        return params

    def _loss(self, params, x, y, evaluation: bool = False):
        logits = self._evaluation_logits(list(params), x) if evaluation else self.logits(list(params), x)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))

    def _evaluation_logits(self, params, x) -> tf.Tensor:
        """`logits`, as computed for the objective's large evaluation sample."""
        return self.logits(params, x)

    def objective(self, params):
        return self._loss(params, tf.constant(self.source.x_eval), tf.constant(self.source.y_eval), evaluation=True)

    def stochastic_loss(self, params, key):
        x, y = self.source.sample(key, self.batch_size)
        return self._loss(params, x, y)

    def _suffix(self) -> str:
        return f"_k{self.num_classes}_b{self.batch_size}_n{self.source.label_noise:g}"


def _check_norm(norm: str):
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class FreshMLP(_FreshDataClassifier):
    """Fully connected classifier: hidden layers (dense, optional BatchNorm / LayerNorm, activation), then a dense
    map to the logits. Inputs of any shape are flattened."""

    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    norm: str = "none"
    default_family = "fresh_mlp"

    def __post_init__(self):
        _check_norm(self.norm)
        super().__post_init__()

    @property
    def name(self) -> str:
        widths = "x".join(str(h) for h in self.hidden)
        norm = "" if self.norm == "none" else f"_{self.norm[0]}n"
        return f"fresh_mlp_{self.source.tag}_h{widths}_{self.activation}{norm}{self._suffix()}"

    def _roles(self):
        roles, fan_in = [], int(np.prod(self.source.input_shape))
        for width in self.hidden:
            roles.append(("kernel", (fan_in, width), fan_in, width))
            roles += ([("scale", (width,), 0, 0), ("offset", (width,), 0, 0)] if self.norm != "none"
                      else [("bias", (width,), 0, 0)])
            fan_in = width
        return roles + [("kernel", (fan_in, self.num_classes), fan_in, self.num_classes),
                        ("bias", (self.num_classes,), 0, 0)]

    def logits(self, params, x):
        act, i = _ACTIVATIONS[self.activation], 0
        h = tf.reshape(x, [tf.shape(x)[0], -1])
        for _ in self.hidden:
            h = tf.matmul(h, params[i])
            if self.norm != "none":
                h, i = _normalise(h, self.norm, params[i + 1], params[i + 2]), i + 3
            else:
                h, i = h + params[i + 1], i + 2
            h = act(h)
        return tf.matmul(h, params[i]) + params[i + 1]


@dataclasses.dataclass(frozen=True, eq=False)
class FreshConvNet(_FreshDataClassifier):
    """ConvNet: `conv` layers (channels, kernel, stride) with SAME padding, each followed by the optional
    BatchNorm / LayerNorm and `activation`, then flatten and a dense map to the logits."""

    conv: tuple[tuple[int, int, int], ...] = ((8, 3, 1), (16, 3, 2))
    activation: str = "relu"
    norm: str = "none"
    default_family = "fresh_conv"

    def __post_init__(self):
        _check_norm(self.norm)
        super().__post_init__()

    @property
    def name(self) -> str:
        layers = "-".join(f"{c}k{k}s{s}" for c, k, s in self.conv)
        norm = "" if self.norm == "none" else f"_{self.norm[0]}n"
        return f"fresh_conv_{self.source.tag}_{layers}_{self.activation}{norm}{self._suffix()}"

    def _roles(self):
        size, _, channels = self.source.input_shape
        roles = []
        for out, kernel, stride in self.conv:
            roles.append(("kernel", (kernel, kernel, channels, out), kernel * kernel * channels,
                          kernel * kernel * out))
            roles += ([("scale", (out,), 0, 0), ("offset", (out,), 0, 0)] if self.norm != "none"
                      else [("bias", (out,), 0, 0)])
            channels, size = out, -(-size // stride)
        flat = size * size * channels
        return roles + [("kernel", (flat, self.num_classes), flat, self.num_classes),
                        ("bias", (self.num_classes,), 0, 0)]

    def logits(self, params, x, convolution=conv2d):
        act, h, i = _ACTIVATIONS[self.activation], x, 0
        for _, _, stride in self.conv:
            h = convolution(h, params[i], stride)
            if self.norm != "none":
                h, i = _normalise(h, self.norm, params[i + 1], params[i + 2]), i + 3
            else:
                h, i = h + params[i + 1], i + 2
            h = act(h)
        h = tf.reshape(h, [tf.shape(h)[0], -1])
        return tf.matmul(h, params[i]) + params[i + 1]

    def _evaluation_logits(self, params, x):
        # The same function with TF's own convolution: on 1,024 examples, patches cost several times more than
        # tf.nn.conv2d without XLA (the trainer validates without it), and about as much with it.
        return self.logits(params, x, convolution=lambda h, kernel, stride: tf.nn.conv2d(h, kernel, stride, "SAME"))


@dataclasses.dataclass(frozen=True, eq=False)
class FreshRNN(_FreshDataClassifier):
    """Recurrent classifier over the source's sequences: a vanilla tanh RNN or a GRU (Keras's gate layout, with
    the reset gate applied before the recurrent matmul) of `hidden` units, and a dense map from its last state
    to the logits. Parameters: input kernel, recurrent kernel, bias (gates z, r, h stacked for the GRU), then the
    readout kernel and bias."""

    hidden: int = 16
    cell: str = "gru"
    default_family = "fresh_rnn"

    def __post_init__(self):
        if self.cell not in ("rnn", "gru"):
            raise ValueError(f"cell must be 'rnn' or 'gru', not {self.cell!r}")
        if len(self.source.input_shape) != 2:
            raise ValueError("FreshRNN needs a sequence source (inputs [length, dim])")
        super().__post_init__()

    @property
    def name(self) -> str:
        return f"fresh_{self.cell}_{self.source.tag}_h{self.hidden}{self._suffix()}"

    def _roles(self):
        dim, h = self.source.input_shape[1], self.hidden
        gates = 3 * h if self.cell == "gru" else h
        return [("kernel", (dim, gates), dim, gates), ("recurrent", (h, gates), h, gates), ("bias", (gates,), 0, 0),
                ("kernel", (h, self.num_classes), h, self.num_classes), ("bias", (self.num_classes,), 0, 0)]

    def logits(self, params, x):
        w_in, w_rec, bias, w_out, b_out = params
        n, h_units = tf.shape(x)[0], self.hidden
        h = tf.zeros([n, h_units])
        length = self.source.input_shape[0]
        inputs = tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), w_in), [n, length, -1]) + bias
        for t in range(length):
            if self.cell == "rnn":
                h = tf.tanh(inputs[:, t] + tf.matmul(h, w_rec))
            else:
                xz, xr, xh = tf.split(inputs[:, t], 3, axis=1)
                z = tf.sigmoid(xz + tf.matmul(h, w_rec[:, :h_units]))
                r = tf.sigmoid(xr + tf.matmul(h, w_rec[:, h_units:2 * h_units]))
                candidate = tf.tanh(xh + tf.matmul(r * h, w_rec[:, 2 * h_units:]))
                h = z * h + (1.0 - z) * candidate
        return tf.matmul(h, w_out) + b_out
