"""PES meta-gradient estimator: agrees with the exact meta-gradient, carries and resets its accumulators, drops
non-finite particles, resumes bit-exactly, and gives the same update on two workers as on one."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import lopt_tf
import problems
from lopt_tf import hrnn
from tests import workers
from train.pes import FlatMeta, PESStreams, make_pes_unroll, perturbations, sample_schedule, trainable_keys
from train.trainer import MetaTrainConfig, MetaTrainer
from train.unroll import make_unroll

# Horizon 8 in truncations of 4: every task has two truncations, a new one starts every second meta-step.
PES = MetaTrainConfig(problem_set="quadratic", estimator="pes", meta_steps=5, pes_pairs=2, pes_truncation=4,
                      pes_min_horizon=8, pes_max_horizon=8, pes_initial_offset=0, meta_optimizer="adam",
                      meta_learning_rate=1e-2, validate_every=0, checkpoint_every=2, jit_compile=False)
QUADRATIC = problems.Noisy(problems.Quadratic.random(5, seed=3), 0.1)


class OneProblem:
    """A sampler that always returns the same problem object, so a trainer traces its program once."""

    def __init__(self, problem):
        self.problem = problem

    def sample(self, seed):  # noqa: ARG002
        return self.problem


def _trainer(config, path):
    trainer = MetaTrainer(config, str(path), verbose=0)
    trainer.pes.sampler = OneProblem(QUADRATIC)
    return trainer


def test_pes_estimate_agrees_with_the_exact_meta_gradient():
    # One 40-step task in 4 truncations of 10 on a small noisy quadratic; 12 trainable meta-parameters (the step
    # offset, the learning-rate readout), the step offset raised so that the task makes real progress (meta-loss
    # -0.31). The exact gradient of the whole task's mean log ratio is second-order back-propagation through all 40
    # steps; PES sees each truncation's losses only, so it needs its accumulated perturbations to get the influence
    # of earlier truncations right. 128 antithetic pairs are 128 independent estimates: their mean must lie within
    # 4 standard errors of the exact value in every component (observed: at most 2.4) and point the same way
    # (cosine > 0.9; observed 0.96). Without the accumulators (truncated ES) components lie up to 14 standard
    # errors off, because the short-horizon part is all it sees.
    config = lopt_tf.HRNNConfig()
    meta_vars = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    meta_vars["stepsize_offset"].assign(6.0)
    horizon, truncation, pairs = 40, 10, 128
    run = dataclasses.replace(PES, pes_pairs=pairs, pes_truncation=truncation, pes_min_horizon=horizon,
                              pes_max_horizon=horizon)
    keys = trainable_keys(meta_vars, "stepsize_offset,readout/lr_")
    assert keys == ("readout/lr_bias", "readout/lr_kernel", "stepsize_offset")
    streams = PESStreams(run, config, meta_vars, OneProblem(QUADRATIC), 0, 1, FlatMeta.of(meta_vars, keys))
    per_truncation = []
    for step in range(horizon // truncation):
        _, _, info = streams.estimate(step)
        per_truncation.append(info["pair_gradients"][0])
    assert streams.streams[0].done and info["dropped"] == 0
    # Each truncation's estimate is for its losses / K; their mean over the task is for the mean over its steps.
    estimates = np.mean(per_truncation, 0)  # [pairs, 12]
    mean, stderr = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(pairs)

    task = streams.streams[0]
    params = QUADRATIC.init_params(problems.derive_seed(task.seed, 1))
    state = hrnn.init_state(meta_vars, config, params, problems.derive_seed(task.seed, 2))
    exact_fn = make_unroll(QUADRATIC, config, meta_vars, horizon, meta_objective="log_ratio", loss_clip=run.loss_clip)
    loss, grads, *_ = exact_fn(params, state, QUADRATIC.objective(params), 0, horizon, task.seed)
    exact = np.concatenate([grads[k].numpy().reshape(-1) for k in keys])
    assert float(loss) < -0.2
    z = (mean - exact) / stderr
    assert np.max(np.abs(z)) < 4.0, z
    assert mean @ exact / (np.linalg.norm(mean) * np.linalg.norm(exact)) > 0.9


def test_accumulators_carry_over_truncations_and_restart_with_each_task(tmp_path):
    config = dataclasses.replace(PES, trainable_groups="readout/,stepsize_offset")
    trainer = _trainer(config, tmp_path)
    flat = trainer.pes.flat
    assert flat.keys == tuple(k for k in sorted(trainer.meta_vars) if k.startswith("readout/")) + ("stepsize_offset",)
    frozen = {k: v.numpy().copy() for k, v in trainer.meta_vars.items() if k not in flat.keys}
    trained = {k: trainer.meta_vars[k].numpy().copy() for k in flat.keys}
    eps = [perturbations(config.seed, step, 0, config.pes_pairs, flat.size, config.pes_std) for step in range(3)]

    trainer.meta_step()
    task = trainer.streams[0]
    assert (task.index, task.step) == (0, 4) and not task.done
    np.testing.assert_array_equal(task.accum, eps[0])
    trainer.meta_step()
    assert trainer.streams[0] is task and task.done
    np.testing.assert_array_equal(task.accum, eps[0] + eps[1])  # carried across truncations
    trainer.meta_step()
    task = trainer.streams[0]
    assert (task.index, task.step) == (1, 4)
    np.testing.assert_array_equal(task.accum, eps[2])  # a new task: the accumulator restarted
    for k, v in frozen.items():
        np.testing.assert_array_equal(trainer.meta_vars[k].numpy(), v, err_msg=k)
    assert any(np.any(trainer.meta_vars[k].numpy() != v) for k, v in trained.items())
    with pytest.raises(ValueError, match="match no meta-parameter"):
        trainable_keys(trainer.meta_vars, "readout/,no_such_group")


def test_non_finite_particles_are_dropped_and_counted(tmp_path):
    # Perturbations of the step offset this large overflow the step of one particle of every pair.
    config = dataclasses.replace(PES, meta_steps=1, trainable_groups="stepsize_offset", pes_std=1e3)
    trainer = _trainer(config, tmp_path)
    before = trainer.meta_vars["stepsize_offset"].numpy()
    result = trainer.run()
    assert result["dropped_particles"] == 2 * config.pes_pairs and result["skipped"] == 1
    assert int(trainer.ended_tasks.numpy()) == 1 and trainer.streams[0].done
    assert trainer.meta_vars["stepsize_offset"].numpy() == before


def test_pes_resume_gives_the_same_meta_parameters_and_particles(tmp_path):
    # Two streams, random horizons 6..14 and random initial offsets: tasks restart at different meta-steps. The
    # "kill" after meta-step 4 falls inside tasks, with non-zero accumulators.
    config = dataclasses.replace(PES, meta_steps=8, problems_per_step=2, pes_min_horizon=6, pes_max_horizon=14,
                                 pes_initial_offset=10, checkpoint_every=3)
    schedules = [sample_schedule(problems.derive_seed(config.seed, 0, s, 0), 6, 14, 10, True) for s in (0, 1)]
    assert schedules[0] != schedules[1] and any(start > 0 for _, start in schedules)
    straight = _trainer(config, tmp_path / "a")
    straight.run()
    assert sum(t.index for t in straight.streams) >= 3  # tasks restarted on both streams
    first = _trainer(dataclasses.replace(config, meta_steps=4), tmp_path / "b")
    first.run()
    assert any(np.any(t.accum != 0) and not t.done for t in first.streams)
    del first  # "killed": nothing but the files survives
    resumed = _trainer(config, tmp_path / "b")
    resumed.run(resume=True)
    for k, v in straight.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), resumed.meta_vars[k].numpy(), err_msg=k)
    for a, b in zip(straight.streams, resumed.streams):
        assert (a.index, a.step, a.horizon) == (b.index, b.step, b.horizon)
        np.testing.assert_array_equal(a.accum, b.accum)
        for k in a.state:
            np.testing.assert_array_equal(a.state[k].numpy(), b.state[k].numpy(), err_msg=k)
        for p, q in zip(a.params, b.params):
            np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_pes_resume_from_a_task_file_in_an_older_state_layout_starts_new_tasks(tmp_path):
    from tests.test_meta_train import to_parameter_major

    config = dataclasses.replace(PES, meta_steps=3, checkpoint_every=3)
    first = _trainer(config, tmp_path)
    first.run()
    assert first.streams[0].state is not None and not first.streams[0].done
    to_parameter_major(str(tmp_path / "checkpoints" / "tasks-3.npz"))
    resumed = _trainer(dataclasses.replace(config, meta_steps=4), tmp_path)
    with pytest.warns(UserWarning, match="does not have the current layout"):
        assert resumed.restore()
    assert resumed.streams[0] is None and resumed.pes.next_task == first.pes.next_task
    for k, v in first.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), resumed.meta_vars[k].numpy(), err_msg=k)
    assert resumed.run(resume=True)["step"] == 4
    assert resumed.streams[0].index == first.pes.next_task[0]


def test_pes_program_compiles_with_xla():
    config = lopt_tf.HRNNConfig()
    meta_vars = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    flat = FlatMeta.of(meta_vars, trainable_keys(meta_vars, ""))
    eps = tf.constant(perturbations(0, 0, 0, 2, flat.size, 0.01))
    params = QUADRATIC.init_params(1)
    outputs = []
    for jit in (False, True):
        fn = make_pes_unroll(QUADRATIC, config, meta_vars, flat, 2, 4, jit_compile=jit)
        state = fn.init_states(eps, params, 2)
        stacked = [tf.tile(p[None], [4, 1]) for p in params]
        outputs.append(fn(eps, stacked, state, QUADRATIC.objective(params), 0, 3, 5))
    (delta, sums, finite, f_last, params_a, _), (delta_x, sums_x, finite_x, f_last_x, params_x, _) = outputs
    assert finite.numpy().all() and finite_x.numpy().all()
    np.testing.assert_allclose(sums_x.numpy(), sums.numpy(), rtol=1e-4)
    np.testing.assert_allclose(delta_x.numpy(), delta.numpy(), rtol=1e-2, atol=1e-7)
    np.testing.assert_allclose(params_x[0].numpy(), params_a[0].numpy(), rtol=1e-4, atol=1e-6)


def test_two_pes_workers_give_the_same_update_as_one_worker_with_all_streams(tmp_path):
    config = dataclasses.replace(PES, meta_steps=2, problems_per_step=1)
    flags = ["--problem_set=quadratic", "--estimator=pes", "--meta_steps=2", "--pes_pairs=2", "--pes_truncation=4",
             "--pes_min_horizon=8", "--pes_max_horizon=8", "--pes_initial_offset=0", "--validate_every=0",
             "--checkpoint_every=2", "--meta_optimizer=adam", "--meta_learning_rate=1e-2", "--noxla",
             "--problems_per_step=1"]
    procs = workers.start_workers(flags, tmp_path / "dist")
    # Meanwhile, one worker runs both streams (global streams 0 and 1: the same tasks and perturbations).
    alone = MetaTrainer(dataclasses.replace(config, problems_per_step=2), str(tmp_path / "alone"), verbose=0)
    alone.run()
    workers.finish(procs)
    chief, worker1 = workers.chief_and_worker1_meta(tmp_path / "dist")
    for k, v in alone.meta_vars.items():
        np.testing.assert_array_equal(chief[k], v.numpy(), err_msg=k)
        np.testing.assert_array_equal(worker1[k], v.numpy(), err_msg=k)
    initial = lopt_tf.load_weights("init")[0]
    assert not np.array_equal(initial["l0/gate_kernel"], chief["l0/gate_kernel"])


def test_minibatch_task_loss_scores_the_parameters_before_each_step():
    """With `task_loss="minibatch"` ℓ_t is the loss the gradient comes with, at the parameters before step t: on a
    noise-free problem (mini-batch loss = objective) the truncation's terms are the objective mode's shifted by
    one step."""
    quadratic = problems.Quadratic.random(5, seed=3)
    config = lopt_tf.HRNNConfig()
    meta_vars = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    flat = FlatMeta.of(meta_vars, trainable_keys(meta_vars, ""))
    eps = tf.constant(perturbations(0, 0, 0, 2, flat.size, 0.01))
    params = quadratic.init_params(1)
    f_init = quadratic.objective(params)
    outputs = {}
    for task_loss in ("objective", "minibatch"):
        fn = make_pes_unroll(quadratic, config, meta_vars, flat, 2, 6, "clipped_ratio", 10.0, task_loss=task_loss)
        state = fn.init_states(eps, params, 2)
        outputs[task_loss] = fn(eps, [tf.tile(p[None], [4, 1]) for p in params], state, f_init, 0, 6, 5)
    _, sums, _, f_last, params_objective, _ = outputs["objective"]
    _, sums_mb, finite_mb, _, params_mb, _ = outputs["minibatch"]
    assert finite_mb.numpy().all()
    np.testing.assert_array_equal(params_mb[0].numpy(), params_objective[0].numpy())  # same trajectories
    first = 1.0  # f_0 / f_init
    expected = sums.numpy() + first - np.minimum(f_last.numpy() / float(f_init), 10.0)
    np.testing.assert_allclose(sums_mb.numpy(), expected, rtol=1e-5)
    assert not np.allclose(sums_mb.numpy(), sums.numpy(), rtol=1e-3)  # the shift is visible
    with pytest.raises(ValueError, match="task_loss"):
        make_pes_unroll(quadratic, config, meta_vars, flat, 2, 6, task_loss="batch")
