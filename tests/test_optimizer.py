"""LearnedOptimizer as a Keras optimizer: parity with `hrnn.step`, fit, XLA, distribution, saving, edge cases."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import lopt_tf
from lopt_tf import hrnn


def regression_data(n=256, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    return x, (x @ rng.normal(size=(d, 1)) + 0.1).astype("float32")


def mlp(d=8, seed=1):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((d,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])


def weights_of(model):
    return [v.numpy() for v in model.trainable_variables]


def assert_all_close(a, b, **kw):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, **kw)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_apply_equals_pure_step(jit_compile):
    """Without XLA, `apply` is the pure step bit for bit; with its XLA-compiled step, to float32 rounding."""
    exact = dict(rtol=0, atol=0) if not jit_compile else dict(rtol=1e-5, atol=1e-6)
    variables = [keras.Variable(np.linspace(-1, 1, 12).reshape(3, 4).astype("float32")), keras.Variable(0.5)]
    grads = [tf.constant(np.cos(np.arange(12.0)).reshape(3, 4), tf.float32), tf.constant(-0.3)]
    opt = lopt_tf.LearnedOptimizer(jit_compile=jit_compile)
    opt.build(variables)
    for _ in range(3):  # several steps, so the state carried by the optimizer matters
        before = [v.numpy() for v in variables]
        state = {k: tf.convert_to_tensor(v) for k, v in opt._state_vars.items()}  # padded to 16 rows
        meta = {k: tf.constant(v) for k, v in opt.meta_parameters.items()}
        expected, expected_state = hrnn.step(meta, opt.hrnn_config, [tf.constant(b) for b in before], grads, state)
        unpadded, unpadded_state = hrnn.step(meta, opt.hrnn_config, [tf.constant(b) for b in before], grads, opt.state)
        opt.apply(grads, variables)
        assert_all_close([v.numpy() for v in variables], [e.numpy() for e in expected], **exact)
        assert_all_close([v.numpy() for v in variables], [e.numpy() for e in unpadded], rtol=1e-5, atol=1e-6)
        for k, v in opt._state_vars.items():
            np.testing.assert_allclose(v, expected_state[k], **exact, err_msg=k)
        for k, v in opt.state.items():  # the same values as the step on unpadded state, to float32 rounding
            np.testing.assert_allclose(v, unpadded_state[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_per_parameter_variables_are_padded_to_a_multiple_of_16_and_state_hides_it():
    variables = [keras.Variable(np.ones((3, 4), np.float32)), keras.Variable(0.5)]
    opt = lopt_tf.LearnedOptimizer()
    opt.build(variables)
    for key in hrnn.PER_PARAMETER_KEYS:
        if key in opt._state_vars:
            assert opt._state_vars[key].shape[-1] == 16 and opt.state[key].shape[-1] == 13, key
    expected = hrnn.init_state({k: tf.constant(v) for k, v in opt.meta_parameters.items()}, opt.hrnn_config,
                               [tf.convert_to_tensor(v) for v in variables], opt.seed)
    assert sorted(expected) == sorted(opt.state)
    for k, v in opt.state.items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)


@pytest.mark.parametrize("layout", ["unpadded", "parameter_major_unpadded", "parameter_major_padded"])
def test_variables_saved_in_older_layouts_still_load(layout):
    """Optimizer variables written in older layouts load into the padded feature-major variables: per-parameter
    buffers without the padding ([..., P]), and h0, accum, ms stored [P, n] (parameter-major, before they were
    stored [n, P]), padded or not. The real parameters get the saved values, and the steps continue identically."""
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in values]
    source = [keras.Variable(v) for v in values]
    opt = lopt_tf.LearnedOptimizer(seed=2)
    opt.build(source)
    for _ in range(2):
        opt.apply(grads, source)
    store = {}
    opt.save_own_variables(store)
    keys = {id(v): k for k, v in opt._state_vars.items() if k in hrnn.PER_PARAMETER_KEYS}
    old = {}
    for i, v in enumerate(opt.variables):
        value = store[str(i)]
        if id(v) in keys:
            if layout.startswith("parameter_major") and keys[id(v)] in hrnn.FEATURE_MAJOR_KEYS:
                value = value.T
            if layout.endswith("unpadded"):
                value = value[:19] if layout.startswith("parameter_major") else value[..., :19]
        old[str(i)] = value
    assert any(np.shape(old[k]) != np.shape(store[k]) for k in store)
    target = [keras.Variable(v.numpy()) for v in source]
    loaded = lopt_tf.LearnedOptimizer(seed=2)
    loaded.build(target)
    loaded.load_own_variables(old)
    for k, v in opt.state.items():
        np.testing.assert_array_equal(loaded.state[k], v, err_msg=k)
    opt.apply(grads, source)
    loaded.apply(grads, target)
    assert_all_close([v.numpy() for v in target], [v.numpy() for v in source], rtol=0, atol=0)


@pytest.mark.parametrize("jit", [False, True])
def test_fit_reduces_loss_of_mlp_at_initialisation(jit):
    x, y = regression_data()
    model = mlp()
    model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss="mse", jit_compile=jit)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.95 * before


def test_fit_reduces_loss_of_quadratic():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20, 20)).astype("float32")
    b = rng.normal(size=(20,)).astype("float32")
    w = keras.Variable(np.zeros(20, np.float32))
    opt = lopt_tf.LearnedOptimizer()
    loss = lambda: 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(a, w) - b))  # noqa: E731

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            value = loss()
        opt.apply([tape.gradient(value, w.value)], [w])
        return value

    first = float(train_step())
    for _ in range(300):
        last = float(train_step())
    assert last < 0.97 * first


def test_xla_parity():
    x, y = regression_data()
    results = []
    for jit in (False, True):
        model = mlp()
        model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss="mse", jit_compile=jit)
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        results.append(weights_of(model))
    assert_all_close(*results, rtol=1e-4, atol=1e-6)


def test_mirrored_strategy_two_devices_matches_one_device():
    x, y = regression_data()
    results = []
    for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            model = mlp()
            opt = lopt_tf.LearnedOptimizer()
            model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        results.append(weights_of(model))
        if len(devices) == 2:  # every replica holds the same optimizer state
            for v in opt.variables:
                values = [c.numpy() for c in v.value.values] if hasattr(v.value, "values") else [v.numpy()]
                assert all(np.array_equal(values[0], c) for c in values[1:])
    assert_all_close(*results, rtol=1e-5, atol=1e-6)


def test_built_outside_strategy_scope_is_an_error():
    opt = lopt_tf.LearnedOptimizer()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = mlp()
        with pytest.raises(RuntimeError, match="strategy.scope"):
            opt.build(model.trainable_variables)


def test_custom_loop_in_tf_function_under_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, y = regression_data(64)
    with strategy.scope():
        model = mlp()
        opt = lopt_tf.LearnedOptimizer()
        opt.build(model.trainable_variables)

    @tf.function
    def train_step(xb, yb):
        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(xb) - yb)) / 64.0
            opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            return loss
        return strategy.reduce("SUM", strategy.run(replica_step, (xb, yb)), axis=None)

    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    xb, yb = next(iter(dataset))
    first = float(train_step(xb, yb))
    for _ in range(30):
        last = float(train_step(xb, yb))
    assert last < first and opt.iterations.numpy() == 31


def test_keras_save_load_round_trip_continues_identically(tmp_path):
    x, y = regression_data()
    model = mlp()
    model.compile(optimizer=lopt_tf.LearnedOptimizer(seed=4), loss="mse")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, lopt_tf.LearnedOptimizer) and loaded.optimizer.seed == 4
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    assert_all_close(weights_of(model), weights_of(loaded), rtol=0, atol=0)


def test_config_round_trip_and_registered_name():
    opt = lopt_tf.LearnedOptimizer(learning_rate=0.5, seed=3, clipnorm=1.0, chunk_size=1000)
    again = lopt_tf.LearnedOptimizer.from_config(opt.get_config())
    assert again.get_config() == opt.get_config() and again.chunk_size == 1000
    assert keras.optimizers.deserialize(keras.optimizers.serialize(opt)).get_config() == opt.get_config()
    model = mlp()
    model.compile(optimizer="lopt_tf>LearnedOptimizer", loss="mse")
    assert isinstance(model.optimizer, lopt_tf.LearnedOptimizer)


def test_saved_model_round_trip(tmp_path):
    path = str(tmp_path / "hrnn_savedmodel")
    lopt_tf.export_saved_model(path, weights="init")
    meta, config, _ = lopt_tf.load_saved_model(path)
    shipped, shipped_config, _ = lopt_tf.load_weights("init")
    assert config == shipped_config and all(np.array_equal(meta[k], shipped[k]) for k in shipped)
    loaded = tf.saved_model.load(path)
    param = tf.constant(np.linspace(-1, 1, 37), tf.float32)
    grad = tf.constant(np.sin(np.arange(37.0)), tf.float32)
    state = loaded.signatures["init_state"](param=param)
    out = loaded.signatures["step"](param=param, grad=grad, **state)
    expected_state = hrnn.init_state(shipped, config, [param])
    (expected,), expected_new = hrnn.step(shipped, config, [param], [grad], expected_state)
    np.testing.assert_allclose(out["param"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["state_h0"], expected_new["h0"], rtol=1e-6, atol=1e-7)
    # The SavedModel directory also works as a weights source for the optimizer.
    assert lopt_tf.LearnedOptimizer(weights=path).hrnn_config == config


def test_nan_gradient_is_skipped_and_counted():
    variables = [keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(3, np.float32))]
    opt = lopt_tf.LearnedOptimizer()
    opt.build(variables)
    state_before = opt.state
    opt.apply([tf.constant([1.0, np.nan, 1.0, 1.0]), tf.ones(3)], variables)
    np.testing.assert_array_equal(variables[0].numpy(), np.ones(4))
    assert not np.allclose(variables[1].numpy(), np.ones(3))
    assert int(opt.skipped_updates) == 1
    for k, v in opt.state.items():
        assert np.all(np.isfinite(v)), k
    np.testing.assert_array_equal(opt.state["h0"][:, :4], state_before["h0"][:, :4])


def test_indexed_slices_gradient_matches_dense():
    keras.utils.set_random_seed(0)
    emb = keras.Variable(np.random.default_rng(0).normal(size=(10, 3)).astype("float32"))
    dense_copy = keras.Variable(emb.numpy())
    slices = tf.IndexedSlices(tf.ones([2, 3]), tf.constant([1, 7]), tf.constant([10, 3]))
    a, b = lopt_tf.LearnedOptimizer(), lopt_tf.LearnedOptimizer()
    a.apply([slices], [emb])
    b.apply([tf.convert_to_tensor(slices)], [dense_copy])
    np.testing.assert_array_equal(emb.numpy(), dense_copy.numpy())
    # An Embedding model trains under fit (its gradient is IndexedSlices).
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(20, 5),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss="mse")
    ids = np.random.default_rng(1).integers(0, 10, size=(64, 4))
    before = model.layers[0].embeddings.numpy().copy()
    model.fit(ids, np.ones((64, 1)), epochs=1, verbose=0)
    after = model.layers[0].embeddings.numpy()
    assert not np.array_equal(before, after)
    # Rows 10..19 are never looked up: they stay exactly where they were, as with Adam.
    np.testing.assert_array_equal(after[10:], before[10:])


def test_none_gradients_leave_those_variables_unchanged():
    variables = [keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(3, np.float32))]
    opt = lopt_tf.LearnedOptimizer()
    opt.build(variables)
    opt.apply([None, tf.ones(3)], variables)
    np.testing.assert_array_equal(variables[0].numpy(), np.ones(4))
    assert not np.allclose(variables[1].numpy(), np.ones(3)) and int(opt.skipped_updates) == 0


def test_scalar_and_high_rank_variables():
    variables = [keras.Variable(2.0), keras.Variable(np.ones((2, 2, 2, 2), np.float32))]
    opt = lopt_tf.LearnedOptimizer()
    opt.apply([tf.constant(1.0), tf.ones((2, 2, 2, 2))], variables)
    assert float(variables[0].numpy()) < 2.0 and np.all(variables[1].numpy() < 1.0)


def test_mixed_precision_keeps_float32_state():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss="mse")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert model.evaluate(x, y, verbose=0) < before
        inner = model.optimizer.inner_optimizer
        assert {k: v.dtype.name for k, v in inner.state.items() if k != "skipped"} == {
            k: "float32" for k in inner.state if k != "skipped"}
        assert all(np.all(np.isfinite(v)) for v in weights_of(model))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_model_with_200_tensors_trains():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = inputs
    for _ in range(100):
        h = keras.layers.Dense(8, activation="tanh")(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    assert len(model.trainable_variables) == 202
    model.compile(optimizer=lopt_tf.LearnedOptimizer(), loss="mse")
    x, y = regression_data(64)
    before = weights_of(model)
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)  # one full batch per epoch
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[1] < losses[0]
    assert all(not np.array_equal(a, b) for a, b in zip(before, weights_of(model)))  # every tensor was updated
    assert model.optimizer.state["h1"].shape == (202, 20)


def test_learning_rate_schedule_scales_each_step():
    """Step i of a schedule is `hrnn.step` with learning_rate = schedule(i), bit for bit."""
    schedule = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    variables = [keras.Variable(np.linspace(-1, 1, 12).reshape(3, 4).astype("float32")), keras.Variable(0.5)]
    grads = [tf.constant(np.cos(np.arange(12.0)).reshape(3, 4), tf.float32), tf.constant(-0.3)]
    opt = lopt_tf.LearnedOptimizer(learning_rate=schedule)
    opt.build(variables)
    meta = {k: tf.constant(v) for k, v in opt.meta_parameters.items()}
    for i in range(3):
        before = [tf.constant(v.numpy()) for v in variables]
        rate = float(schedule(i))
        assert rate == 0.5 ** i
        expected, _ = hrnn.step(meta, opt.hrnn_config, before, grads, opt.state, learning_rate=rate)
        unscaled, _ = hrnn.step(meta, opt.hrnn_config, before, grads, opt.state, learning_rate=1.0)
        opt.apply(grads, variables)
        assert_all_close([v.numpy() for v in variables], [e.numpy() for e in expected], rtol=0, atol=0)
        if i > 0:  # the schedule did change the step
            assert not np.allclose(variables[0].numpy(), unscaled[0].numpy())


def test_learning_rate_callback_sets_the_rate_used_by_fit():
    x, y = regression_data()
    results = []
    for learning_rate, callbacks in ((1.0, [keras.callbacks.LearningRateScheduler(lambda e, lr: 0.25)]),
                                     (0.25, [])):
        model = mlp()
        model.compile(optimizer=lopt_tf.LearnedOptimizer(learning_rate=learning_rate), loss="mse")
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False, callbacks=callbacks)
        assert float(model.optimizer.learning_rate.numpy()) == 0.25
        results.append(weights_of(model))
    assert_all_close(*results, rtol=0, atol=0)  # as if constructed with learning_rate=0.25


def test_look_ahead_finalize_writes_true_parameters():
    config = lopt_tf.HRNNConfig(use_attention=True)
    x, y = regression_data()
    model = mlp()
    opt = lopt_tf.LearnedOptimizer(weights=None, hrnn_config=config)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # fit ends with finalize_variable_values
    assert_all_close(weights_of(model), [p.numpy() for p in opt.true_parameters()], rtol=0, atol=0)
    model.optimizer.apply([tf.ones_like(v) for v in model.trainable_variables], model.trainable_variables)
    assert not np.allclose(weights_of(model)[0], opt.true_parameters()[0].numpy())


def test_weights_errors(tmp_path):
    with pytest.raises(lopt_tf.WeightsError, match="Shipped sets: .*init"):
        lopt_tf.LearnedOptimizer(weights="no_such_set")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip file")
    with pytest.raises(lopt_tf.WeightsError, match="not a lopt_tf weights file"):
        lopt_tf.LearnedOptimizer(weights=str(corrupt))
    with pytest.raises(lopt_tf.WeightsError, match="another architecture"):
        lopt_tf.LearnedOptimizer(weights="init", hrnn_config=lopt_tf.HRNNConfig(level_sizes=(10, 30, 20)))
    meta, config, _ = lopt_tf.load_weights("init")
    meta["readout/direction"] = meta["readout/direction"][:5]
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, **{f"meta/{k}": v for k, v in meta.items()}, __config__=np.array(config.to_json()),
             __format__=np.array(1, np.int32))
    with pytest.raises(lopt_tf.WeightsError, match="readout/direction"):
        lopt_tf.load_weights(bad)


def test_initial_lr_range_may_differ_from_the_stored_config():
    config = lopt_tf.HRNNConfig(init_lr_range=(1e-4, 1e-4))  # the 2017 design draws its initial LRs in a range
    opt = lopt_tf.LearnedOptimizer(weights="hrnn_v4_x0.03", hrnn_config=config)
    assert opt.hrnn_config.init_lr_range == (1e-4, 1e-4)
    variable = keras.Variable(np.zeros(5, np.float32))
    opt.build([variable])
    np.testing.assert_allclose(opt.state["log_lr"], np.log(1e-4), rtol=1e-6)


def test_weights_file_round_trip(tmp_path):
    config = lopt_tf.HRNNConfig(level_sizes=(6, 8))
    meta = {k: v.numpy() + 1.0 for k, v in lopt_tf.init_meta(config).items()}
    path = str(tmp_path / "w.npz")
    lopt_tf.save_weights(path, meta, config, {"meta_steps": 3})
    opt = lopt_tf.LearnedOptimizer(weights=path)
    assert opt.hrnn_config == config and opt.weights_info == {"meta_steps": 3}
    assert all(np.array_equal(opt.meta_parameters[k], meta[k]) for k in meta)
    assert not os.path.exists(path + ".tmp.npz")


def test_initialisation_fields_do_not_block_loading(tmp_path):
    # Weights that started from another step offset mean the same architecture: a default config loads them
    # (the stored initialisation fields are kept), while a changed architecture is still refused.
    started = dataclasses.replace(lopt_tf.HRNNConfig(), stepsize_offset_init=4.0, gru_scale=0.3)
    path = str(tmp_path / "w.npz")
    lopt_tf.save_weights(path, hrnn.init_meta_numpy(started), started)
    meta, config, _ = lopt_tf.load_weights(path, lopt_tf.HRNNConfig(init_lr_range=(1e-3, 1e-3)))
    assert config.stepsize_offset_init == 4.0 and config.init_lr_range == (1e-3, 1e-3)
    assert float(meta["stepsize_offset"]) == 4.0
    with pytest.raises(lopt_tf.WeightsError, match="num_gradient_scales"):
        lopt_tf.load_weights(path, lopt_tf.HRNNConfig(num_gradient_scales=3))


def test_default_weights_are_meta_trained_and_the_initialisations_stay_available():
    assert {"init", "stable_init", "hrnn_v4_x0.03", lopt_tf.DEFAULT_WEIGHTS} <= set(lopt_tf.available_weights())
    assert lopt_tf.DEFAULT_WEIGHTS not in ("init", "stable_init")
    meta, config, info = lopt_tf.load_weights()
    assert info["meta_steps"] > 0
    init_meta, init_config, _ = lopt_tf.load_weights("stable_init")  # the default's starting point
    same_architecture = {f: getattr(init_config, f) for f in lopt_tf.weights.INIT_FIELDS}
    assert dataclasses.replace(config, **same_architecture) == init_config
    assert any(not np.array_equal(meta[k], init_meta[k]) for k in meta)
    assert lopt_tf.LearnedOptimizer().get_config()["weights"] == lopt_tf.DEFAULT_WEIGHTS


def test_fit_with_chunks_matches_fit_without():
    """A chunk size smaller than the model (16*8+16+16+1 = 161 parameters): the same training, up to rounding."""
    x, y = regression_data()
    results = []
    for chunk_size in (None, 50):
        model = mlp()
        model.compile(optimizer=lopt_tf.LearnedOptimizer(chunk_size=chunk_size), loss="mse")
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
        results.append(weights_of(model))
    assert_all_close(results[1], results[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad", [-1, 2.5, "big", True])
def test_bad_chunk_size_is_an_error(bad):
    with pytest.raises(ValueError, match="chunk_size"):
        lopt_tf.LearnedOptimizer(chunk_size=bad)


def test_jit_compile_option_is_checked_and_kept_in_the_config():
    with pytest.raises(TypeError, match="jit_compile"):
        lopt_tf.LearnedOptimizer(jit_compile="yes")
    opt = lopt_tf.LearnedOptimizer(jit_compile=False)
    assert lopt_tf.LearnedOptimizer.from_config(opt.get_config()).jit_compile is False
