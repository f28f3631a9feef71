"""train.scale_step: a scaled weight set is the same optimizer as `learning_rate=m`, and bad input is refused."""

import math

import keras
import numpy as np
import pytest

import lopt_tf
from lopt_tf.weights import load_weights
from train.scale_step import scale_step, write_scaled


def _fit_weights(weights, learning_rate, steps=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=lopt_tf.LearnedOptimizer(weights=weights, learning_rate=learning_rate, seed=0),
                  loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return [v.numpy() for v in model.trainable_variables]


def test_scaled_weights_equal_the_learning_rate_multiplier(tmp_path):
    (path,) = write_scaled("hrnn_v4", [0.03], str(tmp_path))
    assert path.endswith("hrnn_v4_x0.03.npz")
    meta, config, info = load_weights(path)
    base, base_config, _ = load_weights("hrnn_v4")
    assert config == base_config
    assert info["step_scale"] == {"source": "hrnn_v4", "factor": 0.03}
    np.testing.assert_allclose(meta["stepsize_offset"], base["stepsize_offset"] + math.log(0.03), rtol=1e-6)
    assert all(np.array_equal(meta[k], base[k]) for k in base if k != "stepsize_offset")
    scaled = _fit_weights(path, 1.0)
    multiplied = _fit_weights("hrnn_v4", 0.03)
    unscaled = _fit_weights("hrnn_v4", 1.0)
    for a, b in zip(scaled, multiplied):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(scaled, unscaled)) > 1e-3  # the scale does change the steps


@pytest.mark.parametrize("factor", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_factor_is_refused_before_writing(tmp_path, factor):
    with pytest.raises(ValueError, match="factor"):
        write_scaled("hrnn_v4", [factor], str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_weights_without_a_step_offset_are_refused():
    with pytest.raises(ValueError, match="stepsize_offset"):
        scale_step({"other": np.zeros(1)}, 0.1)


def test_init_lr_variant_starts_every_learning_rate_at_that_value(tmp_path):
    (path,) = write_scaled("hrnn_v4", [0.03], str(tmp_path), init_lr=1e-3)
    assert path.endswith("hrnn_v4_x0.03_init0.001.npz")
    meta, config, info = load_weights(path)
    assert config.init_lr_range == (1e-3, 1e-3)
    assert info["init_lr"] == 1e-3
    (plain,) = write_scaled("hrnn_v4", [0.03], str(tmp_path / "plain"))
    plain_meta, plain_config, _ = load_weights(plain)
    assert all(np.array_equal(meta[k], plain_meta[k]) for k in plain_meta)  # only the config differs
    assert plain_config.init_lr_range == (1e-6, 1e-2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    opt = lopt_tf.LearnedOptimizer(weights=path)
    opt.build(model.trainable_variables)
    np.testing.assert_allclose(opt.state["log_lr"].numpy(), math.log(1e-3), rtol=1e-6)
    default = lopt_tf.LearnedOptimizer(weights="hrnn_v4")
    default.build(model.trainable_variables)
    assert np.ptp(default.state["log_lr"].numpy()) > 0.5  # the meta-training draw varies per element


@pytest.mark.parametrize("init_lr", [0.0, -1e-3, float("nan")])
def test_bad_init_lr_is_refused_before_writing(tmp_path, init_lr):
    with pytest.raises(ValueError, match="init_lr"):
        write_scaled("hrnn_v4", [0.03], str(tmp_path), init_lr=init_lr)
    assert not list(tmp_path.iterdir())


def _log_lr_after_one_step(weights):
    var = keras.Variable(np.linspace(-1.0, 1.0, 12).reshape(3, 4).astype("float32"))
    opt = lopt_tf.LearnedOptimizer(weights=weights, seed=0)
    opt.apply([keras.ops.convert_to_tensor(np.full((3, 4), 0.5, "float32"))], [var])
    return opt.state["log_lr"].numpy()


def test_lr_bias_shift_adds_a_constant_drift_to_every_log_learning_rate(tmp_path):
    (path,) = write_scaled("hrnn_v4", [0.03], str(tmp_path), lr_bias_shift=0.016)
    assert path.endswith("hrnn_v4_x0.03_lrb0.016.npz")
    meta, config, info = load_weights(path)
    (plain,) = write_scaled("hrnn_v4", [0.03], str(tmp_path / "plain"))
    plain_meta, plain_config, _ = load_weights(plain)
    assert config == plain_config and info["lr_bias_shift"] == 0.016
    np.testing.assert_allclose(meta["readout/lr_bias"], plain_meta["readout/lr_bias"] + 0.016, rtol=1e-6)
    assert all(np.array_equal(meta[k], plain_meta[k]) for k in plain_meta if k != "readout/lr_bias")
    keep = 1.0 / (1.0 + math.exp(-float(meta["lr_momentum_logit"])))
    drift = _log_lr_after_one_step(path) - _log_lr_after_one_step(plain)
    np.testing.assert_allclose(drift, (1.0 - keep) * 0.016, atol=2e-6)  # float32 log LRs near -10


@pytest.mark.parametrize("shift", [float("nan"), float("inf")])
def test_bad_lr_bias_shift_is_refused_before_writing(tmp_path, shift):
    with pytest.raises(ValueError, match="lr_bias_shift"):
        write_scaled("hrnn_v4", [0.03], str(tmp_path), lr_bias_shift=shift)
    assert not list(tmp_path.iterdir())
