"""Meta-trainer: it learns, resumes bit-exactly, skips non-finite meta-gradients, and runs multi-worker."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import lopt_tf
from tests import workers
from train.meta_optimizers import MetaOptimizer
from train.trainer import MetaTrainConfig, MetaTrainer, clip_by_global_norm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMALL = MetaTrainConfig(
    problem_set="quadratic", meta_steps=20, min_length=20, length_scale=0.0, max_length=20, min_unrolls=10,
    unrolls_scale=0.0, meta_optimizer="adam", meta_learning_rate=3e-3, seed=0, checkpoint_every=5,
    validate_every=0, num_validation_problems=3, validation_length=40, jit_compile=True)


def test_twenty_meta_steps_lower_validation_meta_loss(tmp_path):
    trainer = MetaTrainer(SMALL, str(tmp_path), verbose=0)
    before = trainer.validate()
    result = trainer.run()
    after = trainer.validate()
    assert result["step"] == 20 and result["skipped"] == 0
    assert np.isfinite(before) and after < before - 1e-3, (before, after)
    # The output is a weights file that LearnedOptimizer loads.
    opt = lopt_tf.LearnedOptimizer(weights=str(tmp_path / "weights_latest.npz"))
    np.testing.assert_array_equal(opt.meta_parameters["stepsize_offset"],
                                  trainer.meta_vars["stepsize_offset"].numpy())
    with open(tmp_path / "run_config.json") as f:
        assert MetaTrainConfig.from_dict(json.load(f)) == SMALL


def test_resume_gives_the_same_meta_parameters_as_an_uninterrupted_run(tmp_path):
    # Tasks change at steps 6, 12, 18; the "kill" at step 10 falls inside a task.
    config = dataclasses.replace(SMALL, min_unrolls=6, problems_per_step=2, jit_compile=False)
    straight = MetaTrainer(config, str(tmp_path / "a"), verbose=0)
    straight.run()
    first = MetaTrainer(dataclasses.replace(config, meta_steps=10), str(tmp_path / "b"), verbose=0)
    first.run()
    del first  # "killed": nothing but the files survives
    resumed = MetaTrainer(config, str(tmp_path / "b"), verbose=0)
    resumed.run(resume=True)
    for k, v in straight.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), resumed.meta_vars[k].numpy(), err_msg=k)


def test_resume_without_the_task_file_keeps_the_meta_state_and_starts_new_tasks(tmp_path):
    config = dataclasses.replace(SMALL, meta_steps=5, jit_compile=False)
    first = MetaTrainer(config, str(tmp_path), verbose=0)
    first.run()
    os.remove(tmp_path / "checkpoints" / "tasks-5.npz")
    resumed = MetaTrainer(dataclasses.replace(config, meta_steps=6), str(tmp_path), verbose=0)
    with pytest.warns(UserWarning, match="tasks-5.npz is missing"):
        assert resumed.restore()
    for k, v in first.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), resumed.meta_vars[k].numpy(), err_msg=k)
    assert int(resumed.step.numpy()) == 5 and resumed.run(resume=True)["step"] == 6


def to_parameter_major(path):
    """Rewrite a task file's optimizer states in the layout written before h0, accum, ms were stored [n, P]:
    [P, n] (PES: [2N, P, n])."""
    with np.load(path) as z:
        arrays = {k: np.swapaxes(z[k], -1, -2) if k.rsplit("/", 1)[-1] in lopt_tf.hrnn.FEATURE_MAJOR_KEYS
                  and "/state/" in k else z[k] for k in z.files}
    np.savez(path, **arrays)


def test_resume_from_a_task_file_in_an_older_state_layout_starts_new_tasks(tmp_path):
    config = dataclasses.replace(SMALL, meta_steps=5, jit_compile=False)
    first = MetaTrainer(config, str(tmp_path), verbose=0)
    first.run()
    assert all(t is not None and not t.done for t in first.streams)
    to_parameter_major(str(tmp_path / "checkpoints" / "tasks-5.npz"))
    resumed = MetaTrainer(dataclasses.replace(config, meta_steps=6), str(tmp_path), verbose=0)
    with pytest.warns(UserWarning, match="does not have the current layout"):
        assert resumed.restore()
    assert all(t is None for t in resumed.streams) and resumed.next_task == first.next_task
    for k, v in first.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), resumed.meta_vars[k].numpy(), err_msg=k)
    assert int(resumed.step.numpy()) == 5 and resumed.run(resume=True)["step"] == 6
    assert [t.index for t in resumed.streams] == first.next_task  # the next task of each stream


def test_sigterm_checkpoints_and_resume_continues(tmp_path):
    out = str(tmp_path / "run")
    args = [sys.executable, "-m", "train.meta_train", f"--output_dir={out}", "--problem_set=quadratic",
            "--meta_steps=100000", "--min_length=10", "--length_scale=0", "--max_length=10", "--unrolls_scale=0",
            "--min_unrolls=1000", "--checkpoint_every=1000", "--validate_every=0", "--noxla"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # wait until meta-steps are running
            if "meta_loss" in line:
                break
        proc.send_signal(15)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    trainer = MetaTrainer(dataclasses.replace(SMALL, problem_set="quadratic"), out, verbose=0)
    assert trainer.restore()
    assert int(trainer.step.numpy()) >= 1  # saved on SIGTERM although checkpoint_every was never reached


def test_non_finite_meta_gradient_is_skipped_and_counted():
    meta = {"a": tf.Variable([1.0, 2.0]), "b": tf.Variable(3.0)}
    opt = MetaOptimizer(meta, "rmsprop", 1e-2)
    assert not opt.apply({"a": tf.constant([np.nan, 1.0]), "b": tf.constant(1.0)})
    assert int(opt.skipped.numpy()) == 1 and int(opt.iterations.numpy()) == 0
    np.testing.assert_array_equal(meta["a"].numpy(), [1.0, 2.0])
    assert opt.apply({"a": tf.constant([1e9, -1.0]), "b": tf.constant(1.0)})
    assert meta["a"].numpy()[0] < 1.0 and int(opt.skipped.numpy()) == 1


def test_non_finite_meta_gradient_inside_training_leaves_meta_parameters(tmp_path, monkeypatch):
    trainer = MetaTrainer(dataclasses.replace(SMALL, meta_steps=2), str(tmp_path), verbose=0)
    before = {k: v.numpy().copy() for k, v in trainer.meta_vars.items()}
    original = trainer._all_reduce_mean
    monkeypatch.setattr(trainer, "_all_reduce_mean",
                        lambda g: {k: v * np.nan for k, v in original(g).items()})  # inject NaN meta-gradients
    result = trainer.run()
    assert result["skipped"] == 2
    for k, v in trainer.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_two_workers_contribute_to_the_same_meta_parameters(tmp_path):
    flags = ["--problem_set=quadratic", "--meta_steps=3", "--min_length=10", "--length_scale=0",
             "--max_length=10", "--unrolls_scale=0", "--min_unrolls=100", "--validate_every=0",
             "--checkpoint_every=3", "--meta_optimizer=adam", "--meta_learning_rate=1e-2", "--noxla"]
    workers.finish(workers.start_workers(flags, tmp_path / "dist"))
    # Both workers end with identical meta-parameters (chief's file, worker 1's checkpoint) ...
    chief, worker1 = workers.chief_and_worker1_meta(tmp_path / "dist")
    for k, v in chief.items():
        np.testing.assert_array_equal(v, worker1[k], err_msg=k)
    # ... which differ from what the chief's problems alone give: worker 1's meta-gradients were used.
    alone = MetaTrainer(MetaTrainConfig(problem_set="quadratic", meta_steps=3, min_length=10, length_scale=0.0,
                                        max_length=10, unrolls_scale=0.0, min_unrolls=100, validate_every=0,
                                        checkpoint_every=3, meta_optimizer="adam", meta_learning_rate=1e-2,
                                        jit_compile=False), str(tmp_path / "alone"), verbose=0)
    alone.run()
    assert not np.allclose(alone.meta_vars["l0/gate_kernel"].numpy(), chief["l0/gate_kernel"])


def test_recomputed_steps_give_the_same_meta_gradient():
    import problems
    from lopt_tf import hrnn
    from train.unroll import make_unroll

    config = lopt_tf.HRNNConfig()
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    problem = problems.Noisy(problems.Quadratic.random(15, seed=2), 0.5)
    results = []
    for remat in (False, True):
        fn = make_unroll(problem, config, meta, max_length=25, remat=remat)
        params = problem.init_params(1)
        state = hrnn.init_state(meta, config, params, 0)
        results.append(fn(params, state, problem.objective(params), 0, 25, 3))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for k in meta:
        np.testing.assert_allclose(results[0][1][k], results[1][1][k], rtol=1e-4, atol=1e-8, err_msg=k)
    assert any(np.any(results[1][1][k].numpy() != 0) for k in meta)


def test_diverging_task_is_ended_early(tmp_path):
    # With a multiplier this small every unroll counts as diverged, so every meta-step starts a new task.
    config = dataclasses.replace(SMALL, meta_steps=3, divergence_multiplier=1e-9, jit_compile=False)
    trainer = MetaTrainer(config, str(tmp_path), verbose=0)
    trainer.run()
    assert int(trainer.ended_tasks.numpy()) == 3 and trainer.next_task == [3]
    kept = MetaTrainer(dataclasses.replace(config, divergence_multiplier=0.0), str(tmp_path / "kept"), verbose=0)
    kept.run()
    assert int(kept.ended_tasks.numpy()) == 0 and kept.next_task == [1]


def test_clip_by_global_norm_scales_only_large_meta_gradients():
    grads = {"a": tf.constant([3.0, 0.0]), "b": tf.constant([[4.0]])}
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped["a"].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"].numpy(), [[0.8]], rtol=1e-6)
    assert clip_by_global_norm(grads, 10.0)[0] is grads and clip_by_global_norm(grads, 0.0)[0] is grads


def test_stream_clip_norm_bounds_each_meta_update(tmp_path, monkeypatch):
    # An exploding meta-gradient (1e12) from one stream: clipped to norm 1e-3 it moves Adam's second moment by
    # at most (1e-3)^2 * (1 - beta_2), so the next ordinary meta-gradient still moves the meta-parameters.
    config = dataclasses.replace(SMALL, meta_steps=1, jit_compile=False, stream_clip_norm=1e-3)
    trainer = MetaTrainer(config, str(tmp_path), verbose=0)
    original = trainer._unroll_fn

    def exploding(task):
        fn = original(task)

        def unroll(*args):
            loss, grads, *rest = fn(*args)
            return (loss, {k: v * 0 + 1e12 for k, v in grads.items()}, *rest)
        return unroll

    monkeypatch.setattr(trainer, "_unroll_fn", exploding)
    out = trainer.meta_step()
    assert out["grad_norms"][0] > 1e12
    total = sum(float(tf.reduce_sum(tf.square(v))) for v in trainer.meta_opt.ms.values())
    assert total <= (1e-3) ** 2 * 1e-3 * 1.0001
    assert config == MetaTrainConfig.from_dict({**config.to_dict()})
    assert MetaTrainConfig.from_dict({k: v for k, v in config.to_dict().items()
                                      if k != "stream_clip_norm"}).stream_clip_norm == 0.0


def test_scan_init_matches_a_fresh_trainer_and_ranks_step_offsets(tmp_path):
    from train.scan_init import scan

    results = scan({"stepsize_offset_init": [-1.0, 3.0]}, "quadratic", 2, 30, str(tmp_path / "scan"))
    fresh = MetaTrainer(MetaTrainConfig(problem_set="quadratic", num_validation_problems=2, validation_length=30,
                                        init_weights=None), str(tmp_path / "fresh"), verbose=0)
    assert results[0][1] == pytest.approx(fresh.validate(), abs=1e-6)
    assert results[1][1] < results[0][1] - 0.05  # the default step offset barely moves in 30 steps


def test_select_weights_scores_like_validation_and_restores_the_trainer(tmp_path):
    from train.select_weights import score

    trainer = MetaTrainer(dataclasses.replace(SMALL, meta_steps=3, jit_compile=False), str(tmp_path), verbose=0)
    trainer.run()
    before = {k: v.numpy() for k, v in trainer.meta_vars.items()}
    latest = str(tmp_path / "weights_latest.npz")
    scores = score(["init", latest], "quadratic", 3, 40)
    assert scores[1] == pytest.approx(trainer.validate(), abs=1e-6)
    assert scores[0] == pytest.approx(trainer.validate_meta(lopt_tf.load_weights("init")[0]), abs=1e-6)
    for k, v in trainer.meta_vars.items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    with pytest.raises(lopt_tf.WeightsError, match="another architecture"):
        other = str(tmp_path / "other.npz")
        config = lopt_tf.HRNNConfig(num_gradient_scales=3)
        lopt_tf.save_weights(other, lopt_tf.hrnn.init_meta_numpy(config), config)
        score(["init", other], "quadratic", 3, 40)


def test_select_weights_runs_each_set_with_its_own_initial_learning_rates(tmp_path):
    from train.scale_step import write_scaled
    from train.select_weights import copy_weights, score

    (fixed,) = write_scaled("init", [1.0], str(tmp_path), init_lr=1e-3)
    plain, own = score(["init", fixed], "quadratic", 3, 40)
    (alone,) = score([fixed], "quadratic", 3, 40)
    assert own == pytest.approx(alone, abs=1e-6)  # not run with the first set's random initial LRs
    assert abs(own - plain) > 1e-3
    copy_weights("init", str(tmp_path / "copy.npz"))  # a shipped name, not a path
    meta, config, _ = lopt_tf.load_weights(str(tmp_path / "copy.npz"))
    ref, ref_config, _ = lopt_tf.load_weights("init")
    assert config == ref_config and all(np.array_equal(meta[k], ref[k]) for k in ref)


def _parse(argv):
    from absl import flags

    from train import meta_train

    flag_values = flags.FlagValues()  # not the global FLAGS
    meta_train.define_flags(flag_values)
    flag_values(["meta_train", "--output_dir=out", *argv])
    return flag_values, meta_train.config_from_flags(flag_values)


def test_meta_train_flags_are_the_config_fields_with_the_same_defaults():
    from absl import flags

    from train.meta_train import dataclass_from_flags, define_dataclass_flags
    from train.trainer import CHOICES, HELP

    flag_values = flags.FlagValues()
    define_dataclass_flags(MetaTrainConfig, HELP, CHOICES, flag_values)
    flag_values(["meta_train"])
    assert set(flag_values) == {f.name for f in dataclasses.fields(MetaTrainConfig)}
    assert dataclass_from_flags(MetaTrainConfig, flag_values) == MetaTrainConfig()
    flag_values, config = _parse([])
    assert config == MetaTrainConfig() and flag_values.output_dir == "out" and not flag_values.resume


def test_meta_train_flag_overrides_round_trip():
    _, config = _parse(["--noxla", "--first_order", "--meta_learning_rate=3e-4", "--meta_optimizer=adam",
                        "--hrnn", "use_attention=True", "--hrnn=init_lr_range=[1e-3, 1e-2]"])
    hrnn = lopt_tf.HRNNConfig(use_attention=True, init_lr_range=(1e-3, 1e-2))
    assert config == dataclasses.replace(MetaTrainConfig(), jit_compile=False, first_order=True, hrnn=hrnn,
                                         meta_learning_rate=3e-4, meta_optimizer="adam", init_weights=None)
    assert _parse(["--init_weights=None", "--jit_compile"])[1] == dataclasses.replace(MetaTrainConfig(),
                                                                                     init_weights=None)
    with pytest.raises(ValueError, match="Unknown HRNNConfig fields"):
        _parse(["--hrnn=use_atention=True"])


def test_meta_train_starts_from_init_weights_given_with_hrnn_overrides(tmp_path):
    from lopt_tf import hrnn

    stable = lopt_tf.HRNNConfig.preset("stable")
    path = str(tmp_path / "start.npz")
    meta = hrnn.init_meta_numpy(stable, seed=3)
    lopt_tf.save_weights(path, meta, stable)
    overrides = [f"--hrnn={k}={v}" for k, v in stable.to_dict().items() if v != getattr(lopt_tf.HRNNConfig(), k)]
    _, config = _parse(["--problem_set=quadratic", *overrides, f"--init_weights={path}"])
    assert config.hrnn == stable and config.init_weights == path
    trainer = MetaTrainer(config, str(tmp_path / "run"), verbose=0)
    assert all(np.array_equal(trainer.meta_vars[k].numpy(), meta[k]) for k in meta)
    # Weights of another architecture are refused, not silently replaced by a fresh initialisation.
    _, mismatched = _parse(["--problem_set=quadratic", *overrides, "--hrnn=momentum_bias_correction=False",
                            f"--init_weights={path}"])
    with pytest.raises(lopt_tf.WeightsError, match="momentum_bias_correction"):
        MetaTrainer(mismatched, str(tmp_path / "other"), verbose=0)


def test_clipped_ratio_objective_sees_a_late_spike_that_the_log_ratio_hides():
    from train.unroll import objective_term

    # 100 steps: steady at 1e-3 of the initial loss, or at 1e-8 with a late spike to 0.6 for 5 steps (the limit
    # cycle measured on held-out MLPs). The 2017 log ratio prefers the spiking run; the clipped ratio does not.
    f_init = 2.0
    steady = tf.fill([100], 1e-3 * f_init)
    spiking = tf.concat([tf.fill([95], 1e-8 * f_init), tf.fill([5], 0.6 * f_init)], 0)
    log_ratio = [float(tf.reduce_mean(objective_term(f, f_init, "log_ratio"))) for f in (steady, spiking)]
    clipped = [float(tf.reduce_mean(objective_term(f, f_init, "clipped_ratio", 10.0))) for f in (steady, spiking)]
    assert log_ratio[1] < log_ratio[0] - 5  # the spike is hidden behind the floor
    assert clipped[1] > clipped[0] + 0.02  # the spike costs 0.6 x 5 / 100
    assert clipped[1] == pytest.approx(0.03 + 0.95e-8, rel=1e-5)
    # A blow-up counts at most the clip; a non-finite loss stays non-finite (the stream is dropped).
    values = objective_term(tf.constant([1e9, np.nan]), 1.0, "clipped_ratio", 10.0).numpy()
    assert values[0] == 10.0 and np.isnan(values[1])
    assert objective_term(tf.constant(1e9), 1.0, "log_ratio", 10.0).numpy() == pytest.approx(np.log(10.0), abs=1e-5)
    with pytest.raises(ValueError, match="needs a clip"):
        objective_term(tf.constant(1.0), 1.0, "clipped_ratio", 0.0)


def test_tbptt_unroll_with_the_clipped_ratio_objective():
    import problems
    from lopt_tf import hrnn
    from train.unroll import make_unroll, objective_term

    config = lopt_tf.HRNNConfig()
    meta = {k: tf.Variable(v) for k, v in hrnn.init_meta(config).items()}
    meta["stepsize_offset"].assign(5.0)  # loss ratios 0.97 .. 0.82: the first steps' are clipped at 0.95
    problem = problems.Quadratic.random(4, seed=1)
    params = problem.init_params(1)
    state = hrnn.init_state(meta, config, params, 0)
    f_init = problem.objective(params)
    fn = make_unroll(problem, config, meta, max_length=6, meta_objective="clipped_ratio", loss_clip=0.95)
    loss, grads, *_ = fn(params, state, f_init, 0, 6, 3)
    p, s, terms = params, state, []
    for t in range(6):
        _, g = problem.gradient(p, t, 3)
        p, s = hrnn.step(meta, config, p, g, s)
        terms.append(objective_term(problem.objective(p), f_init, "clipped_ratio", 0.95))
    assert float(terms[0]) == pytest.approx(0.95) and float(terms[-1]) < 0.9
    assert float(loss) == pytest.approx(float(np.mean(terms)), rel=1e-5)
    assert np.any(grads["stepsize_offset"].numpy() != 0)


def test_progress_shows_current_values_and_a_short_run_validates_at_its_last_step(tmp_path, capsys):
    from train.meta_train import final_message

    # Default validate_every (50) and only 4 meta-steps: the last step is validated, so weights_best.npz exists
    # and the final message names it (the README's next command loads it).
    config = dataclasses.replace(SMALL, meta_steps=4, jit_compile=False, validate_every=MetaTrainConfig().validate_every,
                                 num_validation_problems=2, validation_length=20)
    trainer = MetaTrainer(config, str(tmp_path), verbose=1)
    result = trainer.run()
    out = capsys.readouterr().out
    assert os.path.exists(tmp_path / "weights_best.npz")
    message = final_message(trainer, result, str(tmp_path))
    assert "weights_best.npz" in message and "weights_latest.npz" in message and "No weights_best" not in message
    # One validation line, at step 4; the bar itself never shows a validation value.
    lines = [x for x in out.replace("\r", "\n").split("\n") if x.strip()]
    assert [x for x in lines if "validation" in x] == [f"meta-step 4: validation {trainer.validate():.4f} "
                                                       "(best so far: weights_best.npz)"]
    # The bar shows each step's meta-loss, not the running mean over steps.
    shown = [x.split("meta_loss: ")[1].split(" ")[0] for x in lines if "meta_loss: " in x]
    losses = result["meta_losses"]
    running = np.cumsum(losses) / np.arange(1, 5)
    assert len(shown) == 4 and np.max(np.abs(running - losses)) > 2e-4, (shown, losses)  # they would differ
    for text, value in zip(shown, losses):
        assert float(text) == pytest.approx(value, rel=1e-3, abs=5e-5), (shown, losses)  # 4 significant digits
    # Without validation there is no best, and the message says so.
    off = MetaTrainer(dataclasses.replace(config, validate_every=0, meta_steps=1), str(tmp_path / "off"), verbose=0)
    message = final_message(off, off.run(), str(tmp_path / "off"))
    assert "No weights_best.npz: validation is off" in message
