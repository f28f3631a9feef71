"""MNIST: the verified offline IDX loader (real files from the shared data directory), the tfds-first fallback
logic, and the MLP / ConvNet evaluation problems in both views (Keras `fit` and pure `stateless_call`)."""

import gzip
import logging
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from problems import mnist
from problems.base import value_and_grad

# Label histogram of the official MNIST test split.
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def data():
    return mnist.load_mnist(source="idx")


@pytest.fixture(scope="module")
def small(data):
    return mnist.MnistData(data.x_train[:200], data.y_train[:200], data.x_eval[:50], data.y_eval[:50], data.source)


@pytest.fixture
def mnist_copy(tmp_path):
    for name in ("MD5SUMS", mnist.IMAGES_FILE, mnist.LABELS_FILE):
        shutil.copy(mnist.default_mnist_dir() / name, tmp_path / name)
        (tmp_path / name).chmod(0o644)
    return tmp_path


def test_offline_split_has_10000_images_and_the_right_histogram():
    images, labels = mnist.read_idx_test_split()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert np.bincount(labels, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert 30 < images.mean() < 40 and images.max() == 255  # real digits: mostly black background


def test_load_idx_splits_8000_2000(data):
    assert data.source.startswith("idx:")
    assert data.x_train.shape == (8000, 28, 28, 1) and data.x_eval.shape == (2000, 28, 28, 1)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32
    together = np.concatenate([data.y_train, data.y_eval])
    assert np.bincount(together, minlength=10).tolist() == TEST_LABEL_COUNTS
    again = mnist.load_mnist(source="idx")
    np.testing.assert_array_equal(again.y_eval, data.y_eval)  # the split is deterministic
    other = mnist.load_mnist(source="idx", split_seed=1)
    assert not np.array_equal(other.y_eval, data.y_eval)


def test_corrupted_file_is_refused(mnist_copy):
    path = mnist_copy / mnist.IMAGES_FILE
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(mnist.MnistChecksumError):
        mnist.read_idx_test_split(mnist_copy)
    with pytest.raises(mnist.MnistChecksumError):
        mnist.load_mnist(source="idx", offline_dir=mnist_copy)


def test_wrong_md5sums_listing_and_missing_file_are_refused(mnist_copy):
    (mnist_copy / "MD5SUMS").write_text(f"{'0' * 32}  {mnist.LABELS_FILE}\n")
    with pytest.raises(mnist.MnistChecksumError):
        mnist.verify_checksums(mnist_copy)
    (mnist_copy / "MD5SUMS").unlink()
    mnist.verify_checksums(mnist_copy)  # the official sums are built in
    (mnist_copy / mnist.LABELS_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        mnist.read_idx_test_split(mnist_copy)


def test_parse_idx_checks_header():
    labels = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    np.testing.assert_array_equal(mnist.parse_idx(labels, 0x801), [7, 8, 9])
    with pytest.raises(ValueError, match="magic"):
        mnist.parse_idx(labels, 0x803)
    with pytest.raises(ValueError, match="bytes"):
        mnist.parse_idx(labels[:-1], 0x801)
    real = gzip.decompress((mnist.default_mnist_dir() / mnist.IMAGES_FILE).read_bytes())
    assert mnist.parse_idx(real, 0x803).shape == (10000, 28, 28)


def test_directory_comes_from_environment(mnist_copy, monkeypatch):
    monkeypatch.setenv(mnist.MNIST_DIR_ENV, str(mnist_copy))
    assert mnist.default_mnist_dir() == mnist_copy
    assert mnist.load_mnist(source="idx").source == f"idx:{mnist_copy}"
    monkeypatch.delenv(mnist.MNIST_DIR_ENV)
    assert mnist.default_mnist_dir().parts[-3:] == ("shared", "data", "mnist")


def test_auto_falls_back_to_idx_with_a_warning_and_never_to_random_data(monkeypatch, caplog, tmp_path):
    def no_tfds(data_dir):
        raise ConnectionError("no network")

    monkeypatch.setattr(mnist, "_load_tfds", no_tfds)
    with caplog.at_level(logging.WARNING, logger="problems.mnist"), pytest.warns(UserWarning, match="offline IDX"):
        loaded = mnist.load_mnist()
    assert loaded.source.startswith("idx:") and "offline IDX" in caplog.text
    with pytest.raises(FileNotFoundError):  # neither source available: an error, not made-up data
        mnist.load_mnist(offline_dir=tmp_path)
    with pytest.raises(ValueError):
        mnist.load_mnist(source="random")


# --- problems -------------------------------------------------------------------------------------------------------
BUILDERS = [(mnist.mnist_mlp_problem, a) for a in ("relu", "sigmoid")] + [
    (mnist.mnist_convnet_problem, a) for a in ("relu", "sigmoid")]


@pytest.mark.parametrize("make, activation", BUILDERS)
def test_stateless_loss_equals_fit_loss(make, activation, small):
    problem = make(activation, data=small)
    params = problem.init_params(3)
    model = problem.make_model(3)
    for variable, value in zip(model.trainable_variables, params):
        np.testing.assert_array_equal(variable.numpy(), value.numpy())
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=problem.loss_fn(), jit_compile=False)
    history = model.fit(problem.train_dataset(shuffle_seed=None, batch_size=200), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["loss"][0], float(problem.objective(params)), rtol=1e-5)
    assert problem.family == "mnist" and problem.name == f"mnist_{make.__name__.split('_')[1]}_{activation}"


@pytest.mark.parametrize("make, activation", BUILDERS)
def test_pure_view_gradient_is_reproducible_and_compiles(make, activation, small):
    problem = make(activation, data=small)
    params = problem.init_params(0)
    loss, grads = problem.gradient(params, tf.constant(4), 1)
    loss2, grads2 = problem.gradient(params, tf.constant(4), 1)
    assert float(loss) == float(loss2) and np.isfinite(float(loss)) and float(loss) >= 0
    other, _ = problem.gradient(params, tf.constant(5), 1)
    assert float(other) != float(loss)  # another mini-batch of 64
    compiled = tf.function(lambda ps, s: problem.gradient(ps, s, 1), jit_compile=True)
    xla_loss, xla_grads = compiled(params, tf.constant(4))
    np.testing.assert_allclose(float(xla_loss), float(loss), rtol=1e-4)
    for a, b in zip(xla_grads, grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    # Tape gradient of the pure loss equals Keras's own gradient for the same batch.
    x, y = next(iter(problem.train_dataset(shuffle_seed=None, batch_size=32)))
    model = problem.make_model(0)
    with tf.GradientTape() as tape:
        keras_loss = problem.loss_fn()(y, model(x))
    keras_grads = tape.gradient(keras_loss, model.trainable_variables)
    _, pure_grads = value_and_grad(lambda p: problem.loss(p, problem.x_train[:32], problem.y_train[:32]), params)
    for a, b in zip(keras_grads, pure_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_initialisation_follows_the_original(small):
    mlp = mnist.mnist_mlp_problem("relu", data=small)
    w1, b1, w2, _ = mlp.init_params(0)
    assert w1.shape == (784, 64) and mlp.num_params == 784 * 64 + 64 + 64 * 10 + 10
    assert float(tf.math.reduce_std(w1)) == pytest.approx(np.sqrt(2 / 784), rel=0.05)
    assert float(tf.math.reduce_std(w2)) == pytest.approx(np.sqrt(2 / 64), rel=0.15)
    assert float(tf.math.reduce_std(b1)) == pytest.approx(0.1, rel=0.3)
    conv = mnist.mnist_convnet_problem("relu", data=small)
    shapes = conv.param_shapes
    assert shapes == ((3, 3, 1, 8), (8,), (5, 5, 8, 8), (8,), (6272, 10), (10,))
    dense = conv.init_params(0)[4]
    assert float(tf.math.reduce_std(dense)) == pytest.approx(0.01, rel=0.05)
    a, b = conv.init_params(0), conv.init_params(1)
    assert not np.array_equal(a[4], b[4])
    for x, y in zip(a, conv.init_params(0)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError):
        mnist.mnist_mlp_problem("tanh", data=small)


def test_datasets_for_fit(small):
    problem = mnist.mnist_convnet_problem("relu", data=small)
    x, y = next(iter(problem.train_dataset()))
    assert x.shape == (64, 28, 28, 1) and x.dtype == tf.float32 and y.shape == (64,)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    xe, _ = next(iter(problem.eval_dataset()))
    assert xe.shape[0] == 50


def test_tfds_path_with_mock_data():
    """The primary tfds path, exercised with tfds's mock data (random images, not MNIST) since CI is offline."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        loaded = mnist.load_mnist(source="tfds")
    assert loaded.source == "tfds"
    assert loaded.x_train.shape == (12, 28, 28, 1) and loaded.x_train.dtype == np.uint8
    assert loaded.y_eval.dtype == np.int32 and loaded.y_eval.max() < 10


def test_keras_problem_as_a_meta_training_task_under_xla(small):
    """An unrolled, XLA-compiled inner loop on the MNIST MLP, differentiated through the gradients (2nd order)."""
    problem = mnist.mnist_mlp_problem("sigmoid", data=small, objective_examples=64)
    params = problem.init_params(0)

    @tf.function(jit_compile=True)
    def meta_value_and_grad(log_lr):
        with tf.GradientTape() as tape:
            tape.watch(log_lr)

            def body(step, ps, total):
                _, grads = problem.gradient(ps, step, 3)
                ps = [p - tf.exp(log_lr) * g for p, g in zip(ps, grads)]
                return step + 1, ps, total + tf.math.log(problem.objective(ps))

            _, _, total = tf.while_loop(lambda s, *_: s < 3, body, (tf.constant(0), params, tf.constant(0.0)),
                                        maximum_iterations=3)
        return total, tape.gradient(total, log_lr)

    value, grad = meta_value_and_grad(tf.constant(-2.0))
    assert np.isfinite(float(value)) and np.isfinite(float(grad)) and float(grad) != 0.0
