"""The synthetic ConvNet family ("conv_no_decay"): the same function as the Keras layers it stands for, its
initialisation rule, XLA, every spec reachable, and spatially structured, class-balanced data."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import problems
from problems import ConvClassifier, ProblemSampler
from problems.datasets import random_image_data

CONV = ProblemSampler.named("conv_no_decay")


def _instances():
    names, out = set(), []
    for seed in range(60):
        p = CONV.sample(seed)
        if p.name not in names:
            names.add(p.name)
            out.append(p)
    return out


def test_every_spec_is_reachable_valid_and_without_weight_decay():
    instances = _instances()
    assert len(instances) == 7 and problems.families("conv_no_decay") == ("conv_no_decay",)
    assert {p.batch_norm for p in instances} == {True, False}
    for p in instances:
        assert p.family == "conv_no_decay" and p.weight_decay == 0.0 and p.name.endswith("_wd0")
        assert p.x.shape[0] == 2000 and p.x.shape[3] == 1 and p.num_classes == 10
        params = p.init_params(5)
        assert [tuple(t.shape) for t in params] == [tuple(s) for s in p.param_shapes]
        f0 = problems.validate(p, params=params)
        assert 1.0 < f0 < 10.0  # cross-entropy of 10 classes near log(10) at init
        loss, grads = p.gradient(params, tf.constant(2), 3)
        assert np.isfinite(float(loss)) and all(np.isfinite(g.numpy()).all() for g in grads)
        assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)  # every tensor gets a gradient


def _keras_model(p):
    layers = [keras.Input(p.x.shape[1:])]
    act = p.activation
    for channels, kernel, stride in p.conv:
        layers.append(keras.layers.Conv2D(channels, kernel, strides=stride, padding="same",
                                          use_bias=not p.batch_norm))
        if p.batch_norm:
            layers.append(keras.layers.BatchNormalization(epsilon=1e-3))
        layers.append(keras.layers.Activation(act))
    layers += [keras.layers.Flatten(), keras.layers.Dense(p.num_classes)]
    return keras.Sequential(layers)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_logits_equal_the_keras_layers(batch_norm):
    x, y = random_image_data(9, 64, seed=1)
    p = ConvClassifier(x, y, 10, 16, conv=((4, 3, 1), (6, 3, 2)), activation="tanh", batch_norm=batch_norm,
                       weight_decay=0.0)
    params = [t + 0.1 * tf.random.stateless_normal(t.shape, [k, 0]) for k, t in enumerate(p.init_params(0))]
    model = _keras_model(p)
    assert [tuple(w.shape) for w in model.weights if w.trainable] == [tuple(s) for s in p.param_shapes]
    for w, value in zip([w for w in model.weights if w.trainable], params):
        w.assign(value)
    expected = model(x, training=True)  # BatchNorm with batch statistics
    np.testing.assert_allclose(p.logits(params, tf.constant(x)).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, expected)
    np.testing.assert_allclose(float(p.objective(params)), float(ce), rtol=1e-5)


def test_initialisation_rules():
    x, y = random_image_data(8, 32, seed=2)
    fan_in = ConvClassifier(x, y, 10, 8, conv=((64, 3, 1),), weight_decay=0.0)
    kernel, bias, dense, _ = fan_in.init_params(0)
    assert np.std(kernel.numpy()) == pytest.approx(1.2 / 3.0, rel=0.05)  # 1.2 / sqrt(3 * 3 * 1)
    assert np.std(dense.numpy()) == pytest.approx(1.2 / np.sqrt(8 * 8 * 64), rel=0.05)
    small = ConvClassifier(x, y, 10, 8, conv=((64, 3, 1),), init_stddev=0.01, weight_decay=0.0)
    assert np.std(small.init_params(0)[0].numpy()) == pytest.approx(0.01, rel=0.05)
    bn = ConvClassifier(x, y, 10, 8, conv=((16, 3, 2),), batch_norm=True, weight_decay=0.0)
    kernel, scale, shift, dense, _ = bn.init_params(0)
    assert (scale.numpy() == 1).all() and (shift.numpy() == 0).all() and dense.shape == (4 * 4 * 16, 10)
    assert "_bn" in bn.name and "_init0.01" in small.name


@pytest.mark.parametrize("batch_norm", [False, True])
def test_xla_gradient_matches_graph(batch_norm):
    p = next(q for q in _instances() if q.batch_norm == batch_norm)
    params = p.init_params(0)
    graph = tf.function(lambda ps: p.gradient(ps, tf.constant(4), 9))(params)
    xla = tf.function(lambda ps: p.gradient(ps, tf.constant(4), 9), jit_compile=True)(params)
    np.testing.assert_allclose(float(xla[0]), float(graph[0]), rtol=1e-5)
    for a, b in zip(graph[1], xla[1]):
        # Relative to the tensor's norm: BatchNorm divides by small batch variances, where XLA's different
        # summation order moves single entries by up to ~2%.
        assert np.linalg.norm(a.numpy() - b.numpy()) <= 1e-2 * np.linalg.norm(a.numpy()) + 1e-6


def test_random_image_data_is_structured_balanced_and_reproducible():
    x, y = random_image_data(12, 5000, seed=4)
    assert x.shape == (5000, 12, 12, 1) and x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    neighbours = np.corrcoef(x[:, :, :-1, 0].ravel(), x[:, :, 1:, 0].ravel())[0, 1]
    assert neighbours > 0.4  # blurred: adjacent pixels correlate, unlike the i.i.d. image-like MLP inputs
    counts = np.bincount(y, minlength=10)
    assert counts.min() > 100 and counts.max() < 2000  # standardised teacher outputs: no class takes over
    x2, y2 = random_image_data(12, 5000, seed=4)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_conv_meta_training_and_validation_sets():
    """"with_conv_no_decay" adds the ConvNets to "with_nn_no_decay" (other families and weights unchanged);
    "nn_conv_no_decay" splits its held-out problems evenly between no-decay MLPs and ConvNets."""
    train = ProblemSampler.named("with_conv_no_decay")
    assert train.families[:-1] == ProblemSampler.named("with_nn_no_decay").families  # names, weights, factories
    assert train.families[-1].name == "conv_no_decay" and train.families[-1].weight == 36
    assert abs(train.probabilities()["conv_no_decay"] - 36 / (36 + 153)) < 1e-12
    val = ProblemSampler.named("nn_conv_no_decay")
    assert val.probabilities() == {"wide_mlp_no_decay": 0.25, "wide_mlp_large_data_no_decay": 0.25,
                                   "conv_no_decay": 0.5}
    drawn = [val.choose(1_000_000 + i)[0].name for i in range(400)]
    assert 0.4 < drawn.count("conv_no_decay") / 400 < 0.6
    assert val.sample(1_000_003).family == "conv_no_decay" and val.sample(1_000_003).weight_decay == 0.0
