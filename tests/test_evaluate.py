"""Evaluation: the quick CI run of experiments 1, 2 and 6 writes finite results and resumes from its cache."""

import json
import math
import os
import subprocess
import sys
import time

import pytest

from train.evaluation.optimizers import OptimizerSpec
from train.evaluation.runs import RunCache
from train.evaluation.tuning import half_decades, tune

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _finite_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _finite_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _finite_numbers(v)
    elif isinstance(obj, float):
        yield obj


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    cmd = [sys.executable, "-m", "train.evaluate", f"--output_dir={out}", "--quick", "--experiments=1,2,6"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, cmd, time.perf_counter() - start


def test_quick_run_writes_every_file_with_finite_numbers(quick_run):
    out, _, _ = quick_run
    for name in ("results.md", "results.json", "exp1_meta_distribution.png", "exp2_mnist.png",
                 "exp6_wall_clock.png"):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "results.json") as f:
        results = json.load(f)["experiments"]
    assert set(results) == {"1", "2", "6"}
    assert all(0.0 <= w <= 1.0 for w in results["1"]["wins"].values())
    rows = results["1"]["rows"]
    for kind, ties in results["1"]["ties"].items():
        assert ties == sum(r["learned"]["final_mean"] == r[kind]["final_mean"] for r in rows)
        assert round(results["1"]["wins"][kind] * len(rows)) + ties <= len(rows)
    for row in results["2"]["rows"]:
        for key in ("learned", "adam_default", "adam", "rmsprop", "momentum"):
            assert math.isfinite(row[key]["final_mean"]), (row["problem"], key)
    assert all(t > 0 and math.isfinite(t) for ts in results["6"]["seconds"].values() for t in ts)
    assert "| Adam |" in (out / "results.md").read_text()
    assert "Data: MNIST from " in (out / "results.md").read_text()  # which MNIST the table trained on


def test_rerun_resumes_from_cached_runs(quick_run):
    out, cmd, first_seconds = quick_run
    with open(out / "results.json") as f:
        before = json.load(f)["experiments"]
    cmd = [c for c in cmd if not c.startswith("--experiments")] + ["--experiments=1,2"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=True)
    with open(out / "results.json") as f:
        after = json.load(f)["experiments"]
    assert after["1"]["rows"] == before["1"]["rows"] and after["2"]["rows"] == before["2"]["rows"]
    assert time.perf_counter() - start < 0.5 * first_seconds


def test_tuning_extends_the_grid_until_the_best_is_inside():
    calls = []

    def run(spec: OptimizerSpec):
        calls.append(spec.learning_rate)
        loss = (math.log10(spec.learning_rate) - 1.0) ** 2  # best at lr = 10, above the initial grid
        return {"steps": [0, 1], "losses": [1.0, loss]}

    best, tried = tune("adam", run, half_decades(-3, -1))
    assert math.isclose(best, 10.0, rel_tol=1e-9)
    assert max(tried) > best and min(tried) < best
    assert len(calls) == len(set(calls))  # no run twice


def test_half_decade_grid():
    grid = half_decades(-4, 0)
    assert len(grid) == 9 and math.isclose(grid[0], 1e-4) and math.isclose(grid[-1], 1.0)
    assert all(math.isclose(b / a, 10 ** 0.5) for a, b in zip(grid, grid[1:]))


def test_large_architecture_stability_criterion():
    from train.evaluation.keras_models import trains_stably

    assert trains_stably([2.3, 2.4, 1.9])
    assert not trains_stably([2.3, 4e26])  # a blow-up, although finite (hrnn_v4 on ResNet50V2, quick size)
    assert not trains_stably([2.3, 30.0, 2.0])  # a transient above 10x the start
    assert not trains_stably([2.3, 2.3, 2.31])  # no progress
    assert not trains_stably([2.3, math.nan, 1.0])


def test_cache_key_of_a_keras_run_does_not_depend_on_earlier_experiments(tmp_path):
    """Experiment 3's runs must be found again whether or not an MNIST experiment ran first in the process."""
    import types

    from train.evaluation import keras_models
    from train.evaluation.context import Context

    ctx = Context(str(tmp_path), True, "init", {})
    keys = []
    ctx.cache.get_or_run = lambda key, fn: keys.append(key)
    problem = types.SimpleNamespace(name="imagenet_resnet50_v2_64px_10cls")
    keras_models._keras_runner(ctx, problem, 20, 10, "imagenet_small_mock")(OptimizerSpec("adam", learning_rate=1e-3))
    ctx._mnist = types.SimpleNamespace(source="offline IDX")  # what experiment 2 leaves behind
    keras_models._keras_runner(ctx, problem, 20, 10, "imagenet_small_mock")(OptimizerSpec("adam", learning_rate=1e-3))
    assert keys[0] == keys[1] and keys[0]["data"] is None


def test_cached_runs_of_a_weight_set_are_keyed_by_its_values_and_its_config(tmp_path):
    """The same meta-parameters under another config (e.g. a switch turned on) are another optimizer: their
    cached runs must not be reused."""
    import dataclasses

    from lopt_tf.weights import load_weights, save_weights
    from train.evaluation.optimizers import weights_digest

    meta, config, _ = load_weights("stable_init")
    paths = [str(tmp_path / f"{name}.npz") for name in ("a", "same", "other_config", "other_values")]
    save_weights(paths[0], meta, config)
    save_weights(paths[1], meta, config)
    save_weights(paths[2], meta, dataclasses.replace(config, momentum_bias_correction=False))
    save_weights(paths[3], {**meta, "nominal/log_scale": meta["nominal/log_scale"] + 0.1}, config)
    a, same, other_config, other_values = (weights_digest(p) for p in paths)
    assert a == same and len({a, other_config, other_values}) == 3


def test_held_out_problems_start_at_the_given_seed_and_skip_excluded_names(tmp_path):
    from train.evaluation.context import Context
    from train.evaluation.synthetic import held_out_problems

    test = held_out_problems(Context(str(tmp_path), True, "init"))
    assert len({p.name for p in test}) == 4
    skipped = held_out_problems(Context(str(tmp_path), True, "init", exclude_problems=frozenset([test[0].name])))
    assert [p.name for p in skipped][:3] == [p.name for p in test[1:]] and test[0].name not in [p.name for p in skipped]
    validation = held_out_problems(Context(str(tmp_path), True, "init", first_problem_seed=10**6))
    assert [p.name for p in validation] != [p.name for p in test]


def test_select_weights_wins_is_experiment_1_on_validation_problems_without_test_names(tmp_path):
    from train.evaluation.context import Context
    from train.evaluation.synthetic import held_out_problems
    from train.select_weights import score_wins

    cache = str(tmp_path / "cache")
    with pytest.raises(ValueError, match="cache_dir"):
        score_wins(["init"], "", quick=True, verbose=0)
    first, again = score_wins(["init", "init"], cache, quick=True, verbose=0)
    assert first == again
    rows = first["rows"]
    test_names = {p.name for p in held_out_problems(Context(str(tmp_path / "t"), True, "init"))}
    assert len(rows) == 4 and not test_names & {r["problem"] for r in rows}
    for kind in ("adam", "rmsprop", "momentum"):
        wins = [r["learned"]["final_mean"] < r[kind]["final_mean"] for r in rows]
        assert first[kind] == pytest.approx(sum(wins) / 4)
    runs = len(RunCache(os.path.join(cache, "cache")))
    assert score_wins(["init"], cache, quick=True, verbose=0)[0] == first  # every run comes from the cache
    assert len(RunCache(os.path.join(cache, "cache"))) == runs


def test_select_weights_final_vs_adam_compares_final_losses_with_adam_1e3(tmp_path):
    import numpy as np

    import problems
    from train.evaluation.optimizers import OptimizerSpec
    from train.evaluation.runs import late_spike, run_synthetic
    from train.select_weights import score_final_vs_adam
    from train.trainer import MetaTrainConfig

    cache = str(tmp_path / "cache")
    with pytest.raises(ValueError, match="cache_dir"):
        score_final_vs_adam(["init"], ["default"], 2, 40, "", record_every=20, verbose=0)
    with pytest.raises(ValueError, match="multiple"):
        score_final_vs_adam(["init"], ["default"], 2, 30, cache, record_every=20, verbose=0)
    first, again = score_final_vs_adam(["init", "init"], ["default", "nn_no_decay"], 2, 40, cache,
                                       record_every=20, verbose=0)
    assert first == again and len(first["rows"]) == 4
    assert [r["problem_set"] for r in first["rows"]] == ["default", "default", "nn_no_decay", "nn_no_decay"]
    # Row 0 is held-out problem 0 of "default" (validation seed), both optimizers run as the evaluation runs them.
    seed = MetaTrainConfig.validation_seed
    problem = problems.ProblemSampler.named("default").sample(seed)
    row = first["rows"][0]
    assert row["problem"] == problem.name
    assert row["adam"] == pytest.approx(run_synthetic(problem, OptimizerSpec("adam", learning_rate=1e-3), 40, seed,
                                                      20)["losses"][-1], rel=1e-6)
    assert row["learned"] == pytest.approx(run_synthetic(problem, OptimizerSpec("learned", weights="init"), 40,
                                                         seed, 20)["losses"][-1], rel=1e-6)
    rows = first["rows"]
    assert first["wins"] == sum(r["learned"] <= r["adam"] for r in rows) / 4
    assert first["log10_ratio"] == pytest.approx(np.mean([np.log10(r["learned"] / r["adam"]) for r in rows]))
    learned_losses = run_synthetic(problem, OptimizerSpec("learned", weights="init"), 40, seed, 20)["losses"]
    assert row["late_spike"] == late_spike(learned_losses) >= 1.0
    assert first["late_spike"] == max(r["late_spike"] for r in rows)
    runs = len(RunCache(os.path.join(cache, "cache")))
    assert score_final_vs_adam(["init"], ["default", "nn_no_decay"], 2, 40, cache, record_every=20,
                               verbose=0)[0] == first  # every run comes from the cache
    assert len(RunCache(os.path.join(cache, "cache"))) == runs == 8  # one learned and one Adam run per problem


def test_late_spike_is_the_worst_second_half_rise_over_the_best_loss_before_it():
    from train.evaluation.runs import late_spike

    assert late_spike([5.0, 4.0, 3.0, 2.0, 1.0, 0.5]) == 1.0  # steadily falling: no spike
    assert late_spike([5.0, 10.0, 1.0, 0.5, 0.4, 0.3]) == 1.0  # an early rise does not count
    assert late_spike([5.0, 1.0, 0.1, 0.2, 5.0, 0.05]) == pytest.approx(50.0)  # recovered by the end: still seen
    assert late_spike([5.0, 1.0, 0.1, math.inf]) == math.inf
    assert late_spike([1.0, 0.0, 0.0, 0.1]) == math.inf  # rising from an exact zero


def test_lr_sweep_moves_the_learned_optimizer_of_either_design():
    from train.evaluation.synthetic import learned_at_lr

    fixed = learned_at_lr("stable_v2", 1e-2)  # fixed initial step: the sweep scales the step (anchor 1e-3)
    assert fixed.learning_rate == pytest.approx(10.0) and fixed.init_lr is None
    drawn = learned_at_lr("hrnn_v4", 1e-2)  # 2017 design: the sweep sets the initial learning rates
    assert drawn.init_lr == 1e-2 and drawn.learning_rate == 1.0

