"""Problems like users' models on freshly sampled data (problems/user_like.py), the weight-scale augmentation
(ScaleInit, Reparam) and the "user_like" / "user_like_valid" problem sets."""

import math

import numpy as np
import pytest
import tensorflow as tf

import problems
from problems import user_like as ul
from problems.adam_reference import adam_run
from problems.base import make_key
from problems.problem_sets import PROBLEM_SETS, USER_LIKE_HORIZONS, ProblemSampler, weight_scale_augmented
from problems.transforms import Reparam, ScaleInit

# One small instance of every model kind and normalisation, on every kind of data.
MODELS = {
    "mlp": lambda: ul.FreshMLP(ul.VectorMixtureSource(5, 1, eval_size=256, dim=12, separation=1.5), 16,
                               hidden=(16,), activation="relu"),
    "mlp_bn": lambda: ul.FreshMLP(ul.VectorTeacherSource(4, 2, eval_size=256, dim=8), 16, hidden=(16, 8),
                                  activation="tanh", norm="batch"),
    "mlp_ln": lambda: ul.FreshMLP(ul.VectorMixtureSource(4, 3, eval_size=256, dim=8), 16, hidden=(16,),
                                  activation="sigmoid", norm="layer"),
    "conv": lambda: ul.FreshConvNet(ul.ImageTemplateSource(4, 4, eval_size=128, size=8, channels=2), 8,
                                    conv=((4, 3, 1), (8, 3, 2))),
    "conv_bn": lambda: ul.FreshConvNet(ul.ImageTeacherSource(4, 5, eval_size=128, size=6, channels=1), 8,
                                       conv=((4, 3, 2),), norm="batch"),
    "conv_ln": lambda: ul.FreshConvNet(ul.ImageTemplateSource(3, 6, eval_size=128, size=7, channels=1), 8,
                                       conv=((4, 3, 2),), activation="tanh", norm="layer"),
    "rnn": lambda: ul.FreshRNN(ul.SequenceTemplateSource(4, 7, eval_size=128, length=5, dim=3), 8, hidden=6,
                               cell="rnn"),
    "gru": lambda: ul.FreshRNN(ul.SequenceTeacherSource(4, 8, eval_size=128, length=4, dim=3), 8, hidden=6,
                               cell="gru"),
}
_BUILT = {}


def _model(kind):
    if kind not in _BUILT:
        _BUILT[kind] = MODELS[kind]()
    return _BUILT[kind]


def _cross_entropy(problem, params, x, y):
    logits = problem.logits(list(params), x)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_gradient_is_the_tape_gradient_of_the_fresh_minibatch_loss(kind):
    p = _model(kind)
    params = p.init_params(3)
    assert [tuple(t.shape) for t in params] == [tuple(s) for s in p.param_shapes]
    loss, grads = p.gradient(params, tf.constant(5), 11)
    x, y = p.source.sample(make_key(11, 5), p.batch_size)
    assert x.shape == (p.batch_size, *p.source.input_shape) and y.shape == (p.batch_size,)
    with tf.GradientTape() as tape:
        tape.watch(params)
        expected = _cross_entropy(p, params, x, y)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)
    for g, e in zip(grads, tape.gradient(expected, params)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    # The objective: finite, non-negative cross-entropy on the fixed evaluation sample.
    f = problems.validate(p, params=params)
    assert f == pytest.approx(float(_cross_entropy(p, params, p.source.x_eval, p.source.y_eval)), rel=1e-6)
    assert 0.5 * math.log(p.num_classes) < f < 3 * math.log(p.num_classes)  # near chance at initialisation


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_minibatches_are_fresh_every_step_and_reproducible(kind):
    p = _model(kind)
    params = p.init_params(0)
    loss, grads = p.gradient(params, tf.constant(9999), 4)
    again, grads_again = p.gradient(params, tf.constant(9999), 4)
    assert float(loss) == float(again)
    for a, b in zip(grads, grads_again):
        np.testing.assert_array_equal(a, b)
    other, other_grads = p.gradient(params, tf.constant(10000), 4)
    assert float(other) != float(loss) and not np.allclose(other_grads[0], grads[0])
    x0, _ = p.source.sample(make_key(4, 0), 32)
    x1, _ = p.source.sample(make_key(4, 1), 32)
    assert not np.allclose(x0, x1)
    # The objective's sample is fixed: same value for a rebuilt source (same seed).
    assert float(p.objective(params)) == float(MODELS[kind]().objective(params))


def test_labels_are_balanced_with_the_stated_noise_rate():
    for source in (ul.VectorTeacherSource(5, 0, label_noise=0.1, eval_size=8, dim=16),
                   ul.SequenceTemplateSource(5, 0, label_noise=0.1, eval_size=8, length=6, dim=4, separation=2.0)):
        key = make_key(1, 2)
        x, y = source.sample(key, 20000)
        clean = source._clean_sample(ul.split_key(key, ul._INPUT_SALT), 20000)[1]
        np.testing.assert_array_equal(x, source._clean_sample(ul.split_key(key, ul._INPUT_SALT), 20000)[0])
        changed = float(np.mean(np.asarray(y) != np.asarray(clean)))
        assert changed == pytest.approx(0.1 * 4 / 5, abs=0.01)  # a random class equals the clean one 1/k of the time
        counts = np.bincount(np.asarray(clean), minlength=5) / 20000
        assert counts.min() > 0.08 and counts.max() < 0.4
    assert ul.noisy_label_entropy(10, 0.0) == 0.0
    assert ul.noisy_label_entropy(10, 0.02) == pytest.approx(0.1297, abs=1e-4)


def test_normalisation_params_and_layers():
    for kind, roles in (("mlp_bn", ("kernel", "scale", "offset", "kernel", "scale", "offset", "kernel", "bias")),
                        ("conv_bn", ("kernel", "scale", "offset", "kernel", "bias")),
                        ("conv_ln", ("kernel", "scale", "offset", "kernel", "bias")),
                        ("mlp", ("kernel", "bias", "kernel", "bias"))):
        p = _model(kind)
        assert p.param_roles == roles
        for role, value in zip(p.param_roles, p.init_params(0)):
            if role == "scale":
                np.testing.assert_array_equal(value, 1.0)
            if role in ("offset", "bias"):
                np.testing.assert_array_equal(value, 0.0)
    assert "_bn_" in _model("mlp_bn").name and "_ln_" in _model("conv_ln").name
    h = tf.random.stateless_normal([16, 5, 5, 3], [1, 2]) * 3.0 + 1.0
    scale, offset = tf.constant([1.0, 2.0, 0.5]), tf.constant([0.0, 1.0, -1.0])
    batch = ul._normalise(h, "batch", scale, offset)
    np.testing.assert_allclose(tf.reduce_mean(batch, [0, 1, 2]), offset, atol=1e-5)
    np.testing.assert_allclose(tf.math.reduce_std(batch, [0, 1, 2]), scale, rtol=1e-3)
    layer = ul._normalise(h, "layer", scale[0], offset[0])
    np.testing.assert_allclose(tf.reduce_mean(layer, -1), 0.0, atol=1e-5)
    # The learned scale and offset change the loss (they are used), and the LayerNorm net's output of one
    # example does not depend on the rest of the batch, while the BatchNorm net's does.
    for kind, per_example in (("conv_ln", True), ("mlp_bn", False)):
        p = _model(kind)
        params = p.init_params(1)
        x = tf.constant(p.source.x_eval[:8])
        alone = p.logits(params, x[:1])[0]
        assert np.allclose(alone, p.logits(params, x)[0], atol=1e-5) == per_example
        i = p.param_roles.index("scale")
        moved = list(params)
        moved[i] = params[i] * 2.0
        moved[i + 1] = params[i + 1] + 0.5
        assert float(p.objective(moved)) != float(p.objective(params))


def test_patch_convolution_equals_tf_conv2d():
    for size, kernel, stride, channels in ((8, 3, 1, 3), (8, 3, 2, 2), (7, 3, 2, 1), (9, 5, 2, 2)):
        x = tf.random.stateless_normal([2, size, size, channels], [0, size])
        w = tf.random.stateless_normal([kernel, kernel, channels, 4], [1, size])
        np.testing.assert_allclose(ul.conv2d(x, w, stride), tf.nn.conv2d(x, w, stride, "SAME"), atol=1e-4)


def test_xla_gradient_equals_graph_gradient():
    p = _model("conv_bn")
    params = p.init_params(2)
    graph = tf.function(lambda ps, step: (p.objective(ps), *p.gradient(ps, step, 5)))
    xla = tf.function(lambda ps, step: (p.objective(ps), *p.gradient(ps, step, 5)), jit_compile=True)
    f, loss, grads = graph(params, tf.constant(7))
    f_xla, loss_xla, grads_xla = xla(params, tf.constant(7))
    np.testing.assert_allclose(float(f_xla), float(f), rtol=1e-4)
    np.testing.assert_allclose(float(loss_xla), float(loss), rtol=1e-4)
    for a, b in zip(grads_xla, grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * (1 + float(tf.reduce_max(tf.abs(b)))))


@pytest.mark.parametrize("kind", ["mlp_bn", "gru"])
def test_second_order_gradient_through_gradient_is_finite(kind):
    """The meta-trainer's pattern: a few steps on the minibatch gradient, differentiated w.r.t. the step size."""
    p = _model(kind)
    params = p.init_params(0)
    lr = tf.constant(0.1)
    with tf.GradientTape() as tape:
        tape.watch(lr)
        ps = params
        for step in range(3):
            _, grads = p.gradient(ps, tf.constant(step), 1)
            ps = [a - lr * g for a, g in zip(ps, grads)]
        meta_loss = p.objective(ps)
    d_lr = tape.gradient(meta_loss, lr)
    assert np.isfinite(float(d_lr)) and float(d_lr) != 0.0
    # Central finite difference of the same three steps agrees with it.
    def unrolled(rate):
        ps = params
        for step in range(3):
            _, grads = p.gradient(ps, tf.constant(step), 1)
            ps = [a - rate * g for a, g in zip(ps, grads)]
        return float(p.objective(ps))
    fd = (unrolled(0.1 + 1e-2) - unrolled(0.1 - 1e-2)) / 2e-2
    assert float(d_lr) == pytest.approx(fd, rel=0.05, abs=1e-3)


def test_scale_init_and_reparam():
    inner = _model("mlp")
    n = len(inner.param_shapes)
    scales = tuple(0.5 + 0.5 * i for i in range(n))
    base = inner.init_params(4)
    scaled = ScaleInit(inner, scales)
    for a, b, s in zip(scaled.init_params(4), base, scales):
        np.testing.assert_allclose(a, s * b, rtol=1e-6)
    assert scaled.family == inner.family and "_init" in scaled.name
    reparam = Reparam(inner, scales)
    theta = reparam.init_params(4)
    assert float(reparam.objective(theta)) == pytest.approx(float(inner.objective(base)), rel=1e-5)
    loss, grads = reparam.gradient(theta, tf.constant(2), 3)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        x, y = inner.source.sample(make_key(3, 2), inner.batch_size)
        expected = _cross_entropy(inner, [t / s for t, s in zip(theta, scales)], x, y)
    for g, e in zip(grads, tape.gradient(expected, theta)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        ScaleInit(inner, scales[:-1])
    with pytest.raises(ValueError):
        Reparam(inner, (0.0,) * n)


def test_weight_scale_augmentation_draws_from_the_seed():
    factory = weight_scale_augmented(lambda seed: _model("rnn"), init_range=(0.3, 3.0), reparam_range=(0.1, 10.0))
    kinds = set()
    for seed in range(40):
        p = factory(seed)
        assert p.name == factory(seed).name  # deterministic
        layers = []
        while hasattr(p, "inner"):
            layers.append(type(p).__name__)
            if isinstance(p, ScaleInit):
                assert all(0.3 <= s <= 3.0 for s in p.scales)
            if isinstance(p, Reparam):
                assert all(0.1 <= s <= 10.0 for s in p.scales)
            p = p.inner
        kinds.add(tuple(layers))
    assert kinds == {(), ("ScaleInit",), ("Reparam",), ("Reparam", "ScaleInit")}


def test_user_like_sets():
    train, valid = ProblemSampler.named("user_like"), ProblemSampler.named("user_like_valid")
    expected = {"user_mlp", "user_mlp_bn", "user_mlp_ln", "user_conv", "user_conv_bn", "user_conv_ln", "user_rnn"}
    assert set(train.names) == set(valid.names) == expected
    assert {train.choose(seed)[0].name for seed in range(300)} == expected  # every family is sampled
    assert USER_LIKE_HORIZONS == (100, 10000)
    for family in expected:
        p = valid.build(family, 10**6)
        assert p.family == family and not hasattr(p, "inner")  # no augmentation
        assert isinstance(p.source, ul._ClassConditionalSource)  # the data Adam fits well
        assert {"bn": "batch", "ln": "layer"}.get(family.rpartition("_")[2], "none") == getattr(p, "norm", "none")
    teacher = ProblemSampler.named("user_like_teacher")
    assert set(teacher.names) == expected
    for family in ("user_mlp_ln", "user_conv", "user_rnn"):
        p = teacher.build(family, 5)
        assert not hasattr(p, "inner") and isinstance(p.source, ul._TeacherSource)
        assert all(spec[0] == "teacher" for spec in teacher.families[0].factory.specs)
    trained = [train.sample(seed) for seed in range(12)]
    assert any(hasattr(p, "inner") for p in trained)
    # Neither MNIST nor the evaluation's problems: every problem is a fresh-data model on a synthetic source.
    for p in trained:
        while hasattr(p, "inner"):
            p = p.inner
        assert isinstance(p, ul._FreshDataClassifier) and isinstance(p.source, ul._Source)
    assert {"user_like", "user_like_valid", "user_like_teacher"} <= set(PROBLEM_SETS)


def test_adam_reference_lowers_the_loss():
    p = _model("mlp")
    curve = adam_run(p, 60, learning_rate=1e-2, seed=0, chunk=30, jit_compile=False)
    assert [s for s, _ in curve] == [0, 30, 60]
    assert curve[-1][1] < 0.8 * curve[0][1]


def test_user_like_default_set_is_both_sets_at_equal_total_weight():
    mixed = ProblemSampler.named("user_like_default")
    user, default = ProblemSampler.named("user_like"), ProblemSampler.named("default")
    assert mixed.names == user.names + default.names
    probabilities = mixed.probabilities()
    assert sum(probabilities[n] for n in user.names) == pytest.approx(0.5)
    for name, p in default.probabilities().items():  # the synthetic families keep their relative weights
        assert probabilities[name] == pytest.approx(0.5 * p)
    drawn = [mixed.choose(seed)[0].name in user.names for seed in range(400)]
    assert 0.4 < np.mean(drawn) < 0.6
