"""Interleaved A/B timing of step implementations, in one process: the fair comparison on a shared machine.

Each variant is `name=path/to/hrnn.py` (a file with `hrnn.step`'s module API, e.g. an older version saved
with `git show <commit>:lopt_tf/hrnn.py > /tmp/hrnn_old.py`) or `name=module` (e.g. `lopt_tf.hrnn`), with
optional suffixes `:bfloat16` for bfloat16-stored state and `:padded` for per-parameter buffers padded to a
multiple of 16 rows (`hrnn.init_state(..., pad_to=hrnn.ROW_MULTIPLE)`, as `LearnedOptimizer` stores them),
e.g. `new=lopt_tf.hrnn:bfloat16:padded`, and `:preset=NAME` / `:FIELD=VALUE` for the variant's `HRNNConfig`
(default the 2017 preset; values as `--hrnn` of `train.meta_train`), e.g.
`n4=lopt_tf.hrnn:padded:preset=stable:level_sizes=[4,20,20]`; each variant runs a fresh initialisation of its
config. The variants' compiled steps are called in turn, round after round,
so that a neighbour's load hits all of them alike; prints min and median ms per call.

    python benchmarks/ab_step.py old=/tmp/hrnn_old.py new=lopt_tf.hrnn new_pad=lopt_tf.hrnn:padded \
        [--cases 200,4,17k,200+1] [--modes xla,graph] [--rounds 8]
    python benchmarks/ab_step.py n10=lopt_tf.hrnn:padded:preset=stable \
        n4=lopt_tf.hrnn:padded:preset=stable:level_sizes=[4,20,20] --cases 200 --rounds 12
"""

import argparse
import importlib
import importlib.util
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lopt_tf import HRNNConfig, hrnn  # noqa: E402
from train.meta_train import overrides  # noqa: E402

CASES = {  # as benchmarks/step_overhead.py, and the 17,226-parameter MLP of benchmarks/fit_step.py
    "200": [(100, 100)] * 100 + [(100,)] * 100,
    "4": [(1024, 1024), (1024,), (1024, 1), (1,)],
    "17k": [(64, 128), (128,), (128, 64), (64,), (64, 10), (10,)],
    "200+1": [(100, 100)] * 100 + [(100,)] * 99 + [(101,)],  # 1,010,001: not a multiple of 16
}


def load(spec):
    """(module, init_state keyword arguments, config) of a variant
    `path.py|module[:bfloat16][:padded][:preset=NAME][:FIELD=VALUE...]`."""
    source, *options = spec.split(":")
    kwargs, preset, fields = {}, "2017", []
    for option in options:
        if option.startswith("preset="):
            preset = option.partition("=")[2]
        elif "=" in option:
            fields.append(option)
        elif option == "padded":
            kwargs["pad_to"] = hrnn.ROW_MULTIPLE
        else:
            kwargs["state_dtype"] = option
    if source.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location(f"ab_{abs(hash(source))}", source)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(source)
    return module, kwargs, overrides(HRNNConfig, fields, base=HRNNConfig.preset(preset))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="name=path.py|module[:bfloat16][:padded]")
    parser.add_argument("--cases", default="200,4,17k")
    parser.add_argument("--modes", default="xla")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    variants = {v.split("=", 1)[0]: load(v.split("=", 1)[1]) for v in args.variants}
    print(f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds")
    print("| case | params | mode | " + " | ".join(f"{k} min / median ms" for k in variants) + " |")
    print("|---|---|---|" + "---|" * len(variants))
    rng = np.random.default_rng(0)
    for case in args.cases.split(","):
        shapes = CASES[case]
        params = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        for mode in args.modes.split(","):
            fns = {}
            for name, (module, kwargs, config) in variants.items():
                meta = hrnn.init_meta(config)
                state = module.init_state(meta, config, params, **kwargs)  # its own state layout
                fns[name] = tf.function(
                    lambda m=module, s=state, c=config, w=meta: m.step(w, c, params, grads, s),
                    jit_compile=mode == "xla")
                tf.nest.map_structure(np.asarray, fns[name]())  # trace + compile
            times = {k: [] for k in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    start = time.perf_counter()
                    tf.nest.map_structure(np.asarray, fn())
                    times[name].append(time.perf_counter() - start)
            n = sum(int(np.prod(s)) for s in shapes)
            cells = " | ".join(f"{min(t) * 1e3:.1f} / {np.median(t) * 1e3:.1f}" for t in times.values())
            print(f"| {case} | {n:,} | {mode} | {cells} |", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
