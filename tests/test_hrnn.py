"""The pure update rule: sizes, first-step behaviour, every switch, meta-gradients, non-finite handling."""

import dataclasses
import functools

import numpy as np
import pytest
import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout, Segments

DEFAULT = HRNNConfig()


def quadratic(n=12, seed=0, dtype=tf.float32):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.normal(size=(n, n)), dtype)
    y = tf.constant(rng.normal(size=(n,)), dtype)
    return lambda ps: 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(w, ps[0]) + ps[1] - y))


def grads_of(loss, params):
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = loss(params)
    return value, tape.gradient(value, params)


def one_step(config, params, grads, seed=0, meta=None, **kw):
    meta = hrnn.init_meta(config) if meta is None else meta
    state = hrnn.init_state(meta, config, params, seed)
    return hrnn.step(meta, config, params, grads, state, **kw), state


def test_default_sizes_match_the_original():
    assert hrnn.num_meta_params(DEFAULT) == 8349
    assert DEFAULT.num_features == 12
    assert DEFAULT.per_parameter_state_size == 21
    assert dataclasses.replace(DEFAULT, use_attention=True).per_parameter_state_size == 22
    assert hrnn.num_meta_params(dataclasses.replace(DEFAULT, use_attention=True)) == 8349 + 14


@pytest.mark.parametrize("config", [DEFAULT, HRNNConfig(use_attention=True), HRNNConfig(level_sizes=(4,)),
                                    HRNNConfig(dynamic_output_scale=False, use_relative_lr=False)])
def test_state_size_per_parameter_equals_documented_count(config):
    params = [tf.zeros([3, 5]), tf.zeros([7])]
    state = hrnn.init_state(hrnn.init_meta(config), config, params)
    per_param = sum(int(np.prod(v.shape[:-1])) for k, v in state.items() if k in hrnn.PER_PARAMETER_KEYS)
    assert per_param == config.per_parameter_state_size
    assert all(state[k].shape[-1] == 22 for k in state if k in hrnn.PER_PARAMETER_KEYS)  # the parameter: last


def test_init_meta_is_deterministic_and_matches_shapes():
    a, b = hrnn.init_meta_numpy(DEFAULT, 3), hrnn.init_meta_numpy(DEFAULT, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert {k: v.shape for k, v in a.items()} == hrnn.meta_shapes(DEFAULT)
    assert not np.array_equal(a["l0/gate_kernel"], hrnn.init_meta_numpy(DEFAULT, 4)["l0/gate_kernel"])
    np.testing.assert_allclose(a["readout/shortcut"].mean(), 0.25, atol=0.1)
    assert np.all(a["readout/lr_kernel"] == 0) and a["stepsize_offset"] == -1.0


def test_first_step_momenta_equal_gradient_and_direction_has_unit_rms():
    params = [tf.zeros([50]), tf.zeros([30])]
    grads = [tf.random.stateless_normal([50], [1, 2]), 3.0 * tf.random.stateless_normal([30], [1, 3])]
    (new_params, new_state), state = one_step(DEFAULT, params, grads)
    g = tf.concat(grads, 0)
    np.testing.assert_allclose(new_state["accum"], np.repeat(g.numpy()[None], 4, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state["ms"], np.repeat(g.numpy()[None] ** 2, 4, 0) + 1e-12, rtol=1e-5)
    # The step is exp(log_lr + c) * unit-RMS direction, per tensor.
    lr = np.exp(state["log_lr"].numpy() - 1.0)
    direction = (np.concatenate([p.numpy() for p in params]) - np.concatenate([p.numpy() for p in new_params])) / lr
    for part in np.split(direction, [50]):
        np.testing.assert_allclose(np.sqrt(np.mean(part ** 2)), 1.0, rtol=1e-4)
    # At init the direction is aligned with +gradient (Adam-like start), so the update descends.
    assert np.mean(np.sign(direction) == np.sign(g.numpy())) > 0.9


def test_decay_chain_doubles_time_constants():
    gamma = hrnn._sqrt_chain(tf.constant([[0.9]]), 4).numpy()[0]
    taus = 1.0 / (1.0 - gamma)
    np.testing.assert_allclose(taus[1:] / taus[:-1], 2.0, rtol=0.06)


def test_log_lr_clip_passes_gradient_straight_through():
    x = tf.constant([50.0, -50.0, 1.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = hrnn._straight_through_clip(x, 33.0)
        total = tf.reduce_sum(y * tf.constant([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(y, [33.0, -33.0, 1.0])
    np.testing.assert_allclose(tape.gradient(total, x), [1.0, 2.0, 3.0])


def test_initial_log_learning_rates_span_the_configured_range():
    params = [tf.zeros([20000]), tf.zeros([20000])]
    state = hrnn.init_state(hrnn.init_meta(DEFAULT), DEFAULT, params, seed=5)
    lr = np.exp(state["log_lr"].numpy())
    assert lr.min() >= 1e-6 * 0.999 and lr.max() <= 1e-2 * 1.001
    # Per element a uniform draw over half the log range, plus one offset per tensor (so tensor means differ).
    half_width = (np.log(1e-2) - np.log(1e-6)) / 2
    per_tensor = np.split(state["log_lr"].numpy(), 2)
    for part in per_tensor:
        assert np.ptp(part) <= half_width * 1.0001
        np.testing.assert_allclose(part.std(), half_width / np.sqrt(12), rtol=0.02)
    assert abs(per_tensor[0].mean() - per_tensor[1].mean()) > 0.5
    other = hrnn.init_state(hrnn.init_meta(DEFAULT), DEFAULT, params, seed=6)["log_lr"]
    assert not np.array_equal(state["log_lr"], other)
    fixed = dataclasses.replace(DEFAULT, init_lr_range=(1e-3, 1e-3))
    np.testing.assert_allclose(hrnn.init_state(hrnn.init_meta(fixed), fixed, params)["log_lr"], np.log(1e-3))


SWITCHES = {
    "level_sizes": (10, 20), "num_gradient_scales": 2, "dynamic_input_scaling": False,
    "use_grad_products": False, "use_log_means_squared": False, "use_relative_lr": False,
    "use_problem_lr_mean": False, "use_extreme_indicator": True, "use_lr_shortcut": True,
    "use_gradient_shortcut": False, "use_attention": True, "learnable_decay": False,
    "use_multiple_scale_decays": True, "global_input": "last_tensor",
}


def _run(config, steps=3):
    loss = quadratic()
    params = [tf.zeros([12]), tf.zeros([])]
    meta = hrnn.init_meta(config, seed=0)
    # Make the learning-rate readout active so that every input feature reaches the update.
    meta["readout/lr_kernel"] = tf.fill(meta["readout/lr_kernel"].shape, 0.3)
    state = hrnn.init_state(meta, config, params, seed=0)
    for _ in range(steps):
        _, g = grads_of(loss, params)
        params, state = hrnn.step(meta, config, params, g, state)
    return tf.concat([tf.reshape(p, [-1]) for p in params], 0).numpy()


@pytest.mark.parametrize("field", sorted(SWITCHES))
def test_each_switch_changes_the_update(field):
    base = _run(DEFAULT)
    changed = _run(dataclasses.replace(DEFAULT, **{field: SWITCHES[field]}))
    assert np.all(np.isfinite(changed))
    assert not np.allclose(base, changed, rtol=1e-6, atol=1e-9), field


def test_dynamic_output_scale_switch_changes_the_update():
    config = dataclasses.replace(DEFAULT, dynamic_output_scale=False, use_relative_lr=False)
    assert not np.allclose(_run(DEFAULT), _run(config))


def _unrolled_meta_loss(meta, config, steps=20, dtype=tf.float32):
    f = quadratic(8, dtype=dtype)
    params = [tf.zeros([8], dtype), tf.zeros([], dtype)]
    state = {k: tf.cast(v, dtype) if v.dtype.is_floating else v
             for k, v in hrnn.init_state(meta, config, params, seed=0).items()}
    f0 = f(params)
    total = 0.0
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = f(params)
        g = tape.gradient(value, params)
        params, state = hrnn.step(meta, config, params, g, state)
        total += tf.math.log(f(params) / (f0 + 1e-6) + 1e-6)
    return total / steps


def test_meta_gradient_of_unrolled_loss_is_finite_and_nonzero():
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(DEFAULT).items()}
    with tf.GradientTape() as tape:
        value = _unrolled_meta_loss(meta, DEFAULT)
    grads = tape.gradient(value, meta)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads.values())
    for key in ("readout/direction", "readout/shortcut", "readout/lr_kernel", "readout/lr_bias", "stepsize_offset"):
        assert np.any(grads[key].numpy() != 0), key


def test_meta_gradient_agrees_with_finite_differences():
    base = {k: tf.constant(v, tf.float64) for k, v in hrnn.init_meta_numpy(DEFAULT).items()}
    with tf.GradientTape() as tape:
        tape.watch(base)
        value = _unrolled_meta_loss(base, DEFAULT, dtype=tf.float64)
    grads = tape.gradient(value, base)
    for key, index in (("stepsize_offset", ()), ("readout/shortcut", (1,))):
        eps = 1e-5
        delta = np.zeros(base[key].shape)
        delta[index] = eps
        plus = dict(base, **{key: base[key] + delta})
        minus = dict(base, **{key: base[key] - delta})
        fd = (_unrolled_meta_loss(plus, DEFAULT, dtype=tf.float64)
              - _unrolled_meta_loss(minus, DEFAULT, dtype=tf.float64)).numpy() / (2 * eps)
        np.testing.assert_allclose(grads[key].numpy()[index], fd, rtol=1e-3, atol=1e-8)
        assert abs(fd) > 1e-6


def test_non_finite_gradient_skips_that_tensor_and_counts_it():
    params = [tf.ones([4]), tf.ones([3])]
    grads = [tf.constant([1.0, np.nan, 1.0, 1.0]), tf.ones([3])]
    (new_params, new_state), state = one_step(DEFAULT, params, grads)
    np.testing.assert_array_equal(new_params[0], params[0])
    assert not np.allclose(new_params[1], params[1])
    assert int(new_state["skipped"]) == 1
    for key in ("h0", "accum", "ms", "log_lr", "inp_decay"):
        np.testing.assert_array_equal(new_state[key][..., :4], state[key][..., :4])
        assert np.all(np.isfinite(new_state[key]))
    assert np.all(np.isfinite(new_state["h1"])) and np.all(np.isfinite(new_state["h2"]))
    np.testing.assert_array_equal(new_state["h1"][0], state["h1"][0])


def test_inactive_tensor_is_untouched_and_not_counted():
    params = [tf.ones([4]), tf.ones([3])]
    (new_params, new_state), state = one_step(DEFAULT, params, [tf.zeros([4]), tf.ones([3])], active=[False, True])
    np.testing.assert_array_equal(new_params[0], params[0])
    assert not np.allclose(new_params[1], params[1])
    for key in ("h0", "accum", "ms", "log_lr", "scl_decay", "inp_decay"):
        np.testing.assert_array_equal(new_state[key][..., :4], state[key][..., :4], err_msg=key)
    np.testing.assert_array_equal(new_state["h1"][0], state["h1"][0])
    assert not np.array_equal(new_state["h1"][1], state["h1"][1])
    assert int(new_state["skipped"]) == 0


def test_learning_rate_multiplies_the_step():
    params = [tf.zeros([6])]
    grads = [tf.constant([1.0, -2.0, 3.0, 0.5, -1.0, 2.0])]
    (p1, _), _ = one_step(DEFAULT, params, grads, learning_rate=1.0)
    (p3, _), _ = one_step(DEFAULT, params, grads, learning_rate=3.0)
    (p0, _), _ = one_step(DEFAULT, params, grads, learning_rate=0.0)
    np.testing.assert_allclose(p3[0], 3.0 * p1[0].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(p0[0], params[0])


def test_step_handles_scalars_any_rank_and_float64():
    params = [tf.constant(2.0, tf.float64), tf.ones([2, 3, 4, 1], tf.float64)]
    grads = [tf.constant(1.0, tf.float64), tf.ones([2, 3, 4, 1], tf.float64)]
    (new, state), _ = one_step(DEFAULT, params, grads)
    assert new[0].shape == () and new[1].shape == (2, 3, 4, 1) and new[0].dtype == tf.float64
    assert float(new[0]) < 2.0


def test_layout_round_trip_and_segments():
    tensors = [tf.reshape(tf.range(6.0), [2, 3]), tf.constant(7.0), tf.zeros([0]), tf.range(3.0)]
    layout = Layout.of(tensors)
    flat = layout.flatten(tensors)
    assert flat.shape == (10,)
    back = layout.unflatten(flat, tensors)
    assert all(np.array_equal(a, b) for a, b in zip(back, tensors))
    np.testing.assert_array_equal(layout.segment_ids(), [0] * 6 + [1] + [3] * 3)


def test_padded_layout_round_trip_and_segments():
    """A buffer with padding rows: zeros appended on flatten, dropped on unflatten, the padding in its own
    segment that per-tensor statistics leave out and broadcasts fill with zeros."""
    tensors = [tf.reshape(tf.range(6.0), [2, 3]), tf.constant(7.0), tf.zeros([0]), tf.range(3.0)]
    layout = Layout.of(tensors, rows=hrnn.padded_rows(10, 16))
    assert (layout.num_rows, layout.num_padding, layout.num_segments) == (16, 6, 5)
    flat = layout.flatten(tensors)
    np.testing.assert_array_equal(flat, list(range(6)) + [7.0, 0.0, 1.0, 2.0] + [0.0] * 6)
    assert all(np.array_equal(a, b) for a, b in zip(layout.unflatten(flat, tensors), tensors))
    np.testing.assert_array_equal(layout.segment_ids(), [0] * 6 + [1] + [3] * 3 + [4] * 6)
    seg = Segments(layout)
    np.testing.assert_array_equal(seg.mean((flat + 100.0)[:, None])[:, 0], [102.5, 107.0, 0.0, 101.0])
    np.testing.assert_array_equal(seg.any(tf.ones([16], tf.bool)), [True, True, False, True])
    broadcast = seg.broadcast(tf.constant([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(broadcast, [1.0] * 6 + [2.0] + [4.0] * 3 + [0.0] * 6)
    one = Layout.of([tf.range(5.0)], rows=16)  # a single tensor gets segment ids once it is padded
    np.testing.assert_array_equal(one.segment_ids(), [0] * 5 + [1] * 11)
    assert Layout.of(tensors, rows=10) == Layout.of(tensors) and hrnn.padded_rows(32, 16) == 32
    with pytest.raises(ValueError, match="cannot hold"):
        Layout.of(tensors, rows=9)


def test_step_compiles_with_xla_and_matches_graph():
    loss = quadratic()
    params = [tf.zeros([12]), tf.zeros([])]
    meta = hrnn.init_meta(DEFAULT)
    state = hrnn.init_state(meta, DEFAULT, params)
    _, g = grads_of(loss, params)
    fn = lambda p, g, s: hrnn.step(meta, DEFAULT, p, g, s)  # noqa: E731
    a = tf.function(fn)(params, g, state)
    b = tf.function(fn, jit_compile=True)(params, g, state)
    for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


CHUNK_CONFIGS = [DEFAULT, HRNNConfig(use_attention=True), HRNNConfig(level_sizes=(4,)),
                 HRNNConfig(use_problem_lr_mean=False)]  # per-tensor mean log LR: a segment mean


@pytest.mark.parametrize("config", CHUNK_CONFIGS)
@pytest.mark.parametrize("shapes", [[(7, 5), (5,), (), (13,), (3, 3, 2)], [(37,)]], ids=["five_tensors", "one_tensor"])
@pytest.mark.parametrize("xla", [False, True], ids=["eager", "xla"])
def test_chunked_step_equals_whole_buffer_step(config, shapes, xla):
    """Chunks that cut tensors, do not divide P, and one NaN tensor: same parameters and state as unchunked,
    eagerly (chunks in sequence) and under XLA (one while loop over the chunks)."""
    rng = np.random.default_rng(0)
    meta = hrnn.init_meta(config, 1)
    params = [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]
    state = hrnn.init_state(meta, config, params, 3)
    for it in range(3):
        grads = [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]
        if it == 1 and len(shapes) > 1:
            grads[3] = tf.tensor_scatter_nd_update(grads[3], [[2]], [np.nan])
        whole = hrnn.step(meta, config, params, grads, state)
        for chunk_size in (8, 36):
            run = lambda p, g, s, c=chunk_size: hrnn.step(meta, config, p, g, s, chunk_size=c)  # noqa: E731
            chunked = (tf.function(run, jit_compile=True) if xla else run)(params, grads, state)
            for a, b in zip(tf.nest.flatten(whole), tf.nest.flatten(chunked)):
                np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        params, state = whole
    if len(shapes) > 1:
        assert int(state["skipped"]) == 1


def test_chunk_size_at_least_the_parameter_count_is_the_unchunked_step_bit_for_bit():
    params = [tf.ones([4]), tf.ones([3])]
    grads = [tf.constant([1.0, -2.0, 3.0, 0.5]), tf.ones([3])]
    (a, sa), _ = one_step(DEFAULT, params, grads)
    (b, sb), _ = one_step(DEFAULT, params, grads, chunk_size=7)
    for x, y in zip(tf.nest.flatten((a, sa)), tf.nest.flatten((b, sb))):
        np.testing.assert_array_equal(x, y)


def test_chunked_step_meta_gradient_and_xla_match_unchunked():
    loss = quadratic()
    params = [tf.zeros([12]), tf.zeros([])]
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(DEFAULT).items()}
    _, g = grads_of(loss, params)

    def meta_loss(chunk_size):
        state = hrnn.init_state(meta, DEFAULT, params)
        new, _ = hrnn.step(meta, DEFAULT, params, g, state, chunk_size=chunk_size)
        return loss(new)

    results = []
    for chunk_size in (None, 5):
        with tf.GradientTape() as tape:
            value = meta_loss(chunk_size)
        results.append((value, tape.gradient(value, meta)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    connected = [k for k in meta if results[0][1][k] is not None]
    assert len(connected) > 10 and connected == [k for k in meta if results[1][1][k] is not None]
    for k in connected:
        np.testing.assert_allclose(results[1][1][k], results[0][1][k], rtol=1e-4, atol=1e-6, err_msg=k)
    # The compiled chunked step (a while loop over the chunks) on the same initial state. The state is made
    # outside: TF 2.21's XLA draws other stateless random numbers (the initial LRs) than eager TensorFlow in a
    # computation that holds a while loop.
    state = hrnn.init_state(meta, DEFAULT, params)
    compiled = tf.function(lambda: loss(hrnn.step(meta, DEFAULT, params, g, state, chunk_size=5)[0]), jit_compile=True)
    np.testing.assert_allclose(compiled(), results[0][0], rtol=1e-5)


@pytest.mark.parametrize("config", [DEFAULT, dataclasses.replace(DEFAULT, use_attention=True)])
def test_parameter_without_any_gradient_stays_at_rest(config):
    """Coordinates whose gradient has always been exactly zero are not moved; once a gradient arrives they
    move. With `hold_without_gradient=False` (the original) the GRU readout moves them anyway."""
    meta = hrnn.init_meta(config)
    params = [tf.ones([4]), tf.ones([3])]
    mask = tf.constant([1.0, 0.0, 1.0, 0.0])
    state = hrnn.init_state(meta, config, params)
    for _ in range(20):
        grads = [mask * params[0], tf.zeros([3])]
        params, state = hrnn.step(meta, config, params, grads, state)
    np.testing.assert_array_equal(params[0].numpy()[[1, 3]], [1.0, 1.0])
    np.testing.assert_array_equal(params[1], np.ones(3))
    assert np.all(params[0].numpy()[[0, 2]] < 1.0)
    params, state = hrnn.step(meta, config, params, [tf.ones([4]), tf.ones([3])], state)
    assert np.all(params[0].numpy() < 1.0) and np.all(params[1].numpy() < 1.0)

    original = dataclasses.replace(config, hold_without_gradient=False)
    params = [tf.ones([4]), tf.ones([3])]
    state = hrnn.init_state(meta, original, params)
    params, _ = hrnn.step(meta, original, params, [mask, tf.zeros([3])], state)
    assert not np.array_equal(params[1], np.ones(3))


# ----------------------------------------------------------------------------------------------------------
# The math pinned: golden outputs of the step (tests/data/make_golden.py) on fixed inputs, every switch
# ----------------------------------------------------------------------------------------------------------
GOLDEN_RTOL, GOLDEN_ATOL = 1e-5, 1e-6  # float32 rounding: the implementation may reorder sums and products


def _golden():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "make_golden.py")
    spec = importlib.util.spec_from_file_location("make_golden", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, np.load(module.PATH)


GOLDEN, GOLDEN_DATA = _golden()


def _xla_step(meta, config, params, grads, state, **kw):
    fn = tf.function(lambda p, g, s: hrnn.step(meta, config, p, g, s, **kw), jit_compile=True)
    return fn(params, grads, state)


@pytest.mark.parametrize("name", sorted(GOLDEN.CASES))
def test_step_matches_golden_outputs(name):
    """New parameters and every state tensor after three steps equal the saved ones (rtol 1e-5, atol 1e-6)."""
    params, state = GOLDEN.run_case(name)
    _assert_golden(name, params, state)


@pytest.mark.parametrize("name", ["default", "attention_chunked", "level_10_20"])
def test_step_under_xla_matches_golden_outputs(name):
    params, state = GOLDEN.run_case(name, step=_xla_step)
    _assert_golden(name, params, state)


@pytest.mark.parametrize("name", sorted(GOLDEN.CASES))
def test_padded_state_matches_golden_outputs(name):
    """With the per-parameter buffers padded (`init_state(..., pad_to=16)`), the real entries and the parameters
    are the golden ones, and the padding entries keep their initial values."""
    pad = functools.partial(hrnn.init_state, pad_to=16)
    params, state = GOLDEN.run_case(name, init_state=pad)
    p = sum(x.size for x in params)
    config, _, shapes, dtype, _ = GOLDEN.CASES[name]
    init = pad({k: tf.constant(v) for k, v in GOLDEN.meta_for(config).items()}, config,
               [tf.zeros(s, dtype) for s in shapes], 3)
    for key in hrnn.PER_PARAMETER_KEYS:
        if key in state:
            assert state[key].shape[-1] == hrnn.padded_rows(p, 16) > p, key
            np.testing.assert_array_equal(state[key][..., p:], tf.cast(init[key][..., p:], state[key].dtype),
                                          err_msg=key)
    _assert_golden(name, params, {k: v[..., :p] if k in hrnn.PER_PARAMETER_KEYS else v for k, v in state.items()})


@pytest.mark.parametrize("name", ["default", "attention_chunked", "level_10_20", "default_one_tensor"])
def test_padded_state_under_xla_matches_golden_outputs(name):
    params, state = GOLDEN.run_case(name, step=_xla_step, init_state=functools.partial(hrnn.init_state, pad_to=16))
    p = sum(x.size for x in params)
    _assert_golden(name, params, {k: v[..., :p] if k in hrnn.PER_PARAMETER_KEYS else v for k, v in state.items()})
    assert hrnn.true_params(GOLDEN.CASES[name][0], params, state)[0].shape == params[0].shape


def _assert_golden(name, params, state):
    prefix = f"{name}/state/"
    assert sorted(state) == sorted(k[len(prefix):] for k in GOLDEN_DATA.files if k.startswith(prefix))
    for i, p in enumerate(params):
        expected = GOLDEN_DATA[f"{name}/param{i}"]
        assert p.shape == expected.shape and p.dtype == expected.dtype
        np.testing.assert_allclose(p, expected, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL, err_msg=f"param{i}")
    for key, value in state.items():
        expected = GOLDEN.from_file(key, GOLDEN_DATA[prefix + key])  # the file: [P, n]; the state: [n, P]
        if key == "skipped":
            assert int(value) == int(expected)
            continue
        assert value.dtype == expected.dtype, key
        np.testing.assert_allclose(value, expected, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL, err_msg=key)


@pytest.mark.parametrize("config", [DEFAULT, HRNNConfig(use_attention=True), HRNNConfig(level_sizes=(10,))])
def test_bfloat16_state_is_stored_in_half_the_bytes_and_tracks_float32(config):
    """`init_state(..., state_dtype=tf.bfloat16)`: the stored buffers are bfloat16, the math float32; three steps
    stay close to the float32-state ones (bfloat16 keeps 8 bits of mantissa: ~0.4% per stored value)."""
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), ()]
    meta = {k: tf.constant(v) for k, v in GOLDEN.meta_for(config).items()}
    params = [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]
    grads = [[tf.constant(rng.normal(size=s), tf.float32) for s in shapes] for _ in range(3)]
    results = {}
    for state_dtype in (None, tf.bfloat16):
        state = hrnn.init_state(meta, config, params, 3, state_dtype=state_dtype)
        p = params
        for g in grads:
            p, state = tf.function(lambda p, g, s: hrnn.step(meta, config, p, g, s), jit_compile=True)(p, g, state)
        results[state_dtype] = p, state
    (p32, s32), (p16, s16) = results[None], results[tf.bfloat16]
    for key, value in s16.items():
        expected = tf.bfloat16 if key in hrnn.STORED_KEYS else s32[key].dtype
        assert value.dtype == expected, key
    stored = sum(v.dtype.size * int(np.prod(v.shape[:-1])) for k, v in s16.items() if k in hrnn.PER_PARAMETER_KEYS)
    assert stored == 2 * config.per_parameter_state_size + 2 * (config.dynamic_output_scale + config.use_attention)
    for a, b in zip(p16, p32):
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(tf.cast(s16["h0"], tf.float32), s32["h0"], rtol=3e-2, atol=3e-2)


def test_meta_gradient_flows_through_bfloat16_state():
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(DEFAULT).items()}
    loss = quadratic()
    params = [tf.zeros([12]), tf.zeros([])]
    with tf.GradientTape() as tape:
        state = hrnn.init_state(meta, DEFAULT, params, state_dtype="bfloat16")
        p = params
        for _ in range(3):
            _, g = grads_of(loss, p)
            p, state = hrnn.step(meta, DEFAULT, p, g, state)
        value = loss(p)
    grads = tape.gradient(value, meta)
    assert all(np.all(np.isfinite(grads[k])) for k in grads if grads[k] is not None)
    assert np.any(grads["readout/direction"].numpy() != 0)
