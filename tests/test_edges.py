"""LearnedOptimizer at the edges: wrong inputs are rejected clearly and change nothing, weight decay means what it
means for AdamW, weights files are checked before they are parsed, the string identifier, the backend check."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import lopt_tf


def test_gradient_of_another_shape_names_the_variable_and_changes_nothing():
    variable = keras.Variable(np.ones((3, 4), np.float32), name="kernel")
    other = keras.Variable(np.ones(2, np.float32), name="bias")
    opt = lopt_tf.LearnedOptimizer()
    for bad in (tf.ones((4, 3)), tf.ones((5, 1))):  # same size transposed; another size
        with pytest.raises(ValueError, match=r"kernel.*shapes must match"):
            opt.apply([bad, tf.ones(2)], [variable, other])
    np.testing.assert_array_equal(variable.numpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(other.numpy(), np.ones(2))
    assert int(opt.iterations.numpy()) == 0


def test_integer_trainable_variable_is_refused():
    counter = keras.Variable(np.zeros(3, np.int32), name="counter", dtype="int32")
    with pytest.raises(TypeError, match="counter.*int32"):
        lopt_tf.LearnedOptimizer().build([counter])


@pytest.mark.parametrize("field, value", [("use_attention", "no"), ("num_gradient_scales", 2.5),
                                          ("level_sizes", "10,20"), ("max_log_lr", True), ("global_input", 1),
                                          ("init_lr_range", (1e-3, "x"))])
def test_config_fields_of_the_wrong_type_are_refused(field, value):
    with pytest.raises(TypeError, match=f"HRNNConfig.{field}"):
        lopt_tf.HRNNConfig(**{field: value})


def test_config_accepts_json_lists_and_numpy_numbers():
    config = lopt_tf.HRNNConfig(level_sizes=[np.int64(10), 20], init_lr_range=[1e-3, 1e-2], max_log_lr=np.int32(30))
    assert config.level_sizes == (10, 20) and config.init_lr_range == (1e-3, 1e-2) and config.max_log_lr == 30.0
    assert lopt_tf.HRNNConfig.from_json(config.to_json()) == config


def test_hrnn_config_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match="hrnn_config must be an HRNNConfig"):
        lopt_tf.LearnedOptimizer(hrnn_config="big")


def test_weight_decay_acts_as_adamw_at_its_default_learning_rate():
    """A weight with a zero gradient: only the decay moves it, by weight_decay * 1e-3 per step as AdamW(1e-3)."""
    ours, adamw = keras.Variable(np.ones(3, np.float32)), keras.Variable(np.ones(3, np.float32))
    lopt_tf.LearnedOptimizer(weight_decay=0.5).apply([tf.zeros(3)], [ours])
    keras.optimizers.AdamW(1e-3, weight_decay=0.5).apply([tf.zeros(3)], [adamw])
    np.testing.assert_allclose(ours.numpy(), 1.0 - 0.5e-3, rtol=1e-7)
    np.testing.assert_allclose(ours.numpy(), adamw.numpy(), rtol=1e-7)
    half = keras.Variable(np.ones(3, np.float32))
    lopt_tf.LearnedOptimizer(weight_decay=0.5, learning_rate=0.5).apply([tf.zeros(3)], [half])
    np.testing.assert_allclose(half.numpy(), 1.0 - 0.25e-3, rtol=1e-7)


def test_model_saved_with_relative_weights_path_loads_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    meta, config, _ = lopt_tf.load_weights("init")
    lopt_tf.save_weights("relw.npz", {k: v + 0.01 for k, v in meta.items()}, config)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=lopt_tf.LearnedOptimizer(weights="relw.npz"), loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), verbose=0)
    model.save("m.keras")
    monkeypatch.chdir(tmp_path / "b")
    with pytest.warns(UserWarning, match="relw.npz"):
        loaded = keras.models.load_model(tmp_path / "a" / "m.keras")
    for key, value in model.optimizer.meta_parameters.items():  # the real values come from the saved variables
        np.testing.assert_array_equal(loaded.optimizer.meta_parameters[key], value)


def test_garbage_weights_file_is_not_a_weights_file(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x93NUMPY garbage that is not a zip archive")
    with pytest.raises(lopt_tf.WeightsError, match="not a lopt_tf weights file") as error:
        lopt_tf.LearnedOptimizer(weights=str(garbage))
    assert "pickle" not in str(error.value)


def test_string_identifier_compiles():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="learned_optimizer", loss="mse")
    assert isinstance(model.optimizer, lopt_tf.LearnedOptimizer)
    assert model.optimizer.get_config()["weights"] == lopt_tf.DEFAULT_WEIGHTS


def test_other_keras_backend_is_a_clear_import_error():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", "import lopt_tf"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "ImportError: lopt_tf needs Keras's TensorFlow backend" in result.stderr
