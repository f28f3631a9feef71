"""Peak memory and time of one `lopt_tf.hrnn.step` against the chunk size of the per-parameter RNN.

For a flat model of P parameters in 4 tensors, each configuration runs in its own process (so the peak
resident set size, ru_maxrss, is its own): a `tf.function` of `hrnn.step` with `chunk_size` None (the whole
buffer at once) or a number of parameters per chunk. Reports the first call (trace + compile), the mean of the
following calls and the peak RSS, with ratios against the unchunked step measured the same way.

    python benchmarks/step_memory.py [--params 4000000,8000000] [--chunks none,4194304,1048576,262144] [--xla]
"""

import argparse
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(num_params: int, chunk_size, xla: bool, repeats: int) -> tuple[float, float, float]:
    """(first call s, mean step s, peak RSS GB) of this process."""
    import tensorflow as tf

    from lopt_tf import hrnn
    from lopt_tf.config import HRNNConfig

    config = HRNNConfig()
    meta = hrnn.init_meta(config)
    shapes = [(num_params // 4 - 100,), (100,), (num_params // 2,), (num_params - 3 * (num_params // 4),)]
    params = [tf.random.normal(s, seed=1) for s in shapes]
    grads = [tf.random.normal(s, seed=2) for s in shapes]
    state = hrnn.init_state(meta, config, params)
    fn = tf.function(lambda p, g, s: hrnn.step(meta, config, p, g, s, chunk_size=chunk_size), jit_compile=xla)
    start = time.perf_counter()
    out = fn(params, grads, state)
    out[0][0].numpy()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(params, grads, state)
    out[0][0].numpy()
    step = (time.perf_counter() - start) / repeats
    return first, step, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="4000000,8000000", help="Comma-separated parameter counts.")
    parser.add_argument("--chunks", default="none,4194304,1048576,262144", help="Chunk sizes ('none': unchunked).")
    parser.add_argument("--xla", action="store_true", help="Compile the step with XLA.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        p, c = args.child
        print(*measure(int(p), None if c == "none" else int(c), args.xla, args.repeats))
        return
    print(f"hrnn.step, {'XLA' if args.xla else 'graph'}, {args.repeats} steps after the first\n")
    print("| parameters | chunk size | first call (s) | ms / step | peak RSS (GB) | time vs unchunked | RSS vs unchunked |")
    print("|---|---|---|---|---|---|---|")
    for p in args.params.split(","):
        base = None
        for c in args.chunks.split(","):
            cmd = [sys.executable, __file__, "--child", p, c, "--repeats", str(args.repeats)] + (["--xla"] if args.xla else [])
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
            if out.returncode:
                print(f"| {p} | {c} | failed: {out.stderr.strip().splitlines()[-1:]} |||||")
                continue
            first, step, rss = map(float, out.stdout.split()[-3:])
            if c == "none":
                base = (step, rss)
            ratio = f"{step / base[0]:.2f} | {rss / base[1]:.2f}" if base else "- | -"
            print(f"| {int(p):,} | {c} | {first:.1f} | {step * 1e3:.0f} | {rss:.2f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
