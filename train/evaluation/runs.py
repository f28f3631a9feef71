"""Single optimization runs, cached on disk so that an interrupted evaluation resumes where it stopped.

A run returns a loss curve: `steps` (the inner steps at which the loss was recorded, 0 included) and `losses`
(the training loss there: the full-batch objective for synthetic problems, the loss over the whole training
set for Keras models), plus `seconds`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from train.evaluation.optimizers import OptimizerSpec, PureOptimizer


class RunCache:
    """One JSON file per run, named by a hash of its description."""

    def __init__(self, directory: str | None):
        self.directory = directory
        if directory:
            os.makedirs(directory, exist_ok=True)

    def _path(self, key: dict) -> str:
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        return os.path.join(self.directory, f"{digest}.json")

    def get_or_run(self, key: dict, fn):
        if self.directory and os.path.exists(self._path(key)):
            with open(self._path(key)) as f:
                return json.load(f)["result"]
        result = fn()
        if self.directory:
            tmp = self._path(key) + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"key": key, "result": result}, f)
            os.replace(tmp, self._path(key))
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


def summarize(results: list[dict]) -> dict:
    finals = np.array([final_loss(r) for r in results], dtype=np.float64)
    curves = np.array([r["losses"] for r in results], dtype=np.float64)
    return {"final_mean": float(np.mean(finals)), "final_std": float(np.std(finals)),
            "curve_mean": [float(v) for v in np.mean(curves, 0)], "steps": results[0]["steps"]}
