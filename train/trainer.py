"""Meta-training of the hierarchical-RNN optimizer: truncated back-propagation through unrolled optimization
(second-order TBPTT, the original's estimator; `estimator="tbptt"`), or persistent evolution strategies
(`estimator="pes"`, forward-only and unbiased over long horizons: `train.pes`).

A *task* is one sampled problem optimized from fresh parameters for U partial unrolls of lengths L_j, with
U = min_unrolls + round(Exp(unrolls_scale)) and L_j = min_length + round(Exp(length_scale)) (the heavy-tailed
draws of the original `metaopt.train_optimizer`, defaults of `metarun.py`). Each meta-step runs one partial
unroll on each of `problems_per_step` task streams, averages their meta-gradients (all-reduced across workers
under `tf.distribute`), and applies one meta-optimizer step. Parameters and optimizer state carry across the
unrolls of a task, each unroll starting from the state at the end of the previous one (the original carries
the state from the start of the last unroll); no gradient crosses an unroll boundary.

Everything random is derived from (seed, worker, stream, task index), and the live task state is part of the
checkpoint, so a resumed run reproduces an uninterrupted one bit for bit. Under PES the streams are numbered
over all workers, the particles' states and perturbation accumulators are checkpointed, and one all-reduce sums
the per-stream estimates (see `train.pes`).

The meta-objective is the mean of a per-step term of the normalised loss (`meta_objective`, `train.unroll`):
the original log ratio, or the clipped ratio, which late blow-ups cannot hide behind a floor. `trainable_groups`
restricts the meta-parameters that are trained (by name prefix); the others stay frozen.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
import signal
import time

import keras
import numpy as np
import tensorflow as tf

import problems
from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.weights import load_weights, save_weights
from train import task_files
from train.meta_optimizers import DEFAULT_EPSILON, MetaOptimizer, all_finite
from train.pes import TASK_LOSSES, FlatMeta, PESStreams, trainable_keys
from train.unroll import OBJECTIVES, make_unroll


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig:
    """Everything that defines a meta-training run (saved as `run_config.json` beside its outputs). The
    defaults are those of `python -m train.meta_train`, whose flags are made from these fields and `HELP`."""

    problem_set: str = "default"
    meta_steps: int = 1000
    min_length: int = 50
    length_scale: float = 200.0
    max_length: int = 1000
    min_unrolls: int = 1
    unrolls_scale: float = 40.0
    problems_per_step: int = 1
    meta_optimizer: str = "rmsprop"
    meta_learning_rate: float = 1e-6
    clip_value: float = 1e4
    first_order: bool = False
    seed: int = 0
    init_weights: str | None = "init"
    hrnn: HRNNConfig = HRNNConfig()
    checkpoint_every: int = 10
    validate_every: int = 50
    validation_problem_set: str = ""
    num_validation_problems: int = 8
    validation_length: int = 200
    validation_seed: int = 10**6
    jit_compile: bool = True
    divergence_multiplier: float = 1e3
    remat: bool = True
    stream_clip_norm: float = 0.0
    estimator: str = "tbptt"
    meta_objective: str = "log_ratio"
    loss_clip: float = 10.0
    trainable_groups: str = ""
    pes_pairs: int = 8
    pes_std: float = 0.01
    pes_truncation: int = 50
    pes_min_horizon: int = 100
    pes_max_horizon: int = 10000
    pes_initial_offset: int = 10000
    pes_task_loss: str = "objective"

    @property
    def objective_clip(self) -> float:
        """The clip of the normalised loss in the meta-objective: `loss_clip` for the clipped ratio and under PES
        (whose task losses are always clipped), none for the 2017 log ratio under TBPTT."""
        return self.loss_clip if self.meta_objective == "clipped_ratio" or self.estimator == "pes" else 0.0

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["hrnn"] = self.hrnn.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d.setdefault("remat", False)  # runs started before these fields existed did not recompute steps,
        d.setdefault("divergence_multiplier", 0.0)  # nor did they end diverged tasks early
        d.setdefault("stream_clip_norm", 0.0)  # nor clip each stream's meta-gradient
        d["hrnn"] = HRNNConfig.from_dict(d.get("hrnn", {}))
        return cls(**d)


# What each MetaTrainConfig field means: the help of its command-line flag.
HELP = {
    "problem_set": "Problem set to meta-train on (problems.PROBLEM_SETS).",
    "meta_steps": "Total meta-steps (one partial unroll per stream each).",
    "min_length": "Partial-unroll length = min_length + round(Exp(length_scale)).",
    "length_scale": "Scale of the exponential part of the unroll length.",
    "max_length": "Cap on the unroll length (static bound of the unroll's while loop).",
    "min_unrolls": "Partial unrolls per task = min_unrolls + round(Exp(unrolls_scale)).",
    "unrolls_scale": "Scale of the exponential part of the number of unrolls.",
    "problems_per_step": "Task streams (per worker) whose meta-gradients are averaged per meta-step.",
    "meta_optimizer": "Meta-optimizer (train.meta_optimizers; the original's is RMSProp).",
    "meta_learning_rate": "Meta learning rate (original: RMSProp at 1e-6).",
    "clip_value": "Elementwise clip of the meta-gradient (original: 1e4).",
    "first_order": "Stop gradients through the problem gradients (no second-order terms).",
    "seed": "Run seed: every problem, length and initial state derives from it.",
    "init_weights": "Weight set to start from (a shipped name or a path); 'none': a fresh initialisation of "
                    "the architecture. Any --hrnn override also starts from a fresh initialisation.",
    "hrnn": "HRNNConfig overrides, e.g. --hrnn use_attention=True (ablations).",
    "checkpoint_every": "Checkpoint every N meta-steps (and on SIGTERM/SIGINT).",
    "validate_every": "Validate every N meta-steps (0: never).",
    "validation_problem_set": "Problem set of the held-out validation problems ('': the training problem set).",
    "num_validation_problems": "Held-out validation problems (fixed seeds).",
    "validation_length": "Inner steps per validation problem.",
    "validation_seed": "Seed of the first validation problem; training seeds never reach it.",
    "jit_compile": "Compile the unrolls with XLA: 3-13x faster inner steps, but ~8 s of compile per task, and "
                   "every task's compiled code stays mapped, so a long run exhausts the process's memory maps: "
                   "restart it every few hundred tasks with --resume (exact).",
    "divergence_multiplier": "End a task once its loss exceeds this multiple of its initial loss (0: only on "
                             "non-finite values; the original ends none by default).",
    "remat": "Recompute each inner step in the backward pass (memory per inner step ~3.5x lower).",
    "stream_clip_norm": "Scale each stream's meta-gradient down to this global norm before averaging (0: off). "
                        "Chaotic unrolls give rare meta-gradients of 1e4..1e14 that would otherwise fill Adam's "
                        "second moment and freeze every meta-parameter for thousands of steps.",
    "estimator": "Meta-gradient estimator: 'tbptt' (truncated back-propagation, second order unless --first_order; "
                 "the original's) or 'pes' (persistent evolution strategies: forward-only antithetic particles, "
                 "unbiased over the whole task horizon; train.pes). Under pes the pes_* fields set the tasks and "
                 "the unroll fields (min_length .. unrolls_scale), first_order and remat are unused; inner_steps/s "
                 "counts the steps of every particle.",
    "meta_objective": "Per-step term of the meta-loss, of r = f_t / f_0: 'log_ratio' (log(r + 1e-6), the original's; "
                      "its floor hides late spikes) or 'clipped_ratio' (min(r, --loss_clip): a late blow-up costs "
                      "its height for every step it lasts).",
    "loss_clip": "Clip of the normalised loss r = f_t / f_0 for 'clipped_ratio' and under PES (there for "
                 "'log_ratio' too: terms at most log(loss_clip)).",
    "trainable_groups": "Comma-separated meta-parameter name prefixes to train, e.g. 'readout/,stepsize_offset' "
                        "(''/'all': every one); the rest stay frozen. Names: lopt_tf.hrnn.meta_shapes.",
    "pes_pairs": "PES: antithetic particle pairs per task stream (2x this many particles run in one program).",
    "pes_std": "PES: standard deviation of the perturbations of the trainable meta-parameters.",
    "pes_truncation": "PES: inner steps per truncation (one per meta-step; the last of a task ends at its horizon).",
    "pes_min_horizon": "PES: task horizons (inner steps) are log-uniform in [pes_min_horizon, pes_max_horizon].",
    "pes_max_horizon": "PES: largest task horizon.",
    "pes_initial_offset": "PES: each stream's first task starts at an inner step uniform below min(this, its "
                          "horizon), so that streams restart out of phase (0: all start at step 0).",
    "pes_task_loss": "PES: the loss in the meta-objective's terms: 'objective' (the problem's full-batch "
                     "objective after every step) or 'minibatch' (the mini-batch loss of every step's gradient, "
                     "no extra forward pass).",
}
CHOICES = {"meta_optimizer": tuple(DEFAULT_EPSILON), "estimator": ("tbptt", "pes"), "meta_objective": OBJECTIVES,
           "pes_task_loss": TASK_LOSSES}


def clip_by_global_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Scale a meta-gradient dict down to global norm `max_norm` (0: unchanged). Returns it and its norm."""
    norm = float(tf.linalg.global_norm(list(grads.values())))
    if max_norm <= 0 or norm <= max_norm:
        return grads, norm
    return {k: v * (max_norm / norm) for k, v in grads.items()}, norm


def task_seed(run_seed: int, worker: int, stream: int, index: int) -> int:
    return problems.derive_seed(run_seed, worker, stream, index)


@dataclasses.dataclass
class Task:
    """A problem being optimized across partial unrolls; checkpointed by `MetaTrainer._task_arrays`."""

    index: int
    seed: int
    problem: object
    lengths: list[int]
    unroll: int = 0
    step: int = 0
    params: list = None
    state: dict = None
    f_init: float = 0.0

    @property
    def done(self) -> bool:
        return self.unroll >= len(self.lengths)


class MetaTrainer:
    """Runs meta-training; `run()` trains up to `config.meta_steps`, checkpointing and validating as it goes."""

    def __init__(self, config: MetaTrainConfig, output_dir: str, strategy: tf.distribute.Strategy | None = None,
                 verbose: int = 1):
        self.config = config
        self.output_dir = output_dir
        self.strategy = strategy
        self.verbose = verbose
        resolver = getattr(strategy, "cluster_resolver", None) if strategy else None
        self.worker = int(resolver.task_id) if resolver is not None and resolver.task_type else 0
        self.num_workers = strategy.num_replicas_in_sync if strategy else 1
        self.is_chief = self.worker == 0
        os.makedirs(output_dir, exist_ok=True)
        meta, hrnn_config, _ = load_weights(config.init_weights, config.hrnn)
        self.hrnn_config = hrnn_config
        self.meta_vars = {k: tf.Variable(v, name=k.replace("/", "__")) for k, v in sorted(meta.items())}
        self.trainable = trainable_keys(self.meta_vars, config.trainable_groups)
        self.meta_opt = MetaOptimizer(self.meta_vars, config.meta_optimizer, config.meta_learning_rate,
                                      config.clip_value, trainable=self.trainable)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_validation = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
        self.dropped_streams = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.ended_tasks = tf.Variable(0, dtype=tf.int64, trainable=False)  # tasks ended early by divergence
        self.dropped_particles = tf.Variable(0, dtype=tf.int64, trainable=False)  # PES: left out, non-finite
        self.checkpoint = tf.train.Checkpoint(meta=self.meta_vars, meta_optimizer=self.meta_opt, step=self.step,
                                              best_validation=self.best_validation,
                                              dropped_streams=self.dropped_streams, ended_tasks=self.ended_tasks,
                                              dropped_particles=self.dropped_particles)
        os.makedirs(self._worker_dir("checkpoints"), exist_ok=True)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self._worker_dir("checkpoints"), max_to_keep=3)
        self.sampler = problems.ProblemSampler.named(config.problem_set)
        self.streams: list[Task | None] = [None] * config.problems_per_step
        self.next_task = [0] * config.problems_per_step
        self.pes = None
        if config.estimator == "pes":
            self.pes = PESStreams(config, hrnn_config, self.meta_vars, self.sampler,
                                  first=self.worker * config.problems_per_step, count=config.problems_per_step,
                                  flat=FlatMeta.of(self.meta_vars, self.trainable))
            self.streams = self.pes.streams
        elif config.estimator != "tbptt":
            raise ValueError(f"estimator must be 'tbptt' or 'pes', got {config.estimator!r}")
        self._unrolls = {}  # (task index, task seed) -> traced unroll function, for live tasks only
        self._validation = None
        self._stop = False
        self.writer = tf.summary.create_file_writer(self._worker_dir("tensorboard"))

    # -- files ----------------------------------------------------------------------------------------------
    def _worker_dir(self, name: str) -> str:
        return os.path.join(self.output_dir, name if self.is_chief else f"{name}_worker{self.worker}")

    def _task_file(self, step: int) -> str:
        return os.path.join(self._worker_dir("checkpoints"), f"tasks-{step}.npz")

    # -- tasks ----------------------------------------------------------------------------------------------
    def _new_task(self, stream: int) -> Task:
        index = self.next_task[stream]
        self.next_task[stream] += 1
        seed = task_seed(self.config.seed, self.worker, stream, index)
        problem = self.sampler.sample(seed)
        rng = np.random.default_rng([seed, 17])
        c = self.config
        num = c.min_unrolls + int(round(rng.exponential(c.unrolls_scale))) if c.unrolls_scale > 0 else c.min_unrolls
        lengths = [min(c.max_length, c.min_length + int(round(rng.exponential(c.length_scale))))
                   if c.length_scale > 0 else c.min_length for _ in range(num)]
        task = Task(index, seed, problem, lengths)
        task.params = problem.init_params(problems.derive_seed(seed, 1))
        meta = {k: tf.convert_to_tensor(v) for k, v in self.meta_vars.items()}
        task.state = hrnn.init_state(meta, self.hrnn_config, task.params, problems.derive_seed(seed, 2))
        task.f_init = float(problem.objective(task.params))
        return task

    def _unroll_fn(self, task: Task):
        key = (task.index, task.seed)
        if key not in self._unrolls:
            live = {(t.index, t.seed) for t in self.streams if t is not None}
            self._unrolls = {k: v for k, v in self._unrolls.items() if k in live}  # drop finished tasks' traces
            c = self.config
            self._unrolls[key] = make_unroll(task.problem, self.hrnn_config, self.meta_vars, c.max_length,
                                             c.first_order, c.jit_compile, c.remat, c.meta_objective,
                                             c.objective_clip)
        return self._unrolls[key]

    def _task_arrays(self) -> dict:
        if self.pes is not None:
            return self.pes.arrays()
        return task_files.stream_arrays(self.next_task, self.streams, lambda task: (
            {"index": task.index, "seed": task.seed, "lengths": task.lengths, "unroll": task.unroll,
             "step": task.step, "f_init": task.f_init}, {}))

    def _restore_tasks(self, path: str) -> None:
        with np.load(path, allow_pickle=False) as z:
            if self.pes is not None:
                self.pes.restore(z)
                return
            self.next_task, streams = task_files.read_streams(z, len(self.streams))
            for s, info, params, state in streams:
                task = Task(info["index"], info["seed"], self.sampler.sample(info["seed"]), info["lengths"],
                            info["unroll"], info["step"], f_init=info["f_init"])
                if state is not None and not task_files.state_fits(s, state, self.hrnn_config,
                                                                   task.problem.param_shapes):
                    continue  # an older state layout: the stream starts a new task
                task.params, task.state = params, state
                self.streams[s] = task

    # -- checkpoints ----------------------------------------------------------------------------------------
    def save(self) -> None:
        step = int(self.step.numpy())
        path = self._task_file(step)
        np.savez(path + ".tmp.npz", **self._task_arrays())
        os.replace(path + ".tmp.npz", path)
        self.manager.save(checkpoint_number=step)
        self.export_weights(os.path.join(self.output_dir, "weights_latest.npz"))
        kept = {self._task_file(int(p.rsplit("-", 1)[1])) for p in self.manager.checkpoints}
        for name in os.listdir(self._worker_dir("checkpoints")):
            full = os.path.join(self._worker_dir("checkpoints"), name)
            if name.startswith("tasks-") and full not in kept:
                os.remove(full)

    def restore(self) -> bool:
        """Continue from the latest checkpoint in `output_dir`; returns False if there is none."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return False
        # Counters added in later versions may be missing from an older checkpoint (they then start at 0);
        # the meta-parameters and the meta-optimizer must be there.
        tf.train.Checkpoint(meta=self.meta_vars, meta_optimizer=self.meta_opt, step=self.step).read(
            latest).assert_existing_objects_matched()
        self.checkpoint.read(latest).expect_partial()
        tasks = self._task_file(int(latest.rsplit("-", 1)[1]))
        if os.path.exists(tasks):
            self._restore_tasks(tasks)
        else:  # a checkpoint kept without its (large) task file: meta-state resumes exactly, tasks start anew
            warnings.warn(f"{tasks} is missing: the meta-parameters and meta-optimizer resume from {latest}, "
                          "the task streams start new tasks (not bit-exact with an uninterrupted run).")
        return True

    def export_weights(self, path: str) -> None:
        if not self.is_chief:
            return
        save_weights(path, {k: v.numpy() for k, v in self.meta_vars.items()}, self.hrnn_config,
                     {"meta_steps": int(self.step.numpy()), "run_config": self.config.to_dict()})

    # -- one meta-step ----------------------------------------------------------------------------------------
    def _all_reduce_mean(self, grads: dict) -> dict:
        """Mean of the meta-gradients over workers: one collective on all of them packed into one vector."""
        if self.strategy is None or self.num_workers == 1:
            return grads
        keys = sorted(grads)
        flat = tf.concat([tf.reshape(grads[k], [-1]) for k in keys], 0)
        per_replica = self.strategy.run(lambda: tf.identity(flat))
        flat = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
        sizes = [int(np.prod(grads[k].shape)) for k in keys]
        return {k: tf.reshape(v, grads[k].shape) for k, v in zip(keys, tf.split(flat, sizes))}

    def _all_reduce_sum(self, array: np.ndarray) -> np.ndarray:
        """Sum of a numpy array over workers (one collective)."""
        if self.strategy is None or self.num_workers == 1:
            return array
        value = tf.constant(array)
        per_replica = self.strategy.run(lambda: tf.identity(value))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()

    def meta_step(self) -> dict:
        """One partial unroll (TBPTT) or truncation (PES) per stream and one meta-update. Returns logging values."""
        return self._meta_step_pes() if self.pes is not None else self._meta_step_tbptt()

    def _meta_step_pes(self) -> dict:
        """PES: the mean over every worker's streams of their estimates. Each worker writes its streams' rows
        into a table over all streams (zeros elsewhere) and one all-reduce sums the tables: every entry is then
        one worker's value plus zeros, exactly, so the result does not depend on the number of workers."""
        rows, used, info = self.pes.estimate(int(self.step.numpy()))
        flat = self.pes.flat
        table = np.zeros([self.num_workers * self.config.problems_per_step, flat.size + 1], np.float32)
        first = self.pes.first
        table[first:first + len(rows), :-1] = rows
        table[first:first + len(rows), -1] = used
        table = self._all_reduce_sum(table)
        count = float(np.sum(table[:, -1]))
        grads = {k: tf.zeros_like(v) for k, v in self.meta_vars.items()}  # frozen names: no gradient
        if count:
            grads.update({k: tf.constant(v) for k, v in
                          flat.unflatten(np.sum(table[:, :-1], 0) / np.float32(count)).items()})
        else:  # no finite pair on any worker: a NaN gradient, which the meta-optimizer skips and counts
            grads.update({k: tf.fill(self.meta_vars[k].shape, np.nan) for k in flat.keys})
        self.dropped_particles.assign_add(info["dropped"])
        self.ended_tasks.assign_add(info["ended"])
        applied = self.meta_opt.apply(grads)
        self.step.assign_add(1)
        finite = [x for x in info["losses"] if math.isfinite(x)]
        return {"meta_loss": float(np.mean(finite)) if finite else float("nan"), "losses": info["losses"],
                "families": info["families"], "inner_steps": info["inner_steps"], "applied": applied,
                "grad_norms": info["grad_norms"]}

    def _meta_step_tbptt(self) -> dict:
        grads_sum, losses, families, norms, inner_steps, used = None, [], [], [], 0, 0
        for s in range(len(self.streams)):
            if self.streams[s] is None or self.streams[s].done:
                self.streams[s] = self._new_task(s)
            task = self.streams[s]
            length = task.lengths[task.unroll]
            loss, grads, params, state, f_last = self._unroll_fn(task)(
                task.params, task.state, tf.constant(task.f_init, tf.float32), tf.constant(task.step, tf.int32),
                tf.constant(length, tf.int32), tf.constant(task.seed, tf.int32))  # task seeds are < 2**31 - 1
            task.unroll += 1
            task.step += length
            inner_steps += length
            finite = bool(tf.math.is_finite(f_last)) and all(
                bool(tf.reduce_all(tf.math.is_finite(p))) for p in params)
            task.params, task.state = params, state
            mult = self.config.divergence_multiplier
            diverged = mult > 0 and finite and float(f_last) > mult * (task.f_init + 1e-6)
            if not finite or diverged:  # the inner run diverged: end this task, start a new one next step
                task.unroll = len(task.lengths)
                self.ended_tasks.assign_add(1)
            losses.append(float(loss))
            families.append(task.problem.family)
            if all_finite(grads):
                grads, norm = clip_by_global_norm(grads, self.config.stream_clip_norm)
                norms.append(norm)
                grads_sum = grads if grads_sum is None else {k: grads_sum[k] + grads[k] for k in grads}
                used += 1
            else:  # this stream's meta-gradient is dropped (and counted); the other streams' still count
                self.dropped_streams.assign_add(1)
        if used:
            grads = {k: v / used for k, v in grads_sum.items()}
        else:  # nothing finite: a NaN gradient, which the meta-optimizer skips and counts (on every worker)
            grads = {k: tf.fill(v.shape, np.nan) for k, v in self.meta_vars.items()}
        grads = self._all_reduce_mean(grads)
        applied = self.meta_opt.apply(grads)
        self.step.assign_add(1)
        finite = [x for x in losses if math.isfinite(x)]
        return {"meta_loss": float(np.mean(finite)) if finite else float("nan"), "losses": losses, "families": families,
                "inner_steps": inner_steps, "applied": applied, "grad_norms": norms}

    # -- validation -------------------------------------------------------------------------------------------
    def validation_problems(self):
        if self._validation is None:
            c = self.config
            sampler = problems.ProblemSampler.named(c.validation_problem_set or c.problem_set)
            self._validation = []
            for i in range(c.num_validation_problems):
                problem = sampler.sample(c.validation_seed + i)
                fn = make_unroll(problem, self.hrnn_config, self.meta_vars, c.validation_length, jit_compile=False,
                                 meta_objective=c.meta_objective, loss_clip=c.objective_clip)
                self._validation.append((problem, fn.evaluate))
        return self._validation

    def validate(self) -> float:
        """Mean meta-loss of one `validation_length` unroll on each held-out problem (fixed seeds)."""
        c = self.config
        meta = {k: tf.convert_to_tensor(v) for k, v in self.meta_vars.items()}
        values = []
        for i, (problem, evaluate) in enumerate(self.validation_problems()):
            seed = c.validation_seed + i
            params = problem.init_params(seed)
            state = hrnn.init_state(meta, self.hrnn_config, params, seed)
            loss, _, _ = evaluate(params, state, problem.objective(params), tf.constant(0),
                                     tf.constant(c.validation_length), tf.constant(seed))
            values.append(float(loss) if math.isfinite(float(loss)) else 10.0)  # a diverged run scores badly
        return float(np.mean(values))

    def validate_meta(self, meta: dict) -> float:
        """`validate()` for other meta-parameter values (same architecture); the trainer's own are restored."""
        saved = {k: v.numpy() for k, v in self.meta_vars.items()}
        try:
            for k, v in meta.items():
                self.meta_vars[k].assign(v)
            return self.validate()
        finally:
            for k, v in saved.items():
                self.meta_vars[k].assign(v)

    # -- the loop ---------------------------------------------------------------------------------------------
    def _request_stop(self, signum, frame):  # noqa: ARG002
        self._stop = True

    def run(self, resume: bool = False) -> dict:
        c = self.config
        if resume and self.restore() and self.verbose:
            print(f"Resumed at meta-step {int(self.step.numpy())} from {self.manager.latest_checkpoint}")
        if self.is_chief:
            with open(os.path.join(self.output_dir, "run_config.json"), "w") as f:
                json.dump(c.to_dict(), f, indent=1, sort_keys=True)
        handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                handlers[sig] = signal.signal(sig, self._request_stop)
            except ValueError:  # not the main thread
                pass
        # Current values, not running means; the validation value gets a line of its own where it is measured.
        progbar = keras.utils.Progbar(c.meta_steps, verbose=self.verbose, unit_name="meta-step", interval=0.0,
                                      stateful_metrics=("meta_loss", "inner_steps/s"))
        progbar.update(int(self.step.numpy()))
        history = []
        try:
            while int(self.step.numpy()) < c.meta_steps and not self._stop:
                start = time.perf_counter()
                out = self.meta_step()
                step = int(self.step.numpy())
                rate = out["inner_steps"] / (time.perf_counter() - start)
                history.append(out["meta_loss"])
                finite_loss = math.isfinite(out["meta_loss"])
                with self.writer.as_default(step=step):
                    if finite_loss:
                        tf.summary.scalar("meta_loss", out["meta_loss"])
                    for fam, loss in zip(out["families"], out["losses"]):
                        if math.isfinite(loss):
                            tf.summary.scalar(f"meta_loss_by_family/{fam}", loss)
                    tf.summary.scalar("dropped_streams", int(self.dropped_streams.numpy()))
                    tf.summary.scalar("tasks_ended_by_divergence", int(self.ended_tasks.numpy()))
                    if self.pes is not None:
                        tf.summary.scalar("pes/dropped_particles", int(self.dropped_particles.numpy()))
                    tf.summary.scalar("inner_steps_per_second", rate)
                    if out["grad_norms"]:
                        tf.summary.scalar("log10_stream_grad_norm/max", np.log10(max(out["grad_norms"]) + 1e-30))
                    tf.summary.scalar("skipped_meta_gradients", int(self.meta_opt.skipped.numpy()))
                    for task in self.streams:
                        if task is not None and task.state is not None and "log_lr" in task.state:
                            tf.summary.scalar("log_lr/mean", float(tf.reduce_mean(task.state["log_lr"])))
                            tf.summary.scalar("log_lr/std", float(tf.math.reduce_std(task.state["log_lr"])))
                progbar.update(step, values=[("meta_loss", out["meta_loss"]), ("inner_steps/s", rate)])
                # Validated every validate_every meta-steps and at the last one, so a short run has a best too.
                if c.validate_every and (step % c.validate_every == 0 or step == c.meta_steps):
                    val = self.validate()
                    with self.writer.as_default(step=step):
                        tf.summary.scalar("validation_meta_loss", val)
                    # every validated step is kept: a longer selection (train.select_weights) picks among them
                    self.export_weights(os.path.join(self.output_dir, "snapshots", f"step_{step}.npz"))
                    best = val < float(self.best_validation.numpy())
                    if best:
                        self.best_validation.assign(val)
                        self.export_weights(os.path.join(self.output_dir, "weights_best.npz"))
                    self._log_validation(step, val)
                    if self.verbose and self.is_chief:
                        # the bar ends its line itself at the last step
                        print(("" if step >= c.meta_steps else "\n") + f"meta-step {step}: validation {val:.4f}"
                              + (" (best so far: weights_best.npz)" if best
                                 else f" (best {float(self.best_validation.numpy()):.4f})"), flush=True)
                if c.checkpoint_every and step % c.checkpoint_every == 0:
                    self.save()
        finally:
            if int(self.step.numpy()) and (self._stop or int(self.step.numpy()) % max(c.checkpoint_every, 1)):
                self.save()
            for sig, h in handlers.items():
                signal.signal(sig, h)
            self.writer.flush()
        return {"meta_losses": history, "step": int(self.step.numpy()), "stopped": self._stop,
                "skipped": int(self.meta_opt.skipped.numpy()), "dropped_streams": int(self.dropped_streams.numpy()),
                "dropped_particles": int(self.dropped_particles.numpy())}

    def outputs(self) -> list[str]:
        """The names of the files and directories this run has written to `output_dir` (chief's view)."""
        names = ["weights_best.npz", "weights_latest.npz", "saved_model_best", "run_config.json", "validation.csv",
                 "snapshots", "checkpoints", "tensorboard"]
        return [n + ("/" if os.path.isdir(os.path.join(self.output_dir, n)) else "") for n in names
                if os.path.exists(os.path.join(self.output_dir, n))]

    def _log_validation(self, step: int, value: float) -> None:
        if self.is_chief:
            with open(os.path.join(self.output_dir, "validation.csv"), "a") as f:
                f.write(f"{step},{value:.6f}\n")
