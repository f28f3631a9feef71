"""Meta-training problems: every family is finite, non-negative, seed-reproducible and XLA-compilable; known minima;
the sampler reaches every family."""

import math

import numpy as np
import pytest
import tensorflow as tf

import problems
from problems import (
    Bowl, Family, Function2D, LogObjective, MatMulAlgorithm, Noisy, Norm, Oscillating, ProblemSampler, Quadratic,
    Rescale, Slow, SoftmaxRegression, Sparse, Sum,
)
from problems.datasets import make_classification, random_mlp_data

ALL = ProblemSampler.named("with_nn_no_decay")  # every family
FAMILIES = ALL.names


def _small_instance(family):
    """A representative, small instance of a family (the large quadratics are tested at n = 784)."""
    for seed in range(50):
        p = ALL.build(family, seed)
        if p.num_params <= 1024:
            return p
    return p


def _finite(tensors):
    return all(np.isfinite(np.asarray(t)).all() for t in tensors)


def test_family_lists():
    assert "mlp" not in problems.families() and "sparse_mlp" not in problems.families()  # no NNs by default
    assert {"mlp", "sparse_mlp"} <= set(problems.families("with_mlp"))
    assert set(problems.families("with_nn")) == set(problems.families("with_mlp")) | {"wide_mlp"}
    wide = [ALL.build("wide_mlp", seed) for seed in range(20)]
    assert min(p.param_shapes[0][0] for p in wide) >= 100 and {p.num_classes for p in wide} == {2, 10}
    assert set(problems.families("with_nn_data")) == set(problems.families("with_nn")) | {"wide_mlp_large_data"}
    large = [ALL.build("wide_mlp_large_data", seed) for seed in range(12)]
    assert {p.x.shape[0] for p in large} == {10000} and max(p.param_shapes[0][0] for p in large) == 784
    assert {bool((p.x >= 0).all()) for p in large} == {True, False}  # image-like and gaussian inputs
    assert set(problems.families("with_nn_no_decay")) == set(problems.families("with_nn_data")) | {
        "wide_mlp_no_decay", "wide_mlp_large_data_no_decay"}
    assert set(problems.families("nn_no_decay")) == {"wide_mlp_no_decay", "wide_mlp_large_data_no_decay"}
    for family, n in (("wide_mlp_no_decay", 1000), ("wide_mlp_large_data_no_decay", 10000)):
        p = ALL.build(family, 3)
        assert p.weight_decay == 0.0 and p.x.shape[0] == n and p.name.endswith("_wd0")
        params = p.init_params(0)
        logits = p.logits(params, tf.constant(p.x))
        cross_entropy = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=p.y, logits=logits))
        assert float(p.objective(params)) == pytest.approx(float(cross_entropy), rel=1e-6)  # no decay term
    assert not large[0].name.endswith("_wd0") and large[0].weight_decay == 1e-3
    expected = {"quadratic", "quadratic_large", "bowl", "bowl_noisy", "softmax_regression", "softmax_regression_noisy",
                "test_function", "test_function_noisy", "matmul", "log_objective", "rescale", "norm", "norm_noisy",
                "sum", "sum_noisy", "sparse", "slow_oscillating"}
    assert set(problems.families()) == expected
    original = ProblemSampler.named("original")
    assert sum(f.weight for f in original.families) == 101  # the original 101 specs
    with pytest.raises(ValueError):
        ProblemSampler.named("nope")


@pytest.mark.parametrize("family", FAMILIES)
def test_family_finite_nonnegative_reproducible(family):
    p = _small_instance(family)
    assert p.family == family and p.name and p.num_params == sum(math.prod(s) for s in p.param_shapes)
    params = p.init_params(7)
    assert [tuple(t.shape) for t in params] == [tuple(s) for s in p.param_shapes]
    assert all(t.dtype == tf.float32 for t in params)
    assert problems.validate(p, params=params) >= 0
    loss, grads = p.gradient(params, tf.constant(3), 11)
    assert np.isfinite(float(loss)) and float(loss) >= 0 and _finite(grads)
    assert [g.shape for g in grads] == [t.shape for t in params]
    # Same seeds -> same everything.
    for a, b in zip(params, p.init_params(7)):
        np.testing.assert_array_equal(a, b)
    loss2, grads2 = p.gradient(params, tf.constant(3), 11)
    assert float(loss2) == float(loss)
    for a, b in zip(grads, grads2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_instances_are_seed_reproducible(family):
    seed = 3
    a, b = ALL.build(family, seed), ALL.build(family, seed)
    assert a.name == b.name
    pa = a.init_params(1)
    np.testing.assert_array_equal(float(a.objective(pa)), float(b.objective(pa)))


@pytest.mark.parametrize("family", FAMILIES)
def test_family_xla_loss_and_gradient(family):
    p = _small_instance(family)
    params = p.init_params(0)

    @tf.function(jit_compile=True)
    def compiled(ps, step):
        loss, grads = p.gradient(ps, step, 5)
        return p.objective(ps), loss, grads

    objective, loss, grads = compiled(params, tf.constant(2))
    eager_loss, eager_grads = p.gradient(params, tf.constant(2), 5)
    np.testing.assert_allclose(float(objective), float(p.objective(params)), rtol=1e-4)
    np.testing.assert_allclose(float(loss), float(eager_loss), rtol=1e-4)
    for a, b in zip(grads, eager_grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * (1 + float(tf.reduce_max(tf.abs(b)))))


def test_objective_in_xla_while_loop_with_second_derivatives():
    """The meta-trainer's pattern: gradient steps inside tf.while_loop under XLA, differentiated end to end."""
    p = Sum((Noisy(Quadratic.random(5, 0), 0.1), Function2D("booth"), SoftmaxRegression(
        *make_classification(64, 4, 3, 1.0, 0), 3, 8)))
    params = p.init_params(0)

    @tf.function(jit_compile=True)
    def meta_value_and_grad(lr):
        with tf.GradientTape() as tape:
            tape.watch(lr)

            def body(step, ps, total):
                _, grads = p.gradient(ps, step, 9)
                ps = [x - lr * g for x, g in zip(ps, grads)]
                return step + 1, ps, total + p.objective(ps)

            # Differentiating a while_loop under XLA needs a static trip bound (maximum_iterations).
            _, _, total = tf.while_loop(lambda s, *_: s < 5, body, (tf.constant(0), params, tf.constant(0.0)),
                                        maximum_iterations=5)
        return total, tape.gradient(total, lr)

    value, d_lr = meta_value_and_grad(tf.constant(1e-3))
    assert np.isfinite(float(value)) and np.isfinite(float(d_lr)) and float(d_lr) != 0.0


def test_large_quadratic_builds_fast_and_compiles():
    import time

    start = time.perf_counter()
    p = Quadratic.random(2048, 0)
    assert time.perf_counter() - start < 1.0 and p.num_params == 2048
    grads = tf.function(lambda ps: p.gradient(ps, tf.constant(0), 0)[1], jit_compile=True)(p.init_params(0))
    assert _finite(grads)


# --- known minima ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(problems.FUNCTIONS))
def test_function_known_minima(name):
    p = Function2D(name)
    for argmin, value in problems.FUNCTIONS[name].minima:
        at = [tf.constant(argmin, tf.float32)]
        np.testing.assert_allclose(float(p.objective(at)), value, atol=1e-4)
        _, (grad,) = p.gradient(at, tf.constant(0), 0)
        assert float(tf.norm(grad)) < 2e-2, (name, grad)


def test_named_minima():
    cases = {"rosenbrock": (1.0, 1.0), "booth": (1.0, 3.0), "matyas": (0.0, 0.0), "beale": (3.0, 0.5),
             "ackley": (0.0, 0.0)}
    for name, xy in cases.items():
        assert float(Function2D(name).objective([tf.constant(xy)])) == pytest.approx(0.0, abs=1e-6)
    # Ackley's gradient at its minimum is finite (safe sqrt), and so is its Hessian.
    x = tf.constant([0.0, 0.0])
    with tf.GradientTape() as outer:
        outer.watch(x)
        _, (g,) = Function2D("ackley").gradient([x], tf.constant(0), 0)
        s = tf.reduce_sum(g)
    assert _finite([g, outer.gradient(s, x)])


def test_function_inits_within_ranges():
    for name, spec in problems.FUNCTIONS.items():
        for seed in range(20):
            (xy,) = Function2D(name).init_params(seed)
            if spec.low is not None:
                assert np.all(xy.numpy() >= np.array(spec.low)) and np.all(xy.numpy() <= np.array(spec.high))


def test_quadratic_bowl_norm_minima():
    q = Quadratic.random(20, 4)
    solution = np.linalg.solve(q.w.astype(np.float64), q.y.astype(np.float64)).astype(np.float32)
    assert float(q.objective([tf.constant(solution)])) < 1e-6
    assert float(Bowl(5.0, math.pi / 4).objective([tf.zeros(2)])) == 0.0
    np.testing.assert_allclose(float(Bowl(5.0).objective([tf.constant([1.0, 1.0])])), 0.5 * (5 + 1), rtol=1e-6)
    # Bowl with angle: the condition number of A^T A is kappa.
    a = Bowl(5.0, 0.3).matrix()
    assert np.linalg.cond(a.T @ a) == pytest.approx(5.0, rel=1e-4)
    n = Norm.random(10, 2.0, 1)
    solution = np.linalg.solve(n.w.astype(np.float64), n.y.astype(np.float64)).astype(np.float32)
    assert float(n.objective([tf.constant(solution)])) < 1e-3
    with pytest.raises(ValueError):
        Norm.random(5, 0.5, 0)


def test_quadratic_value_matches_numpy():
    q = Quadratic.random(7, 2)
    x = np.arange(7, dtype=np.float32) / 7
    expected = 0.5 * np.sum((q.w @ x - q.y) ** 2)
    np.testing.assert_allclose(float(q.objective([tf.constant(x)])), expected, rtol=1e-5)
    _, (g,) = q.gradient([tf.constant(x)], tf.constant(0), 0)
    np.testing.assert_allclose(g, q.w.T @ (q.w @ x - q.y), rtol=1e-4, atol=1e-4)


def test_matmul_known_algorithms_reach_zero():
    # Naive 2x2 algorithm with 8 products: product r = (i, j, k) multiplies A[i,k] by B[k,j].
    ta, tb = np.zeros((4, 8), np.float32), np.zeros((4, 8), np.float32)
    for r, (i, j, k) in enumerate(np.ndindex(2, 2, 2)):
        ta[2 * i + k, r] = 1
        tb[2 * k + j, r] = 1
    assert float(MatMulAlgorithm(2, 8).objective([tf.constant(ta), tf.constant(tb)])) < 1e-4
    # Strassen: 7 products. Index 0..3 = (11, 12, 21, 22).
    a = [[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0], [-1, 0, 1, 0], [0, 1, 0, -1]]
    b = [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, -1], [-1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
    strassen = [tf.constant(np.array(a, np.float32).T), tf.constant(np.array(b, np.float32).T)]
    assert float(MatMulAlgorithm(2, 7).objective(strassen)) < 1e-4
    # A random rank-5 attempt cannot be exact.
    p = MatMulAlgorithm(2, 5)
    assert float(p.objective(p.init_params(0))) > 0.5
    cols = p.init_params(0)[0]
    np.testing.assert_allclose(tf.norm(cols, axis=0), np.ones(5), rtol=1e-5)


# --- classification -------------------------------------------------------------------------------------------------
def test_softmax_regression_k_classes_and_minibatches():
    x, y = make_classification(300, 6, 4, 2.0, seed=0)
    assert x.shape == (300, 6) and set(np.unique(y)) == {0, 1, 2, 3}
    p = SoftmaxRegression(x, y, 4, 16)
    w, b = [tf.zeros((6, 4)), tf.zeros(4)]
    np.testing.assert_allclose(float(p.objective([w, b])), math.log(4), rtol=1e-6)  # uniform prediction
    random_params = p.init_params(5)
    l1, _ = p.gradient(random_params, tf.constant(0), 1)
    l2, _ = p.gradient(random_params, tf.constant(1), 1)
    assert float(l1) != float(l2)  # a different mini-batch at each step
    # A few full-batch gradient steps learn something.
    params = p.init_params(0)
    start = float(p.objective(params))
    for _ in range(50):
        _, grads = p.gradient(params, tf.constant(0), 0)
        params = [v - 0.5 * g for v, g in zip(params, grads)]
    assert float(p.objective(params)) < 0.7 * start
    with pytest.raises(ValueError):
        SoftmaxRegression(x, y, 4, 16, single_logit_loss=True)
    with pytest.raises(ValueError):
        SoftmaxRegression(x, y, 3, 16)


def test_single_logit_compat_loss():
    x, y = make_classification(100, 3, 2, 1.0, seed=1)
    p = SoftmaxRegression(x, y, 2, 10, single_logit_loss=True, weight_decay=0.0)
    w, b = tf.constant(np.ones((3, 2), np.float32)), tf.constant([0.5, -9.0])
    z = x @ np.ones(3, np.float32) + 0.5
    expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    np.testing.assert_allclose(float(p.objective([w, b])), expected, rtol=1e-5)


def test_random_mlp_data_has_both_classes():
    x, y = random_mlp_data(8, 1000, seed=3)
    assert x.shape == (1000, 8) and 0.3 < y.mean() < 0.7
    x2, y2 = random_mlp_data(8, 1000, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_random_mlp_data_image_like_inputs():
    x, y = random_mlp_data(300, 2000, seed=4, n_classes=10, inputs="image")
    assert x.min() == 0.0 and x.max() <= 1.0
    assert (x > 0).mean() == pytest.approx(0.2, abs=0.01)  # sparse, like MNIST's ~19% lit pixels
    assert len(np.unique(y)) >= 3  # a random teacher favours some classes
    with pytest.raises(ValueError, match="inputs"):
        random_mlp_data(3, 10, seed=0, inputs="uniform")


# --- transforms -----------------------------------------------------------------------------------------------------
def test_noisy_gradient_statistics_and_clean_objective():
    inner = Quadratic.random(200, 0)
    p = Noisy(inner, 2.0)
    params = p.init_params(0)
    _, (clean,) = inner.gradient(params, tf.constant(0), 0)
    _, (noisy,) = p.gradient(params, tf.constant(0), 0)
    _, (noisy_next,) = p.gradient(params, tf.constant(1), 0)
    assert np.std(noisy - clean) == pytest.approx(2.0, rel=0.2)
    assert not np.allclose(noisy, noisy_next)
    assert float(p.objective(params)) == float(inner.objective(params))
    assert p.family == "quadratic"


def test_sparse_gradient_zero_fraction():
    p = Sparse(Quadratic.random(1000, 0), 0.9)
    _, (g,) = p.gradient(p.init_params(0), tf.constant(0), 0)
    assert np.mean(g.numpy() == 0) == pytest.approx(0.9, abs=0.03)


def test_log_objective_value_and_gradient():
    inner = Bowl(5.0)
    p = LogObjective(inner)
    params = [tf.constant([0.3, -0.2])]
    f = float(inner.objective(params))
    np.testing.assert_allclose(float(p.objective(params)), math.log(f + 1e-6) - math.log(1e-6), rtol=1e-5)
    _, (g,) = p.gradient(params, tf.constant(0), 0)
    _, (gi,) = inner.gradient(params, tf.constant(0), 0)
    np.testing.assert_allclose(g, gi / (f + 1e-6), rtol=1e-5)
    assert float(p.objective([tf.zeros(2)])) == 0.0


def test_rescale_consistency():
    inner = Quadratic.random(10, 1)
    p = Rescale(inner, 100.0)
    x = inner.init_params(3)
    theta = p.init_params(3)
    np.testing.assert_allclose(theta[0], 100.0 * x[0], rtol=1e-6)
    np.testing.assert_allclose(float(p.objective(theta)), float(inner.objective(x)), rtol=1e-5)
    _, (g,) = p.gradient(theta, tf.constant(0), 0)
    _, (gi,) = inner.gradient(x, tf.constant(0), 0)
    np.testing.assert_allclose(g, gi / 100.0, rtol=1e-4)


def test_sum_keeps_each_sub_problem_noise():
    clean = Sum((Quadratic.random(3, 0), Quadratic.random(4, 1)))
    noisy = Sum((Noisy(Quadratic.random(3, 0), 0.5), Quadratic.random(4, 1)))
    params = clean.init_params(0)
    assert [p.shape for p in params] == [(3,), (4,)]
    _, g_clean = clean.gradient(params, tf.constant(0), 0)
    _, g_noisy = noisy.gradient(params, tf.constant(0), 0)
    assert not np.allclose(g_clean[0], g_noisy[0])  # the original dropped this noise
    np.testing.assert_array_equal(g_clean[1], g_noisy[1])
    assert float(noisy.objective(params)) == pytest.approx(
        float(Quadratic.random(3, 0).objective(params[:1]) + Quadratic.random(4, 1).objective(params[1:])))


def test_slow_and_oscillating():
    inner = Bowl(1.0)
    params = [tf.constant([0.4, 0.1])]
    slow = Slow(inner, 1e-3)
    np.testing.assert_allclose(float(slow.objective(params)), 1e-3 * float(inner.objective(params)), rtol=1e-6)
    _, (g,) = slow.gradient(params, tf.constant(0), 0)
    np.testing.assert_allclose(g, 1e-3 * params[0].numpy(), rtol=1e-5)
    ripple = Oscillating(inner, amplitude=1.0, wavelength=0.5)
    assert float(ripple.objective(params)) > float(inner.objective(params))
    assert float(ripple.objective([tf.zeros(2)])) == 0.0
    assert float(ripple.objective([tf.constant([0.5, 0.5])])) == pytest.approx(
        float(inner.objective([tf.constant([0.5, 0.5])])), abs=1e-5)


def test_gradient_is_deterministic_in_seed_and_step_and_varies_otherwise():
    p = Noisy(Sparse(Quadratic.random(50, 0), 0.5), 1.0)
    params = p.init_params(0)
    grads = {(seed, step): p.gradient(params, tf.constant(step), seed)[1][0].numpy()
             for seed in (0, 1) for step in (0, 1)}
    np.testing.assert_array_equal(grads[(0, 0)], p.gradient(params, tf.constant(0), 0)[1][0])
    assert len({g.tobytes() for g in grads.values()}) == 4


def test_no_global_random_state_is_used():
    np_state = np.random.get_state()[1].copy()
    problems.sample(1)
    p = ALL.build("mlp", 2)
    p.gradient(p.init_params(0), tf.constant(0), 0)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


# --- sampler --------------------------------------------------------------------------------------------------------
def test_sampler_reaches_every_family_with_its_weight():
    sampler = ProblemSampler.named("with_mlp")
    counts = {name: 0 for name in sampler.names}
    draws = 4000
    for seed in range(draws):
        counts[sampler.choose(seed)[0].name] += 1
    assert all(count > 0 for count in counts.values()), counts
    for name, probability in sampler.probabilities().items():
        assert counts[name] / draws == pytest.approx(probability, abs=0.03)
    assert problems.sample(5).name == problems.sample(5).name
    assert problems.sample(5).family in problems.families()


def test_every_spec_of_every_family_is_reachable_and_valid():
    """Many instances of every family (all specs, with high probability) are non-negative and finite at init."""
    sampler = ProblemSampler.named("with_nn_no_decay")
    for family in sampler.families:
        if family.name == "quadratic_large":
            continue
        names = set()
        for seed in range(20):
            p = sampler.build(family.name, seed)
            names.add(p.name)
            problems.validate(p, seed)
        assert len(names) >= min(3, family.weight), (family.name, names)


def test_families_are_data_and_extensible():
    custom = ProblemSampler(ProblemSampler.named("default").families + (
        Family("my_bowl", 100.0, lambda seed: Bowl(2.0)),))
    hits = [custom.sample(seed).family for seed in range(30)]
    assert hits.count("my_bowl") > 10
    with pytest.raises(ValueError):
        ProblemSampler((Family("a", 1, lambda s: Bowl(1.0)), Family("a", 1, lambda s: Bowl(1.0))))
    with pytest.raises(ValueError):
        ProblemSampler((Family("a", 0, lambda s: Bowl(1.0)),))


def test_validate_rejects_negative_and_nonfinite():
    class Negative(Bowl):
        def objective(self, params):
            return -super().objective(params) - 1.0

    with pytest.raises(ValueError, match="negative"):
        problems.validate(Negative(1.0))
    with pytest.raises(ValueError, match="finite"):
        problems.validate(Bowl(1.0), params=[tf.constant([np.inf, 0.0])])


def test_problems_package_is_independent_of_lopt_tf_and_train():
    import ast
    import pathlib

    for path in pathlib.Path(problems.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("lopt_tf", "train") for n in names), (path, names)
