"""Single optimization runs, cached on disk (`RunCache`) so that an interrupted evaluation resumes where it stopped.

A run returns a loss curve: `steps` (the inner steps at which the loss was recorded, 0 included) and `losses`
(the training loss there: the full-batch objective for synthetic problems, the loss over the whole training
set for Keras models), plus `seconds`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time

import numpy as np
import tensorflow as tf

from train.evaluation.optimizers import OptimizerSpec, PureOptimizer


CACHE_FILE = "runs.jsonl"
_LEGACY_NAME = re.compile(r"^[0-9a-f]{20}\.json$")  # one file per run, named by `key_digest`


def key_digest(key: dict) -> str:
    """What identifies a run in the cache: a hash of its description (JSON with sorted keys)."""
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _read_runs(path: str, offset: int = 0, runs: dict | None = None) -> tuple[dict, int]:
    """Add the lines of a `runs.jsonl` file from byte `offset` on to `runs` (key digest -> the line, parsed again
    on each hit so that callers get their own copy); returns them and the offset after the last complete line. A line that does not parse (a write that was interrupted) is skipped
    with a warning; a last line without its newline is left for later (a write in progress, or cut short).
    A later key with the same digest replaces an earlier one."""
    runs = {} if runs is None else runs
    if not os.path.exists(path):
        return runs, 0
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    complete = data.rfind(b"\n") + 1
    for line in data[:complete].splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            runs[key_digest(entry["key"])] = line
            entry["result"]
        except (ValueError, KeyError, TypeError):
            logging.warning("%s: ignoring a line that is not a cached run: %.80r", path, line)
    return runs, offset + complete


def _append(path: str, data: bytes) -> None:
    """Append complete lines in a single write; if the file ends in an incomplete line (an interrupted write),
    end that line first."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def convert_legacy_cache(directory: str) -> int:
    """Fold a cache of one JSON file per run (`<key_digest>.json` holding `{"key": ..., "result": ...}`) into
    `<directory>/runs.jsonl` and delete those files. Runs are appended in the order of their digests (so the
    same files always give the same lines); a run already in `runs.jsonl` is not written twice. Returns the
    number of runs appended."""
    names = sorted(n for n in os.listdir(directory) if _LEGACY_NAME.match(n))
    if not names:
        return 0
    path = os.path.join(directory, CACHE_FILE)
    known, _ = _read_runs(path)
    lines = []
    for name in names:
        with open(os.path.join(directory, name)) as f:
            entry = json.load(f)
        digest = key_digest(entry["key"])
        if digest != name[:-len(".json")]:
            raise ValueError(f"{name}: its key hashes to {digest}; not a run of this cache")
        if digest not in known:
            known[digest] = name
            lines.append(json.dumps({"key": entry["key"], "result": entry["result"]}) + "\n")
    if lines:
        _append(path, "".join(lines).encode())
    for name in names:
        os.remove(os.path.join(directory, name))
    return len(lines)


class RunCache:
    """Finished runs in `<directory>/runs.jsonl`, one JSON line `{"key": ..., "result": ...}` per run.

    The file is read into a dict (by `key_digest`) when the cache is opened, and each new run is appended as
    soon as it finishes, so an interrupted evaluation resumes where it stopped; a last line cut short by an
    interruption is ignored. Before a miss runs, lines that another process appended meanwhile are read. A
    cache of one JSON file per run (the earlier format) is converted when opened (`convert_legacy_cache`).
    `directory=None`: nothing is cached."""

    def __init__(self, directory: str | None):
        self.directory = directory
        self._runs = {}
        self._offset = 0
        if directory:
            os.makedirs(directory, exist_ok=True)
            convert_legacy_cache(directory)
            self._refresh()
            if os.path.exists(self.path) and os.path.getsize(self.path) > self._offset:
                logging.warning("%s: ignoring an incomplete last line (an interrupted write)", self.path)

    @property
    def path(self) -> str | None:
        return os.path.join(self.directory, CACHE_FILE) if self.directory else None

    def _refresh(self) -> None:
        """Read the lines appended since the last read (by this process or another)."""
        self._runs, self._offset = _read_runs(self.path, self._offset, self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, key: dict) -> bool:
        return key_digest(key) in self._runs

    def get_or_run(self, key: dict, fn):
        digest = key_digest(key)
        if self.directory and digest not in self._runs:
            self._refresh()
        if digest in self._runs:
            return json.loads(self._runs[digest])["result"]
        result = fn()
        if self.directory:
            line = json.dumps({"key": key, "result": result})
            _append(self.path, (line + "\n").encode())
            self._runs[digest] = line
        return result


def _finite(values) -> list[float]:
    return [float(v) if math.isfinite(float(v)) else float("inf") for v in values]


_SYNTHETIC_FNS = {}


def run_synthetic(problem, spec: OptimizerSpec, steps: int, seed: int, record_every: int) -> dict:
    """Optimize a `problems.Problem` for `steps` steps with the optimizer's pure update rule (one while loop)."""
    # One traced function per (problem, optimizer kind and weights); the learning rate is an argument.
    fn_key = (id(problem), spec.kind, spec.weights, spec.init_lr, steps, record_every)
    if fn_key not in _SYNTHETIC_FNS:
        if len(_SYNTHETIC_FNS) > 64:
            _SYNTHETIC_FNS.clear()
        opt = PureOptimizer(spec)
        records = steps // record_every

        @tf.function
        def run(params, state, lr, seed):
            losses = tf.TensorArray(tf.float32, size=records + 1).write(0, problem.objective(params))

            def body(t, params, state, losses):
                _, grads = problem.gradient(params, t, seed)
                params, state, true = opt.update(params, grads, state, lr)
                losses = tf.cond((t + 1) % record_every == 0,
                                 lambda: losses.write((t + 1) // record_every, problem.objective(true)),
                                 lambda: losses)
                return t + 1, params, state, losses

            _, _, _, losses = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), params, state, losses))
            return losses.stack()

        _SYNTHETIC_FNS[fn_key] = (opt, run)
    opt, run = _SYNTHETIC_FNS[fn_key]
    params = problem.init_params(seed)
    start = time.perf_counter()
    losses = run(params, opt.init(params, seed), tf.constant(spec.learning_rate, tf.float32), tf.constant(seed))
    return {"steps": list(range(0, steps + 1, record_every)), "losses": _finite(losses.numpy()),
            "seconds": time.perf_counter() - start}


def run_keras(problem, spec: OptimizerSpec, steps: int, seed: int, record_every: int,
              jit_compile: bool = False) -> dict:
    """Train `problem.make_model(seed)` with `model.fit` for `steps` steps; full training loss every
    `record_every` steps. Training stops early (recording inf) once the loss is no longer finite."""
    import keras

    model = problem.make_model(seed)
    model.compile(optimizer=spec.keras_optimizer(seed), loss=problem.loss_fn(), jit_compile=jit_compile)
    train = problem.train_dataset(shuffle_seed=seed).repeat()
    full = problem.train_dataset(shuffle_seed=None, batch_size=1000)

    def train_loss():
        return float(model.evaluate(full, verbose=0))

    losses = [train_loss()]
    start = time.perf_counter()
    for _ in range(steps // record_every):
        model.fit(train, steps_per_epoch=record_every, epochs=1, verbose=0)
        losses.append(train_loss())
        if not math.isfinite(losses[-1]):
            break
    train_seconds = time.perf_counter() - start
    losses += [float("inf")] * (steps // record_every + 1 - len(losses))
    keras.backend.clear_session()
    return {"steps": list(range(0, steps + 1, record_every)), "losses": _finite(losses), "seconds": train_seconds}


def final_loss(result: dict) -> float:
    return result["losses"][-1]


def steps_to_reach(result: dict, target: float) -> int | None:
    """First recorded step at which the loss is <= target (None if never)."""
    for step, loss in zip(result["steps"], result["losses"]):
        if loss <= target:
            return step
    return None


def late_spike(losses) -> float:
    """The largest ratio, over the recorded losses of the run's second half, of a loss to the lowest loss
    recorded before it: 1 for a run that never rises (a steadily falling run is not a spike), inf if a loss there
    is not finite. Catches a late blow-up that a final loss taken after recovery would hide."""
    losses = np.asarray(losses, dtype=np.float64)
    worst = 1.0
    for i in range(max(1, len(losses) // 2), len(losses)):
        if not np.isfinite(losses[i]):
            return float("inf")
        best_before = np.min(losses[:i])
        if best_before > 0:
            worst = max(worst, losses[i] / best_before)
        elif losses[i] > 0:
            return float("inf")
    return float(worst)


def summarize(results: list[dict]) -> dict:
    finals = np.array([final_loss(r) for r in results], dtype=np.float64)
    curves = np.array([r["losses"] for r in results], dtype=np.float64)
    return {"final_mean": float(np.mean(finals)), "final_std": float(np.std(finals)),
            "late_spike": max(late_spike(r["losses"]) for r in results),
            "curve_mean": [float(v) for v in np.mean(curves, 0)], "steps": results[0]["steps"]}
