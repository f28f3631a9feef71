"""Checkpoint arrays of the meta-trainers' task streams (TBPTT's `Task`s and PES's `PESTask`s).

A task file holds `next_task` (the next task index of every stream) and, per stream `s` with a task, its JSON
description `s{s}/meta`, its parameters `s{s}/param{i}` and its optimizer state `s{s}/state/{name}` (absent
before a PES task's first truncation). The estimators decide what the description holds and what else a stream
keeps (`extra`: PES's accumulators).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import tensorflow as tf

from lopt_tf import hrnn
from lopt_tf.layout import Layout


def stream_arrays(next_task, streams, describe) -> dict:
    """The arrays of `streams` (a task or None each); `describe(task)` gives its JSON-able description and, as
    the second item, a dict of extra arrays to keep under `s{s}/`."""
    arrays = {"next_task": np.array(next_task, np.int64)}
    for s, task in enumerate(streams):
        if task is None:
            continue
        meta, extra = describe(task)
        arrays[f"s{s}/meta"] = np.array(json.dumps({**meta, "family": task.problem.family}))
        for i, p in enumerate(task.params):
            arrays[f"s{s}/param{i}"] = np.asarray(p)
        for k, v in (task.state or {}).items():
            arrays[f"s{s}/state/{k}"] = np.asarray(v)
        for k, v in extra.items():
            arrays[f"s{s}/{k}"] = np.asarray(v)
    return arrays


def read_streams(z, count: int):
    """(next_task, [(stream, description, params, state or None) ...]) from an open task file `z`, the params
    and state as tensors (extra arrays: `z[f"s{stream}/{name}"]`)."""
    next_task = [int(v) for v in z["next_task"]]
    streams = []
    for s in range(count):
        if f"s{s}/meta" not in z.files:
            continue
        prefix = f"s{s}/"
        info = json.loads(str(z[prefix + "meta"]))
        params, i = [], 0
        while f"{prefix}param{i}" in z.files:
            params.append(tf.constant(z[f"{prefix}param{i}"]))
            i += 1
        state = {k[len(prefix + "state/"):]: tf.constant(z[k]) for k in z.files if k.startswith(prefix + "state/")}
        streams.append((s, info, params, state or None))
    return next_task, streams


def state_fits(stream: int, state: dict, hrnn_config, param_shapes, particles: int | None = None) -> bool:
    """Whether a restored stream's optimizer `state` has the names and shapes the current code makes for a
    problem with `param_shapes` (`hrnn.state_shapes`, with PES's axis of `particles` in front). If not -- a file written with an older state
    layout, e.g. h0, accum, ms as [P, n] before they were stored [n, P] -- warns and returns False: the caller
    then starts a new task on that stream (the meta-parameters and meta-optimizer resume regardless)."""
    lead = () if particles is None else (particles,)
    layout = Layout(tuple(tuple(s) for s in param_shapes))
    expected = {k: lead + tuple(v) for k, v in hrnn.state_shapes(hrnn_config, layout).items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got == expected:
        return True
    differ = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
    warnings.warn(f"Task stream {stream}: the stored optimizer state does not have the current layout "
                  f"({', '.join(f'{k}: {got.get(k)} != {expected.get(k)}' for k in differ)}); the stream starts a "
                  "new task.")
    return False
