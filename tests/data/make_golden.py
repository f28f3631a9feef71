"""Golden outputs of `lopt_tf.hrnn.step`, pinned by `tests/test_hrnn.py::test_step_matches_golden_outputs`.

For each case below (an `HRNNConfig`, step options and a set of parameter shapes) it runs three steps from
`init_state` on fixed inputs -- meta-parameters and gradients drawn with numpy from fixed seeds, one tensor
whose gradient is always zero in some coordinates (`hold_without_gradient`), a NaN gradient in one tensor at
the second step and, in some cases, an inactive tensor at the third -- and saves the new parameters and every
state tensor after the third step into `golden_step.npz` (keys `<case>/param<i>`, `<case>/state/<key>`, with
the per-parameter buffers parameter-major, [P, ...], the file's layout; `init_state` stores h0, accum and ms
as [n, P], which `to_file` and `from_file` transpose).

The file pins the math of the step while its implementation changes: regenerate it only for a deliberate
change of the update rule, never to make a faster implementation pass.

    python tests/data/make_golden.py          # writes tests/data/golden_step.npz
"""

import dataclasses
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from lopt_tf import hrnn  # noqa: E402
from lopt_tf.config import HRNNConfig  # noqa: E402

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_step.npz")
SHAPES = [(7, 5), (5,), (), (0,), (13,), (3, 3, 2)]
ONE_TENSOR = [(37,)]
STEPS = 3
D = HRNNConfig()

# name -> (config, step keyword arguments, shapes, dtype, inactive tensor at the third step or None)
CASES = {
    "default": (D, {}, SHAPES, "float32", None),
    "default_inactive": (D, {}, SHAPES, "float32", 1),
    "default_one_tensor": (D, {}, ONE_TENSOR, "float32", None),
    "default_float64": (D, {}, SHAPES, "float64", None),
    "default_chunked": (D, {"chunk_size": 16}, SHAPES, "float32", 1),
    "default_one_tensor_chunked": (D, {"chunk_size": 16}, ONE_TENSOR, "float32", None),
    "attention": (dataclasses.replace(D, use_attention=True), {}, SHAPES, "float32", 1),
    "attention_chunked": (dataclasses.replace(D, use_attention=True), {"chunk_size": 16}, SHAPES, "float32", None),
    "one_timescale": (dataclasses.replace(D, num_gradient_scales=1), {}, SHAPES, "float32", None),
    "level_10": (dataclasses.replace(D, level_sizes=(10,)), {}, SHAPES, "float32", 1),
    "level_10_chunked": (dataclasses.replace(D, level_sizes=(10,)), {"chunk_size": 16}, SHAPES, "float32", None),
    "level_10_20": (dataclasses.replace(D, level_sizes=(10, 20)), {}, SHAPES, "float32", 1),
    "no_dynamic_output_scale": (
        dataclasses.replace(D, dynamic_output_scale=False, use_relative_lr=False), {}, SHAPES, "float32", None),
    "fixed_decay": (dataclasses.replace(D, learnable_decay=False), {}, SHAPES, "float32", None),
    "last_tensor": (dataclasses.replace(D, global_input="last_tensor"), {}, SHAPES, "float32", None),
    "no_hold": (dataclasses.replace(D, hold_without_gradient=False), {}, SHAPES, "float32", None),
    "tensor_lr_mean": (dataclasses.replace(D, use_problem_lr_mean=False), {"chunk_size": 16}, SHAPES, "float32", 1),
    "other_switches": (dataclasses.replace(
        D, num_gradient_scales=3, dynamic_input_scaling=False, use_grad_products=False, use_extreme_indicator=True,
        use_lr_shortcut=True, use_gradient_shortcut=False, use_multiple_scale_decays=True), {}, SHAPES, "float32",
        None),
    "no_log_means_squared_attention": (dataclasses.replace(
        D, use_log_means_squared=False, use_attention=True, use_gradient_shortcut=False, level_sizes=(6, 5)), {},
        SHAPES, "float32", None),
}


def to_file(key, value):
    """A state buffer in the file's layout: h0, accum, ms [n, P] (as `init_state` stores them) -> [P, n]."""
    return np.transpose(value) if key in hrnn.FEATURE_MAJOR_KEYS else value


def from_file(key, value):
    """A state buffer from the file in the layout `init_state` stores: h0, accum, ms [P, n] -> [n, P]."""
    return np.transpose(value) if key in hrnn.FEATURE_MAJOR_KEYS else value


def meta_for(config, seed=1):
    """The initial meta-parameters with every weight perturbed, so that every input reaches the outputs."""
    rng = np.random.default_rng(seed)
    meta = hrnn.init_meta_numpy(config, seed)
    return {k: (v + 0.3 * rng.normal(size=v.shape)).astype(np.float32) for k, v in meta.items()}


def run_case(name, step=None, init_state=None):
    """New parameters and state (numpy) after STEPS steps of `step` (default `hrnn.step`) for case `name`."""
    step = hrnn.step if step is None else step
    init_state = hrnn.init_state if init_state is None else init_state
    config, kwargs, shapes, dtype, inactive = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    meta = {k: tf.constant(v) for k, v in meta_for(config).items()}
    params = [tf.constant(rng.normal(size=s), dtype) for s in shapes]
    state = init_state(meta, config, params, 3)
    if dtype != "float32":
        state = {k: tf.cast(v, dtype) if v.dtype.is_floating else v for k, v in state.items()}
    scales = 10.0 ** rng.uniform(-3, 1, len(shapes))
    for it in range(STEPS):
        grads = [rng.normal(size=s) * c for s, c in zip(shapes, scales)]
        if len(shapes) > 1:
            grads[0].reshape(-1)[[1, 4, 9]] = 0.0  # never a gradient there: held (hold_without_gradient)
            if it == 1:
                grads[4].reshape(-1)[2] = np.nan  # skipped tensor
        active = None
        if inactive is not None and it == STEPS - 1:
            active = [i != inactive for i in range(len(shapes))]
            grads[inactive] = np.zeros(shapes[inactive])
        grads = [tf.constant(g, dtype) for g in grads]
        params, state = step(meta, config, params, grads, state, active=active, **kwargs)
    return [p.numpy() for p in params], {k: v.numpy() for k, v in state.items()}


def main():
    out = {}
    for name in CASES:
        params, state = run_case(name)
        out.update({f"{name}/param{i}": p for i, p in enumerate(params)})
        out.update({f"{name}/state/{k}": to_file(k, v) for k, v in state.items()})
    np.savez_compressed(PATH, **out)
    print(f"wrote {PATH}: {len(CASES)} cases, {os.path.getsize(PATH):,} bytes")


if __name__ == "__main__":
    main()
