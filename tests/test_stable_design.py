"""The stability options of HRNNConfig (bounded LR dynamics, nominal Adam term, fixed initial LR): each switch
changes the update, the 2017 values keep the 2017 step, the bounds hold, and the shipped untrained
initialisation of the "stable" preset trains like Adam(1e-3) before any meta-training."""

import dataclasses
import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import lopt_tf
from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.weights import load_weights

DEFAULT = HRNNConfig()
STABLE = HRNNConfig.preset("stable")
STABLE_WEIGHTS = "stable_init"
ANCHOR = math.log(1e-3)


def quadratic(n=12, seed=0):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.normal(size=(n, n)), tf.float32)
    y = tf.constant(rng.normal(size=(n,)), tf.float32)
    return lambda ps: 0.5 * tf.reduce_sum(tf.square(tf.linalg.matvec(w, ps[0]) + ps[1] - y))


def run(config, steps=3, meta=None, lr_kernel=0.3, grad_scale=1.0, lr_bias=None, params=None):
    loss = quadratic()
    params = [tf.zeros([12]), tf.zeros([])] if params is None else params
    meta = dict(hrnn.init_meta(config, seed=0) if meta is None else meta)
    meta["readout/lr_kernel"] = tf.fill(meta["readout/lr_kernel"].shape, lr_kernel)  # LR readout active
    if lr_bias is not None:
        meta["readout/lr_bias"] = tf.constant(lr_bias, tf.float32)
    state = hrnn.init_state(meta, config, params, seed=0)
    states = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = loss(params)
        grads = [grad_scale * g for g in tape.gradient(value, params)]
        params, state = hrnn.step(meta, config, params, grads, state)
        states.append(state)
    return tf.concat([tf.reshape(p, [-1]) for p in params], 0).numpy(), states


# --- configuration and loading --------------------------------------------------------------------------------
def test_field_defaults_are_the_2017_behaviour_and_old_configs_load_with_them():
    assert HRNNConfig.preset("2017") == DEFAULT
    assert (DEFAULT.lr_dynamics, DEFAULT.init_lr, DEFAULT.nominal_term) == ("integrate", "random", "none")
    assert not DEFAULT.uses_anchor and hrnn.num_meta_params(DEFAULT) == 8349
    old = {k: v for k, v in DEFAULT.to_dict().items()
           if k not in ("lr_dynamics", "lr_anchor", "lr_band", "lr_leak", "init_lr", "nominal_term", "nominal_lr",
                        "nominal_beta2")}
    assert HRNNConfig.from_dict(old) == DEFAULT
    # Shipped files written before these fields existed load as the 2017 optimizer.
    for name in ("init", "hrnn_v4_x0.03"):
        _, config, _ = load_weights(name)
        assert (config.lr_dynamics, config.init_lr, config.nominal_term) == ("integrate", "random", "none")


@pytest.mark.parametrize("bad", [{"lr_dynamics": "clip"}, {"init_lr": "zero"}, {"nominal_term": "sgd"},
                                 {"lr_band": 0.0}, {"lr_leak": 1.0}, {"nominal_beta2": 1.0},
                                 {"init_lr": "fixed", "dynamic_output_scale": False, "use_relative_lr": False},
                                 {"momentum_bias_correction": True}])
def test_bad_stability_fields_are_rejected(bad):
    with pytest.raises(ValueError):
        HRNNConfig(**bad)
    with pytest.raises(ValueError):
        HRNNConfig.preset("nonexistent")


def test_stable_preset_sizes():
    assert STABLE.num_features == 14  # the two absolute-LR inputs on
    assert STABLE.per_parameter_state_size == 22  # + the nominal second moment
    shapes = hrnn.meta_shapes(STABLE)
    assert shapes["lr/anchor_offset"] == (2,) and shapes["nominal/log_scale"] == ()
    assert "lr_momentum_logit" not in shapes  # "readout" does not integrate
    meta = hrnn.init_meta_numpy(STABLE)
    assert np.all(meta["lr/anchor_offset"] == 0) and meta["nominal/log_scale"] == 0
    # New meta-parameters are appended: with the same inputs, the draws of the 2017 ones do not move.
    old = hrnn.init_meta_numpy(DEFAULT)
    same_inputs = hrnn.init_meta_numpy(dataclasses.replace(DEFAULT, lr_dynamics="leaky", nominal_term="adam"))
    assert all(np.array_equal(same_inputs[k], old[k]) for k in old)


# --- each switch changes the update --------------------------------------------------------------------------
SWITCHES = {"lr_dynamics": ["leaky", "readout"], "init_lr": ["fixed"], "nominal_term": ["adam", "scaled_momentum"],
            "lr_anchor": [1e-2], "lr_band": [0.5], "nominal_lr": [1e-2], "momentum_bias_correction": [True]}
BASES = {"lr_dynamics": DEFAULT, "init_lr": DEFAULT, "nominal_term": DEFAULT,
         "lr_anchor": dataclasses.replace(DEFAULT, init_lr="fixed"),
         "lr_band": dataclasses.replace(DEFAULT, lr_dynamics="readout"),
         "nominal_lr": dataclasses.replace(DEFAULT, nominal_term="adam"),
         "momentum_bias_correction": dataclasses.replace(DEFAULT, nominal_term="adam")}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in SWITCHES.items() for v in vs])
def test_each_stability_switch_changes_the_update(field, value):
    base = BASES[field]
    changed = dataclasses.replace(base, **{field: value})
    a, _ = run(base)
    b, _ = run(changed)
    assert np.all(np.isfinite(b))
    assert not np.allclose(a, b, rtol=1e-6, atol=1e-9), (field, value)


def test_lr_leak_changes_the_leaky_update():
    leaky = dataclasses.replace(DEFAULT, lr_dynamics="leaky", init_lr="fixed")
    a, _ = run(leaky, steps=5)
    b, _ = run(dataclasses.replace(leaky, lr_leak=0.2), steps=5)
    assert not np.allclose(a, b, rtol=1e-6, atol=1e-9)


# --- bounded learning-rate dynamics ---------------------------------------------------------------------------
@pytest.mark.parametrize("dynamics", ["leaky", "readout"])
@pytest.mark.parametrize("lr_bias,grad_scale", [(50.0, 1.0), (-50.0, 1.0), (3.0, 1e6), (-3.0, 1e-12)])
def test_bounded_log_lr_stays_in_its_band_under_adversarial_inputs(dynamics, lr_bias, grad_scale):
    config = dataclasses.replace(DEFAULT, lr_dynamics=dynamics, lr_band=2.0)
    meta = hrnn.init_meta(config)
    meta["lr/anchor_offset"] = tf.constant([0.5, -0.5])
    params, states = run(config, steps=30, meta=meta, lr_kernel=25.0, grad_scale=grad_scale, lr_bias=lr_bias)
    assert np.all(np.isfinite(params))
    anchor = ANCHOR + 0.5  # both tensors (a vector and a scalar) are of rank < 2
    for state in states:
        log_lr = state["log_lr"].numpy()
        assert np.all(np.isfinite(log_lr))
        assert np.all(np.abs(log_lr - anchor) <= 2.0 + 1e-5), log_lr
    if abs(lr_bias) >= 50:  # pushed hard in one direction, the log LR sits at that edge of the band
        assert np.all(np.sign(states[-1]["log_lr"].numpy() - anchor) == np.sign(lr_bias))


def test_integrator_drifts_under_a_constant_readout_the_leaky_form_does_not():
    """The 2017 log LR integrates a constant bias of the readout into a linear drift; the leaky form settles
    at a bounded offset (config docstring)."""
    bias, steps = 0.5, 200
    drift = {}
    for dynamics in ("integrate", "leaky"):
        config = dataclasses.replace(DEFAULT, lr_dynamics=dynamics, init_lr="fixed", lr_leak=0.05)
        _, states = run(config, steps=steps, lr_kernel=0.0, lr_bias=bias)
        drift[dynamics] = states[-1]["log_lr"].numpy() - ANCHOR
    keep = 1.0 / (1.0 + math.exp(-DEFAULT.lr_momentum_logit_init))
    np.testing.assert_allclose(drift["integrate"], steps * (1 - keep) * bias, rtol=1e-3)
    # Leaky: z settles at (1 - keep) * bias / leak, l at anchor + band * tanh(z / band).
    z = (1 - keep) * bias / 0.05
    np.testing.assert_allclose(drift["leaky"], 2.3 * math.tanh(z / 2.3), rtol=1e-3)


def test_leaky_log_lr_relaxes_to_the_anchor_without_readout():
    config = dataclasses.replace(DEFAULT, lr_dynamics="leaky", init_lr="fixed", lr_leak=0.1)
    meta = hrnn.init_meta(config)
    params = [tf.zeros([12]), tf.zeros([])]
    state = hrnn.init_state(meta, config, params)
    state["log_lr"] = state["log_lr"] + 1.0
    z0 = 2.3 * math.atanh(1.0 / 2.3)
    grads = [tf.ones([12]), tf.ones([])]
    for _ in range(10):
        params, state = hrnn.step(meta, config, params, grads, state)
    np.testing.assert_allclose(state["log_lr"] - ANCHOR, 2.3 * math.tanh(0.9 ** 10 * z0 / 2.3), rtol=1e-4)


# --- fixed initial learning rate ----------------------------------------------------------------------------------
def test_fixed_initial_lr_is_the_same_for_every_parameter_and_offset_by_rank_class():
    config = dataclasses.replace(DEFAULT, init_lr="fixed", lr_anchor=3e-4)
    params = [tf.zeros([20, 30]), tf.zeros([30]), tf.zeros([]), tf.zeros([3, 3, 2, 4])]
    meta = hrnn.init_meta(config)
    for seed in (0, 1):
        log_lr = hrnn.init_state(meta, config, params, seed)["log_lr"].numpy()
        np.testing.assert_allclose(log_lr, math.log(3e-4), rtol=1e-6)
    meta["lr/anchor_offset"] = tf.constant([-1.0, 2.0])
    log_lr = np.split(hrnn.init_state(meta, config, params)["log_lr"].numpy(), [600, 630, 631])
    for part, offset in zip(log_lr, (2.0, -1.0, -1.0, 2.0)):
        np.testing.assert_allclose(part, math.log(3e-4) + offset, rtol=1e-6)


# --- the nominal Adam term ----------------------------------------------------------------------------------------
def adam_only(config):
    meta = hrnn.init_meta(config)
    meta["stepsize_offset"] = tf.constant(-80.0)  # learned step exactly zero in float32
    return meta


@pytest.mark.parametrize("bias_correction", [False, True])
def test_nominal_adam_term_is_adam_when_the_learned_step_is_zero(bias_correction):
    config = dataclasses.replace(DEFAULT, nominal_term="adam", learnable_decay=False,
                                 momentum_bias_correction=bias_correction)
    meta = adam_only(config)
    rng = np.random.default_rng(0)
    params = [tf.constant(rng.normal(size=[5, 4]), tf.float32), tf.constant(rng.normal(size=[4]), tf.float32)]
    state = hrnn.init_state(meta, config, params)
    m, v = [np.zeros(p.shape) for p in params], [np.zeros(p.shape) for p in params]
    expected = [p.numpy().astype(np.float64) for p in params]
    for t in range(1, 6):
        grads = [rng.normal(size=p.shape) for p in params]
        params, state = hrnn.step(meta, config, params, [tf.constant(g, tf.float32) for g in grads], state)
        for i, g in enumerate(grads):
            # The HRNN's fixed input decay (learnable_decay=False) is 0.89; bias-corrected, its momentum is Adam's
            # m-hat with beta_1 = 0.89 from the second step on (the first step's decay is the state's initial 0).
            if bias_correction:
                m[i] = g if t == 1 else (0.89 * m[i] * (1 - 0.89 ** (t - 1)) + 0.11 * g) / (1 - 0.89 ** t)
            else:
                m[i] = g if t == 1 else 0.89 * m[i] + 0.11 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            expected[i] -= 1e-3 * m[i] / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-7)
        for p, e in zip(params, expected):
            np.testing.assert_allclose(p, e, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(state["nominal_count"], [5, 5])


def test_nominal_state_of_an_inactive_or_skipped_tensor_is_kept():
    config = STABLE
    meta = hrnn.init_meta(config)
    params = [tf.ones([4]), tf.ones([3])]
    state = hrnn.init_state(meta, config, params)
    params, state = hrnn.step(meta, config, params, [tf.ones([4]), tf.ones([3])], state)
    new_params, new_state = hrnn.step(meta, config, params, [tf.zeros([4]), 2 * tf.ones([3])], state,
                                      active=[False, True])
    np.testing.assert_array_equal(new_state["nominal_count"], [1, 2])
    np.testing.assert_array_equal(new_state["nominal_ms"][:4], state["nominal_ms"][:4])
    np.testing.assert_array_equal(new_params[0], params[0])
    _, nan_state = hrnn.step(meta, config, params, [tf.fill([4], np.nan), tf.ones([3])], state)
    np.testing.assert_array_equal(nan_state["nominal_count"], [1, 2])
    assert np.all(np.isfinite(nan_state["nominal_ms"]))


def test_scaled_momentum_nominal_term_needs_no_extra_state():
    config = dataclasses.replace(DEFAULT, nominal_term="scaled_momentum")
    assert config.per_parameter_state_size == DEFAULT.per_parameter_state_size
    params = [tf.zeros([6])]
    meta = adam_only(config)
    state = hrnn.init_state(meta, config, params)
    assert "nominal_ms" not in state
    g = tf.constant([1.0, -2.0, 3.0, 0.5, -1.0, 2.0])
    (new,), _ = hrnn.step(meta, config, params, [g], state)
    np.testing.assert_allclose(new, -1e-3 * np.sign(g), rtol=1e-5)  # a_1 / sqrt(a_1^2) on the first step


def _meta_gradient(config, steps):
    """Gradient of the summed log loss of `steps` steps on a quadratic with respect to every meta-parameter."""
    variables = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    loss = quadratic(8)
    with tf.GradientTape() as tape:
        ps = [tf.zeros([8]), tf.zeros([])]
        st = hrnn.init_state(variables, config, ps)
        total = 0.0
        for _ in range(steps):
            with tf.GradientTape() as inner:
                inner.watch(ps)
                value = loss(ps)
            ps, st = hrnn.step(variables, config, ps, inner.gradient(value, ps), st)
            total += tf.math.log(loss(ps))
    return tape.gradient(total, variables)


# --- the whole stable configuration ----------------------------------------------------------------------------
def test_stable_step_chunked_xla_and_meta_gradient():
    rng = np.random.default_rng(0)
    meta = hrnn.init_meta(STABLE, 1)
    shapes = [(7, 5), (5,), (), (13,)]
    params = [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]
    state = hrnn.init_state(meta, STABLE, params, 3)
    grads = [tf.constant(rng.normal(size=s), tf.float32) for s in shapes]
    whole = hrnn.step(meta, STABLE, params, grads, state)
    chunked = hrnn.step(meta, STABLE, params, grads, state, chunk_size=8)
    xla = tf.function(lambda p, g, s: hrnn.step(meta, STABLE, p, g, s), jit_compile=True)(params, grads, state)
    for a, b, c in zip(tf.nest.flatten(whole), tf.nest.flatten(chunked), tf.nest.flatten(xla)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)

    for config in (STABLE, dataclasses.replace(STABLE, lr_dynamics="leaky")):
        meta_grads = _meta_gradient(config, steps=10)
        for key in ("nominal/log_scale", "lr/anchor_offset", "stepsize_offset", "readout/lr_kernel",
                    "readout/lr_bias", "readout/direction"):
            assert meta_grads[key] is not None and np.all(np.isfinite(meta_grads[key])), key
            assert np.any(meta_grads[key].numpy() != 0), key


def test_shipped_stable_initialisation_is_the_preset():
    meta, config, info = load_weights(STABLE_WEIGHTS)
    assert config == STABLE
    fresh = hrnn.init_meta_numpy(STABLE)
    assert all(np.array_equal(meta[k], fresh[k]) for k in fresh)
    opt = lopt_tf.LearnedOptimizer(weights=STABLE_WEIGHTS)
    assert opt.hrnn_config == STABLE


def test_shipped_meta_trained_stable_sets_and_the_default():
    # That the default is meta-trained from `stable_init`: test_optimizer's default-weights test.
    v1_meta, v1_config, _ = load_weights("stable_v1")
    assert v1_config == dataclasses.replace(STABLE, momentum_bias_correction=False)  # as it was meta-trained
    v2_meta, v2_config, _ = load_weights("stable_v2")
    assert v2_config == STABLE and all(np.array_equal(v1_meta[k], v2_meta[k]) for k in v1_meta)
    assert lopt_tf.DEFAULT_WEIGHTS == "stable_v2" and lopt_tf.LearnedOptimizer().hrnn_config == STABLE


# --- trains like Adam(1e-3) before meta-training -------------------------------------------------------------------
def _classification(n=512, d=16, image=False, seed=0):
    """Labels of a random two-layer teacher, so a small net can fit them."""
    rng = np.random.default_rng(seed)
    shape = (n, 8, 8, 1) if image else (n, d)
    x = rng.normal(size=shape).astype(np.float32)
    flat = x.reshape(n, -1)
    w1 = rng.normal(size=(flat.shape[1], 32)) / np.sqrt(flat.shape[1])
    labels = np.argmax(np.tanh(flat @ w1) @ rng.normal(size=(32, 4)), 1).astype(np.int32)
    return x, labels


def _model(image, seed):
    keras.utils.set_random_seed(seed)
    if image:
        layers = [keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                  keras.layers.Conv2D(8, 3, padding="same", activation="relu"), keras.layers.Flatten()]
    else:
        layers = [keras.Input((16,)), keras.layers.Dense(32, activation="relu")]
    return keras.Sequential(layers + [keras.layers.Dense(4)])


def _final_loss(optimizer, image, steps=300, batch=32):
    x, y = _classification(image=image)
    model = _model(image, seed=1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer.build(model.trainable_variables)

    @tf.function
    def train(xs, ys):
        for i in tf.range(steps):
            j = (i * batch) % x.shape[0]
            with tf.GradientTape() as tape:
                loss = loss_fn(ys[j:j + batch], model(xs[j:j + batch], training=True))
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss_fn(ys, model(xs))

    return float(train(tf.constant(x), tf.constant(y)))


@functools.lru_cache(maxsize=None)
def _adam_final_loss(image):
    """Adam(1e-3)'s `_final_loss`, run once per task for every weight set compared to it."""
    return _final_loss(keras.optimizers.Adam(1e-3), image)


@pytest.mark.parametrize("weights", [STABLE_WEIGHTS, "stable_v2"])
@pytest.mark.parametrize("image", [False, True], ids=["mlp", "convnet"])
def test_stable_sets_train_within_2x_of_adam(image, weights):
    """Minibatch training of a small MLP and ConvNet: the untrained stable initialisation and the meta-trained
    set made from it end within 2x of Adam(1e-3)'s final loss (docs/stable_design.md has the 10,000-step MNIST
    version)."""
    adam = _adam_final_loss(image)
    learned = _final_loss(lopt_tf.LearnedOptimizer(weights=weights), image)
    assert math.isfinite(learned) and learned <= 2.0 * adam, (learned, adam)
    assert adam < 0.5 * math.log(4)  # the task is learnable in this many steps


def _global_weights(tmp_path) -> str:
    """stable_init with a non-zero global step readout, as a weights file."""
    meta = {**load_weights(STABLE_WEIGHTS)[0], "readout/global_lr_bias": np.float32(0.3),
            "readout/global_lr_kernel": np.linspace(-0.5, 0.5, 20).astype(np.float32)}
    path = str(tmp_path / "global.npz")
    lopt_tf.save_weights(path, meta, GLOBAL)
    return path


@pytest.mark.parametrize("kind", ["stable", "global"])
def test_stable_weights_export_and_keras_round_trip(tmp_path, kind):
    weights, expected_config = (STABLE_WEIGHTS, STABLE) if kind == "stable" else (_global_weights(tmp_path), GLOBAL)
    path = str(tmp_path / "stable_savedmodel")
    lopt_tf.export_saved_model(path, weights=weights)
    loaded = tf.saved_model.load(path)
    param = tf.constant(np.linspace(-1, 1, 37), tf.float32)
    grad = tf.sin(param * 3.0)
    out = loaded.signatures["step"](param=param, grad=grad, **loaded.signatures["init_state"](param=param))
    meta, config, _ = load_weights(weights)
    (expected,), _ = hrnn.step(meta, config, [param], [grad], hrnn.init_state(meta, config, [param]))
    np.testing.assert_allclose(out["param"], expected, rtol=1e-6, atol=1e-7)
    opt = lopt_tf.LearnedOptimizer(weights=weights, seed=2)
    again = lopt_tf.LearnedOptimizer.from_config(opt.get_config())
    assert again.hrnn_config == expected_config and again.get_config() == opt.get_config()


# --- learned_scale ----------------------------------------------------------------------------------------------
def _noise_steps(config, steps=200, seed=0):
    """Pure gradient noise on one tensor: the learned part of the step, its RMS per step."""
    meta = dict(hrnn.init_meta(config, seed=0))
    meta["nominal/log_scale"] = tf.constant(-30.0)  # nominal step ~0: what moves is the learned part
    params = [tf.zeros([64])]
    state = hrnn.init_state(meta, config, params, seed=0)
    rng = np.random.default_rng(seed)
    sizes = []
    for _ in range(steps):
        grads = [tf.constant(rng.normal(size=64).astype(np.float32))]
        new, state = hrnn.step(meta, config, params, grads, state)
        sizes.append(float(tf.sqrt(tf.reduce_mean(tf.square(new[0] - params[0])))))
        params = new
    return np.array(sizes)


def test_learned_scale_nominal_rms_shrinks_the_learned_step_under_gradient_noise():
    unit = _noise_steps(dataclasses.replace(STABLE, learned_scale="unit"))
    scaled = _noise_steps(STABLE)
    np.testing.assert_allclose(scaled[0], unit[0], rtol=1e-4)  # first step: the nominal direction has RMS 1
    # Under pure noise Adam's direction m / sqrt(v) falls to about sqrt((1 - b1) / (1 + b1)) ~ 0.23 (b1 ~ 0.9).
    assert np.median(scaled[100:] / unit[100:]) < 0.5


def test_learned_scale_needs_a_nominal_term():
    with pytest.raises(ValueError, match="learned_scale"):
        dataclasses.replace(STABLE, learned_scale="nominal_rms", nominal_term="none")
    with pytest.raises(ValueError, match="learned_scale"):
        dataclasses.replace(STABLE, learned_scale="rms")
    assert STABLE.learned_scale == "nominal_rms" and DEFAULT.learned_scale == "unit"


# --- the global log step (global_lr="readout") ------------------------------------------------------------------------
GLOBAL = dataclasses.replace(STABLE, global_lr="readout", global_lr_band=2.0)


def _global_run(global_bias, steps=3):
    """Parameters after `steps` steps of GLOBAL, from stable_init's values and a global readout bias."""
    meta = {**load_weights(STABLE_WEIGHTS)[0], "readout/global_lr_kernel": np.zeros(20, np.float32),
            "readout/global_lr_bias": np.float32(global_bias)}
    return run(GLOBAL, steps=steps, meta={k: tf.constant(v) for k, v in meta.items()})[0]


def test_global_step_starts_as_the_optimizer_without_it_and_its_draws_are_unchanged():
    meta = hrnn.init_meta_numpy(GLOBAL)
    base = hrnn.init_meta_numpy(STABLE)
    assert set(meta) - set(base) == {"readout/global_lr_kernel", "readout/global_lr_bias"}
    assert all(np.array_equal(meta[k], base[k]) for k in base)
    assert not np.any(meta["readout/global_lr_kernel"]) and meta["readout/global_lr_bias"] == 0
    stable_meta = {k: tf.constant(v) for k, v in load_weights(STABLE_WEIGHTS)[0].items()}
    np.testing.assert_array_equal(_global_run(0.0), run(STABLE, meta=stable_meta)[0])


@pytest.mark.parametrize("bias,log_step", [(1e3, 2.0), (-1e3, -2.0), (0.5, 2.0 * math.tanh(0.5))])
def test_global_step_multiplies_the_first_update_by_its_bounded_exponential(bias, log_step):
    # One step from zero parameters: the update is exactly the factor exp(G) times the update at G = 0.
    np.testing.assert_allclose(_global_run(bias, steps=1), math.exp(log_step) * _global_run(0.0, steps=1), rtol=1e-5)


def test_global_step_needs_the_global_level_and_gets_a_meta_gradient():
    for bad in ({"global_lr": "integrate"}, {"global_lr": "readout", "level_sizes": (10, 20)},
                {"global_lr": "readout", "global_lr_band": 0.0}):
        with pytest.raises(ValueError, match="global_lr"):
            dataclasses.replace(STABLE, **bad)
    meta_grads = _meta_gradient(GLOBAL, steps=5)
    grads = [meta_grads["readout/global_lr_kernel"], meta_grads["readout/global_lr_bias"]]
    assert all(g is not None and np.all(np.isfinite(g)) and np.any(g.numpy() != 0) for g in grads)
    assert grads[1].numpy() < 0  # a larger step lowers the loss of this quadratic's first steps
