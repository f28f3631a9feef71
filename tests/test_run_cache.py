"""The evaluation's run cache: one `runs.jsonl` per cache directory, and the conversion of one-file-per-run caches."""

import json
import os

import pytest

from train.evaluation.runs import CACHE_FILE, RunCache, convert_legacy_cache, key_digest

# Three runs as the evaluation keys them (experiment 1/4/5 synthetic, experiment 2 MNIST, experiment 8 horizon),
# with results that JSON must carry exactly (an infinite loss, tiny and long floats).
RUNS = [
    ({"exp": "synthetic", "problem": "softmax_regression_d100_k2_b50", "family": "softmax_regression",
      "steps": 1000, "record_every": 50, "seed": 1,
      "spec": {"kind": "learned", "learning_rate": 1.0, "weights": "init", "init_lr": 0.1,
               "weights_digest": "2e44e1f73b27ab5f"}},
     {"steps": [0, 500, 1000], "losses": [3.8764142990112305, 0.34512, float("inf")], "seconds": 1.25}),
    ({"exp": "mnist", "problem": "mnist_mlp_relu", "steps": 10000, "record_every": 500, "seed": 2,
      "data": "idx:/data/mnist", "spec": {"kind": "adam", "learning_rate": 0.001}},
     {"steps": [0, 5000, 10000], "losses": [2.3025851249694824, 1.4e-05, 7.130000000000001e-06],
      "seconds": 812.0}),
    ({"exp": "horizon", "problem": "mnist_mlp_relu", "steps": 100000, "record_every": 2000, "seed": 0,
      "data": "idx:/data/mnist",
      "spec": {"kind": "learned", "learning_rate": 1.0, "weights": "hrnn_v4_x0.03", "init_lr": None,
               "weights_digest": "c85afebec5528fbf"}},
     {"steps": [0, 100000], "losses": [2.31, 3.1e-08], "seconds": 3462.5}),
]


def _write_legacy(directory, runs=RUNS):
    """A cache in the earlier format: `<key_digest>.json` per run, written as that format wrote it."""
    os.makedirs(directory, exist_ok=True)
    for key, result in runs:
        with open(os.path.join(directory, f"{key_digest(key)}.json"), "w") as f:
            json.dump({"key": key, "result": result}, f)


def _never(*_):
    raise AssertionError("a cached run was run again")


def test_key_digest_is_the_one_cached_runs_are_filed_under():
    key = RUNS[0][0]
    assert key_digest(key) == key_digest(dict(reversed(list(key.items()))))  # key order does not matter
    assert len(key_digest(key)) == 20 and key_digest(key) != key_digest({**key, "seed": 2})


def test_converted_runs_are_hits_with_identical_results(tmp_path):
    directory = str(tmp_path / "cache")
    _write_legacy(directory)
    assert convert_legacy_cache(directory) == 3
    assert os.listdir(directory) == [CACHE_FILE]  # the per-run files are gone
    with open(os.path.join(directory, CACHE_FILE)) as f:
        lines = [json.loads(line) for line in f]
    assert [key_digest(e["key"]) for e in lines] == sorted(key_digest(k) for k, _ in RUNS)  # deterministic order
    cache = RunCache(directory)
    assert len(cache) == 3
    experiments = set()
    for key, result in RUNS:
        got = cache.get_or_run(key, _never)
        assert got == result and json.dumps(got) == json.dumps(result)  # the same numbers, inf included
        experiments.add(key["exp"])
    assert experiments == {"synthetic", "mnist", "horizon"}
    assert convert_legacy_cache(directory) == 0  # nothing left to convert


def test_opening_a_legacy_cache_converts_it_and_keeps_runs_already_in_the_file(tmp_path):
    directory = str(tmp_path / "cache")
    cache = RunCache(directory)
    assert cache.get_or_run(RUNS[0][0], lambda: RUNS[0][1]) == RUNS[0][1]
    _write_legacy(directory)  # run 0 again, as a legacy file, and two more
    cache = RunCache(directory)
    assert os.listdir(directory) == [CACHE_FILE] and len(cache) == 3
    with open(os.path.join(directory, CACHE_FILE)) as f:
        assert len(f.readlines()) == 3  # run 0 is not written twice
    for key, result in RUNS:
        assert cache.get_or_run(key, _never) == result


def test_a_hit_does_not_rerun_and_a_miss_runs_once_and_is_appended(tmp_path):
    directory = str(tmp_path / "cache")
    calls = []

    def run():
        calls.append(1)
        return {"steps": [0, 1], "losses": [1.0, 0.5], "seconds": 0.1}

    cache = RunCache(directory)
    first = cache.get_or_run({"exp": "synthetic", "seed": 0}, run)
    again = cache.get_or_run({"seed": 0, "exp": "synthetic"}, run)
    assert calls == [1] and first == again
    again["losses"].append(9.0)  # callers get their own copy
    assert cache.get_or_run({"exp": "synthetic", "seed": 0}, run)["losses"] == [1.0, 0.5]
    assert RunCache(directory).get_or_run({"exp": "synthetic", "seed": 0}, _never) == first  # a new process
    assert calls == [1]


def test_a_truncated_last_line_is_ignored_and_the_file_stays_appendable(tmp_path):
    directory = str(tmp_path / "cache")
    _write_legacy(directory, RUNS[:2])
    convert_legacy_cache(directory)
    path = os.path.join(directory, CACHE_FILE)
    line = json.dumps({"key": RUNS[2][0], "result": RUNS[2][1]})
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])  # an interrupted write
    cache = RunCache(directory)
    assert len(cache) == 2
    assert cache.get_or_run(RUNS[0][0], _never) == RUNS[0][1]
    assert cache.get_or_run(RUNS[2][0], lambda: RUNS[2][1]) == RUNS[2][1]  # a miss: run again and appended
    reopened = RunCache(directory)
    assert len(reopened) == 3
    for key, result in RUNS:
        assert reopened.get_or_run(key, _never) == result


def test_runs_appended_by_another_process_are_found_before_running(tmp_path):
    directory = str(tmp_path / "cache")
    mine, other = RunCache(directory), RunCache(directory)
    other.get_or_run(RUNS[1][0], lambda: RUNS[1][1])
    assert mine.get_or_run(RUNS[1][0], _never) == RUNS[1][1]


def test_a_legacy_file_whose_name_is_not_its_key_digest_is_refused(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / ("0" * 20 + ".json")).write_text(json.dumps({"key": RUNS[0][0], "result": RUNS[0][1]}))
    with pytest.raises(ValueError, match="hashes to"):
        convert_legacy_cache(str(directory))


def test_no_directory_caches_nothing():
    calls = []
    cache = RunCache(None)
    for _ in range(2):
        cache.get_or_run({"exp": "synthetic"}, lambda: calls.append(1) or {"losses": [1.0]})
    assert calls == [1, 1] and len(cache) == 0
