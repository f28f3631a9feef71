"""Persistent evolution strategies (PES): a forward-only, long-horizon meta-gradient estimator.

PES (Vicol, Metz & Sohl-Dickstein, "Unbiased gradient estimation in unrolled computation graphs with
persistent evolution strategies", ICML 2021; reference implementation `google/learned_optimization`
`outer_trainers/truncated_pes.py`) estimates the meta-gradient of the loss of a whole inner-training run from
truncated forward unrolls, with no backward pass through the optimizer and no bias towards short horizons.

One *stream* runs one task at a time: a sampled problem optimized for a horizon H drawn log-uniformly from
[pes_min_horizon, pes_max_horizon], in truncations of K = pes_truncation inner steps (the last one ends at H).
On a stream, N = pes_pairs antithetic pairs of particles share the problem, its initial parameters and every
mini-batch; for each truncation, pair i runs with meta-parameters θ + ε_i and θ − ε_i, ε_i ~ N(0, σ² I) drawn
afresh (σ = pes_std, over the trainable meta-parameters only). Pair i keeps the sum A_i of every ε it has been
perturbed with since its task started (the accumulator, zero when a task starts). After a truncation

    A_i ← A_i + ε_i,   ΔL_i = Σ_t (ℓ_t⁺ − ℓ_t⁻) / K,   ĝ_i = ΔL_i · A_i / (2σ²),

with ℓ_t the per-step meta-objective term (`train.unroll.objective_term`, the normalised loss clipped at
`loss_clip`). The losses of a truncation depend on θ through the perturbations of every truncation of the task
so far, and A_i is their sum, so ĝ_i is an unbiased estimate of the gradient of the (Gaussian-smoothed) loss
of this truncation with respect to θ through the whole task; summed over the task's truncations, of the whole
run's loss. Dividing by K (not by the truncation's length) gives every inner step the same weight.

A stream's 2N particles run in one program: their meta-parameters, parameters and optimizer states are
stacked along a leading particle axis, and every inner step maps `lopt_tf.hrnn.step` over that axis with
`tf.vectorized_map` (one XLA program under `jit_compile`). A task's initial optimizer states are made from each
particle's own meta-parameters, so the learned initial hidden states (init/*) get a gradient too. The first
task of each stream starts at a random inner step below min(pes_initial_offset, H) (fresh parameters, a
shorter run), so that streams restart at different meta-steps (out of phase).

A pair with a non-finite loss or parameter is left out of the estimate (both particles are counted as dropped)
and its task ends; so does a task whose loss exceeds `divergence_multiplier` times its initial loss. Streams
are numbered globally (worker w runs streams w·P .. w·P + P − 1, P = problems_per_step), and every task,
horizon and perturbation derives from (run seed, global stream, ...), so the particles, and the summed
estimate, do not depend on how the streams are split over workers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

import problems
from lopt_tf import hrnn
from lopt_tf.config import HRNNConfig
from lopt_tf.layout import Layout
from train import task_files
from train.unroll import objective_term

_HORIZON_SALT = 19
_PERTURBATION_SALT = 23
TASK_LOSSES = ("objective", "minibatch")


def trainable_keys(keys, groups: str) -> tuple[str, ...]:
    """The meta-parameter names (sorted) that start with one of the comma-separated prefixes in `groups`
    ('' or 'all': every name). A prefix that matches no name is an error."""
    keys = sorted(keys)
    prefixes = [g.strip() for g in groups.split(",") if g.strip()]
    if not prefixes or prefixes == ["all"]:
        return tuple(keys)
    unmatched = [p for p in prefixes if not any(k.startswith(p) for k in keys)]
    if unmatched:
        raise ValueError(f"trainable groups {unmatched} match no meta-parameter; names: {keys}")
    return tuple(k for k in keys if any(k.startswith(p) for p in prefixes))


@dataclasses.dataclass(frozen=True)
class FlatMeta:
    """The trainable meta-parameters as one flat vector: names, shapes, and the (un)flattening."""

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, meta: dict, keys) -> "FlatMeta":
        return cls(tuple(keys), tuple(tuple(int(d) for d in meta[k].shape) for k in keys))

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def flatten(self, meta: dict) -> tf.Tensor:
        return tf.concat([tf.reshape(tf.convert_to_tensor(meta[k], tf.float32), [-1]) for k in self.keys], 0)

    def unflatten(self, flat) -> dict:
        """[..., size] -> name -> [..., *shape] (tensors for a tensor, arrays for an array)."""
        if isinstance(flat, np.ndarray):
            parts = np.split(flat, np.cumsum(self.sizes)[:-1], axis=-1)
            return {k: p.reshape(flat.shape[:-1] + s) for k, p, s in zip(self.keys, parts, self.shapes)}
        lead = tf.shape(flat)[:-1]
        parts = tf.split(flat, self.sizes, axis=-1)
        return {k: tf.reshape(p, tf.concat([lead, tf.constant(s, tf.int32)], 0)) if s else tf.reshape(p, lead)
                for k, p, s in zip(self.keys, parts, self.shapes)}


def sample_schedule(task_seed: int, min_horizon: int, max_horizon: int, initial_offset: int,
                    first: bool) -> tuple[int, int]:
    """(horizon, starting inner step) of a task: horizon log-uniform in [min_horizon, max_horizon]; the first
    task of a stream starts at a step uniform in [0, min(initial_offset, horizon)), later ones at 0."""
    rng = np.random.default_rng([task_seed, _HORIZON_SALT])
    lo, hi = max(int(min_horizon), 1), max(int(max_horizon), int(min_horizon), 1)
    horizon = min(hi, max(lo, int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))))
    start = int(rng.integers(0, min(initial_offset, horizon))) if first and initial_offset > 0 else 0
    return horizon, start


def perturbations(run_seed: int, meta_step: int, stream: int, num_pairs: int, size: int, std: float) -> np.ndarray:
    """ε [num_pairs, size] float32, N(0, std²), a function of (run seed, meta-step, global stream) only."""
    rng = np.random.default_rng([run_seed, _PERTURBATION_SALT, meta_step, stream])
    return (std * rng.standard_normal((num_pairs, size))).astype(np.float32)


def pair_gradients(delta_sums, accum, std: float, truncation: int) -> np.ndarray:
    """ĝ_i = ΔL_i · A_i / (2σ²), ΔL_i = delta_sums_i / K: [N, D] float64 from the per-pair sums of
    ℓ⁺ − ℓ⁻ over a truncation and the accumulators A (already including this truncation's ε)."""
    delta = np.asarray(delta_sums, np.float64) / float(truncation)
    return (delta / (2.0 * std * std))[:, None] * np.asarray(accum, np.float64)


def make_pes_unroll(problem, config: HRNNConfig, meta_vars: dict, flat: FlatMeta, num_pairs: int, max_length: int,
                    meta_objective: str = "log_ratio", loss_clip: float = 10.0, jit_compile: bool = False,
                    task_loss: str = "objective"):
    """Build `unroll(eps, params, state, f_init, start_step, length, seed)` for the 2N particles of a stream.

    Particles 0..N-1 run θ + eps, particles N..2N-1 run θ − eps (θ: the current `meta_vars`, perturbed in the
    `flat` names only). `params` and `state` hold every particle's, stacked on a leading axis of 2N. Returns
    `(delta, sums, finite, f_last, params, state)`: per pair the float64 sum over the `length` steps of
    ℓ⁺ − ℓ⁻ [N]; per particle the float64 sum of ℓ [2N], whether every loss and parameter stayed finite [2N],
    the last loss ℓ was computed from [2N], and the new parameters and states. Every particle sees the problem's gradient
    at the same (seed, step): the same mini-batches and noise.

    `task_loss` is the loss in ℓ: "objective", the problem's full-batch objective after each step, or
    "minibatch", the mini-batch loss the gradient comes with, at the parameters before each step (free: no
    extra forward pass; the step-t term then measures the parameters after t − 1 updates, so a truncation's
    last update is scored in the next one, whose accumulators carry its perturbation). Both give unbiased
    estimates of their meta-objective; "minibatch" is the training loss that learned_optimization's PES
    tasks use, and is much cheaper where the objective's evaluation set is large.

    `unroll.init_states(eps, params, seed)` gives the particles' initial optimizer states for unstacked initial
    `params`, each from its own perturbed meta-parameters (`hrnn.init_state` with `seed`).
    """
    if task_loss not in TASK_LOSSES:
        raise ValueError(f"task_loss must be one of {TASK_LOSSES}, got {task_loss!r}.")
    n = 2 * num_pairs
    frozen_keys = [k for k in sorted(meta_vars) if k not in flat.keys]
    layout = Layout(tuple(tuple(s) for s in problem.param_shapes))
    state_shapes = hrnn.state_shapes(config, layout)
    dtype = lambda k: tf.int32 if k == "skipped" else tf.float32  # noqa: E731
    scalar = lambda d: tf.TensorSpec([], d)  # noqa: E731
    eps_spec = tf.TensorSpec([num_pairs, flat.size], tf.float32)
    signature = [eps_spec, [tf.TensorSpec([n, *s], tf.float32) for s in layout.shapes],
                 {k: tf.TensorSpec([n, *s], dtype(k)) for k, s in state_shapes.items()},
                 scalar(tf.float32), scalar(tf.int32), scalar(tf.int32), scalar(tf.int32)]

    def particle_meta(eps):
        theta = flat.flatten({k: meta_vars[k] for k in flat.keys})
        perturbed = flat.unflatten(theta[None] + tf.concat([eps, -eps], 0))
        frozen = {k: tf.convert_to_tensor(meta_vars[k]) for k in frozen_keys}
        return perturbed, frozen

    @tf.function(jit_compile=jit_compile, input_signature=signature)
    def unroll(eps, params, state, f_init, start_step, length, seed):
        perturbed, frozen = particle_meta(eps)

        def body(t, delta, sums, finite, f_last, params, state):
            def particle(args):
                meta, p, s = args
                loss, grads = problem.gradient(p, start_step + t, seed)
                p, s = hrnn.step({**frozen, **meta}, config, p, grads, s)
                if task_loss == "minibatch":
                    return p, s, tf.cast(loss, tf.float32)
                return p, s, problem.objective(hrnn.true_params(config, p, s))

            params, state, f = tf.vectorized_map(particle, (perturbed, params, state))
            term = tf.cast(objective_term(f, f_init, meta_objective, loss_clip), tf.float64)
            return (t + 1, delta + (term[:num_pairs] - term[num_pairs:]), sums + term,
                    tf.logical_and(finite, tf.math.is_finite(f)), f, params, state)

        init = (tf.constant(0), tf.zeros([num_pairs], tf.float64), tf.zeros([n], tf.float64), tf.ones([n], tf.bool),
                tf.fill([n], f_init), list(params), dict(state))
        _, delta, sums, finite, f_last, params, state = tf.while_loop(
            lambda t, *_: t < length, body, init, maximum_iterations=max_length)
        for p in params:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(tf.reshape(p, [n, -1])), axis=1))
        return delta, sums, finite, f_last, params, state

    @tf.function(input_signature=[eps_spec, [tf.TensorSpec(s, tf.float32) for s in layout.shapes], scalar(tf.int32)])
    def init_states(eps, params, seed):
        perturbed, frozen = particle_meta(eps)
        return tf.vectorized_map(lambda meta: hrnn.init_state({**frozen, **meta}, config, params, seed), perturbed)

    unroll.init_states = init_states
    unroll.signature = signature
    return unroll


@dataclasses.dataclass
class PESTask:
    """A problem being optimized by a stream's particles; checkpointed by `PESStreams.arrays`."""

    index: int
    seed: int
    problem: object
    horizon: int
    step: int = 0
    f_init: float = 0.0
    ended: bool = False
    params: list = None  # stacked [2N, ...] once the first truncation has run; the initial ones before
    state: dict = None  # stacked [2N, ...]; None until the first truncation
    accum: np.ndarray = None  # [N, D] float32

    @property
    def done(self) -> bool:
        return self.ended or self.step >= self.horizon


class PESStreams:
    """The PES task streams of one worker and their per-meta-step estimate.

    `config` is a `train.trainer.MetaTrainConfig`; this worker runs global streams `first .. first + count - 1`.
    """

    def __init__(self, config, hrnn_config: HRNNConfig, meta_vars: dict, sampler, first: int, count: int,
                 flat: FlatMeta):
        self.config, self.hrnn_config, self.meta_vars, self.sampler = config, hrnn_config, meta_vars, sampler
        self.first, self.flat = first, flat
        self.streams: list[PESTask | None] = [None] * count
        self.next_task = [0] * count
        self._fns = {}  # id(problem) -> (problem, traced program), live tasks' problems only

    def global_stream(self, s: int) -> int:
        return self.first + s

    # -- tasks ----------------------------------------------------------------------------------------------
    def new_task(self, s: int) -> PESTask:
        c = self.config
        index = self.next_task[s]
        self.next_task[s] += 1
        seed = problems.derive_seed(c.seed, 0, self.global_stream(s), index)  # task_seed(seed, 0, stream, index)
        problem = self.sampler.sample(seed)
        horizon, start = sample_schedule(seed, c.pes_min_horizon, c.pes_max_horizon, c.pes_initial_offset,
                                         first=index == 0)
        task = PESTask(index, seed, problem, horizon, step=start)
        task.params = problem.init_params(problems.derive_seed(seed, 1))
        task.f_init = float(problem.objective(task.params))
        return task

    def _fn(self, task: PESTask):
        """The traced program of the task's problem (shared by tasks of the same problem object)."""
        key = id(task.problem)
        if key not in self._fns:
            live = {id(t.problem) for t in self.streams if t is not None}
            self._fns = {k: v for k, v in self._fns.items() if k in live}  # drop finished problems' traces
            c = self.config
            fn = make_pes_unroll(task.problem, self.hrnn_config, self.meta_vars, self.flat, c.pes_pairs,
                                 c.pes_truncation, c.meta_objective, c.objective_clip, c.jit_compile,
                                 c.pes_task_loss)
            self._fns[key] = (task.problem, fn)  # the problem stays alive while its id is a key
        return self._fns[key][1]

    # -- one truncation on every stream ------------------------------------------------------------------------
    def estimate(self, meta_step: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """One truncation on each stream. Returns per stream the mean over its finite pairs of ĝ_i (float32
        [count, D], zero for a stream without one), whether it had one [count], and logging values."""
        c = self.config
        num_pairs, d = c.pes_pairs, self.flat.size
        rows, used = np.zeros([len(self.streams), d], np.float32), np.zeros(len(self.streams), bool)
        info = {"losses": [], "families": [], "inner_steps": 0, "dropped": 0, "ended": 0, "grad_norms": [],
                "pair_gradients": []}
        for s in range(len(self.streams)):
            if self.streams[s] is None or self.streams[s].done:
                self.streams[s] = self.new_task(s)
            task = self.streams[s]
            fn = self._fn(task)
            eps = perturbations(c.seed, meta_step, self.global_stream(s), num_pairs, d, c.pes_std)
            if task.state is None:  # the task's first truncation: fresh states, fresh accumulators
                task.state = fn.init_states(eps, task.params, problems.derive_seed(task.seed, 2))
                task.params = [tf.tile(p[None], [2 * num_pairs] + [1] * len(p.shape)) for p in task.params]
                task.accum = np.zeros([num_pairs, d], np.float32)
            length = min(c.pes_truncation, task.horizon - task.step)
            delta, sums, finite, f_last, params, state = fn(
                eps, task.params, task.state, tf.constant(task.f_init, tf.float32), tf.constant(task.step, tf.int32),
                tf.constant(length, tf.int32), tf.constant(task.seed, tf.int32))
            task.accum = task.accum + eps
            task.params, task.state = params, state
            task.step += length
            finite, sums, f_last = finite.numpy(), sums.numpy(), f_last.numpy()
            ok = finite[:num_pairs] & finite[num_pairs:]
            grads = pair_gradients(delta.numpy(), task.accum, c.pes_std, c.pes_truncation)
            info["pair_gradients"].append(np.where(ok[:, None], grads, np.nan))
            info["dropped"] += 2 * int(np.sum(~ok))
            if ok.any():
                row = grads[ok].mean(0)
                norm = float(np.linalg.norm(row))
                info["grad_norms"].append(norm)
                if c.stream_clip_norm > 0 and norm > c.stream_clip_norm:
                    row = row * (c.stream_clip_norm / norm)
                rows[s], used[s] = row.astype(np.float32), True
            both = np.concatenate([ok, ok])
            info["losses"].append(float(np.mean(sums[both]) / length) if ok.any() else float("nan"))
            info["families"].append(task.problem.family)
            info["inner_steps"] += 2 * num_pairs * length
            mult = c.divergence_multiplier
            diverged = mult > 0 and bool(np.any(f_last[both] > mult * (task.f_init + 1e-6)))
            if not ok.all() or diverged:
                task.ended = True
                info["ended"] += 1
        return rows, used, info

    # -- checkpoints ----------------------------------------------------------------------------------------
    def arrays(self) -> dict:
        def describe(task):
            meta = {"index": task.index, "seed": task.seed, "horizon": task.horizon, "step": task.step,
                    "f_init": task.f_init, "ended": task.ended}
            return meta, ({} if task.state is None else {"accum": task.accum})

        return task_files.stream_arrays(self.next_task, self.streams, describe)

    def restore(self, z) -> None:
        self.next_task, streams = task_files.read_streams(z, len(self.streams))
        for s, info, params, state in streams:
            task = PESTask(info["index"], info["seed"], self.sampler.sample(info["seed"]), info["horizon"],
                           info["step"], info["f_init"], info["ended"], params, state)
            if state is not None:
                if not task_files.state_fits(s, state, self.hrnn_config, task.problem.param_shapes,
                                             particles=2 * self.config.pes_pairs):
                    continue  # an older state layout: the stream starts a new task
                task.accum = np.array(z[f"s{s}/accum"])
            self.streams[s] = task
