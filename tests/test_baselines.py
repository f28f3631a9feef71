"""The pure baseline rules: Keras's optimizers step for step, the meta-optimizer's values pinned, and the
evaluation reading a weight set once."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import lopt_tf
from train import baselines
from train.evaluation import optimizers as evaluation_optimizers
from train.meta_optimizers import MetaOptimizer

GRADS = [[0.5, -3.0, 1e-3], [0.25, 1.0, -2e-3], [-0.5, 0.5, 0.0], [2.0, -0.1, 1e-4], [0.3, 0.3, -0.3]]


@pytest.mark.parametrize("rule, reference", [
    (baselines.Adam(), lambda: keras.optimizers.Adam(1e-2)),
    (baselines.RMSProp(), lambda: keras.optimizers.RMSprop(1e-2)),
    (baselines.SGD(), lambda: keras.optimizers.SGD(1e-2, momentum=0.9)),
], ids=["adam", "rmsprop", "sgd_momentum"])
def test_pure_rule_follows_the_keras_optimizer(rule, reference):
    start = np.array([1.0, -2.0, 0.5], np.float32)
    var, opt = keras.Variable(start), reference()
    params, state = [tf.constant(start)], rule.init([tf.constant(start)])
    for g in GRADS:
        opt.apply([tf.constant(g)], [var])
        params, state = rule.update([tf.constant(g)], state, params, 1e-2)
        np.testing.assert_allclose(params[0].numpy(), var.numpy(), rtol=1e-6, atol=1e-7)


def test_rules_keep_dict_structures():
    params = {"w": tf.ones([2, 2]), "b": tf.zeros([3])}
    grads = {"w": tf.fill([2, 2], 0.5), "b": tf.ones([3])}
    for rule in (baselines.Adam(), baselines.RMSProp(), baselines.SGD()):
        new, state = rule.update(grads, rule.init(params), params, 0.1)
        assert set(new) == {"w", "b"} and new["w"].shape == (2, 2) and new["b"].shape == (3,)
        assert float(new["b"][0]) < 0.0


@pytest.mark.parametrize("kind, expected_a, expected_b", [
    ("rmsprop", [0.9758005738258362, -1.990667700767517, 0.4969486594200134], 2.9262261390686035),
    ("adam", [0.9795705676078796, -1.986722707748413, 0.49649110436439514], 2.9700000286102295),
])
def test_meta_optimizer_update_is_pinned(kind, expected_a, expected_b):
    # Values of the meta-optimizer's own formulas (RMSProp eps 1e-20 inside the root; Adam eps 1e-8 on the
    # bias-corrected root), three steps with the -3.0 clipped to -2.0: a resumed meta-training run relies on them.
    meta = {"a": tf.Variable([1.0, -2.0, 0.5]), "b": tf.Variable(3.0)}
    opt = MetaOptimizer(meta, kind, 1e-2, clip_value=2.0)
    for g in GRADS[:3]:
        assert opt.apply({"a": tf.constant(g), "b": tf.constant(0.1)})
    np.testing.assert_array_equal(meta["a"].numpy(), np.array(expected_a, np.float32))
    assert meta["b"].numpy() == np.float32(expected_b)
    assert int(opt.iterations.numpy()) == 3


def test_evaluation_keras_baselines_use_the_pure_rules_hyper_parameters():
    adam = evaluation_optimizers.OptimizerSpec("adam", 1e-3).keras_optimizer()
    rms = evaluation_optimizers.OptimizerSpec("rmsprop", 1e-3).keras_optimizer()
    sgd = evaluation_optimizers.OptimizerSpec("momentum", 1e-3).keras_optimizer()
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.999, 1e-7)
    assert (rms.rho, rms.epsilon, sgd.momentum) == (0.9, 1e-7, 0.9)


def test_a_weight_set_is_read_once_per_process_and_again_when_rewritten(tmp_path, monkeypatch):
    path = str(tmp_path / "w.npz")
    lopt_tf.save_weights(path, lopt_tf.hrnn.init_meta_numpy(lopt_tf.HRNNConfig()), lopt_tf.HRNNConfig())
    reads = []
    real = evaluation_optimizers.load_weights
    monkeypatch.setattr(evaluation_optimizers, "load_weights", lambda w: reads.append(w) or real(w))
    spec = evaluation_optimizers.OptimizerSpec("learned", weights=path)
    digest = spec.key()["weights_digest"]
    spec.hrnn_config()
    evaluation_optimizers.PureOptimizer(spec)
    assert reads == [path]
    lopt_tf.save_weights(path, lopt_tf.hrnn.init_meta_numpy(lopt_tf.HRNNConfig(), seed=1), lopt_tf.HRNNConfig())
    os.utime(path, ns=(1, 1))  # a different modification time even on a coarse-grained file system
    assert spec.key()["weights_digest"] != digest and reads == [path, path]
