"""Interleaved timing of the level-0 GRU cell and its readouts in two layouts, XLA on CPU.

(a) parameter-major, as `hrnn._bias_gru` and the readouts of `hrnn._per_parameter`: `[P, F] @ [F, 3H]`, the
elementwise ops on `[P, 2H]` / `[P, H]`; (b) feature-major: `[3H, F] @ [F, P]`, elementwise ops on `[H, P]`,
inputs and state stored `[F, P]` / `[H, P]`; (c) state and inputs stored `[P, ...]` as in (a), transposed to
feature-major inside the function and the new state back; (d) inputs feature-major, the state stored
`[P, H]` and transposed in and out. Prints min / median ms per call.

    python benchmarks/gru_layout.py [--sizes 17226,1000000] [--rounds 8]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

F, H, K, HEADS = 12, 10, 4, 4  # features, level-0 units, gradient scales, readout heads (default config)


def param_major(w, x, h, m, ok, ids, bias_t):
    gk, ck, heads, shortcut = w["gk"], w["ck"], w["heads"], w["shortcut"]
    gate_bias, cand_bias = tf.gather(bias_t[:, : 2 * H], ids), tf.gather(bias_t[:, 2 * H:], ids)
    xz = tf.matmul(x, tf.concat([gk[:F], ck[:F]], 1))
    gates = tf.sigmoid(xz[:, : 2 * H] + gate_bias + tf.matmul(h, gk[F:]))
    r, u = gates[:, :H], gates[:, H:]
    c = tf.tanh(xz[:, 2 * H:] + cand_bias + tf.matmul(r * h, ck[F:]))
    h0 = tf.where(ok[:, None], u * h + (1.0 - u) * c, h)
    readouts = tf.matmul(h0, heads)
    d = readouts[:, 0] + tf.linalg.matvec(m, shortcut)
    return h0, d, readouts[:, 1], readouts[:, 2], readouts[:, 3]


def feature_major(w, x_t, h_t, m_t, ok, ids, bias_t):
    """x_t [F, P], h_t [H, P], m_t [K, P]: the same math with the parameter as the innermost dimension."""
    gk, ck, heads, shortcut = w["gk"], w["ck"], w["heads"], w["shortcut"]
    bias_ft = tf.transpose(bias_t)  # [3H, T]
    gate_bias, cand_bias = tf.gather(bias_ft[: 2 * H], ids, axis=1), tf.gather(bias_ft[2 * H:], ids, axis=1)
    xz = tf.matmul(tf.concat([gk[:F], ck[:F]], 1), x_t, transpose_a=True)  # [3H, P]
    gates = tf.sigmoid(xz[: 2 * H] + gate_bias + tf.matmul(gk[F:], h_t, transpose_a=True))
    r, u = gates[:H], gates[H:]
    c = tf.tanh(xz[2 * H:] + cand_bias + tf.matmul(ck[F:], r * h_t, transpose_a=True))
    h0 = tf.where(ok[None], u * h_t + (1.0 - u) * c, h_t)
    readouts = tf.matmul(heads, h0, transpose_a=True)  # [4, P]
    d = readouts[0] + tf.linalg.matvec(m_t, shortcut, transpose_a=True)
    return h0, d, readouts[1], readouts[2], readouts[3]


def transposed(w, x, h, m, ok, ids, bias_t):
    h0, *rest = feature_major(w, tf.transpose(x), tf.transpose(h), tf.transpose(m), ok, ids, bias_t)
    return (tf.transpose(h0), *rest)


def state_transposed(w, x_t, h, m_t, ok, ids, bias_t):
    """(d): the inputs feature-major (as if built so from the momenta), only the state [P, H] transposed."""
    h0, *rest = feature_major(w, x_t, tf.transpose(h), m_t, ok, ids, bias_t)
    return (tf.transpose(h0), *rest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="17226,1000000")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    w = {"gk": rng.normal(0, 0.3, (F + H, 2 * H)), "ck": rng.normal(0, 0.3, (F + H, H)),
         "heads": rng.normal(0, 0.3, (H, HEADS)), "shortcut": rng.normal(0, 0.3, (K,))}
    w = {k: tf.constant(v, tf.float32) for k, v in w.items()}
    for p in (int(s) for s in args.sizes.split(",")):
        t = 6 if p < 100_000 else 200
        x = tf.constant(rng.normal(size=(p, F)), tf.float32)
        h = tf.constant(rng.uniform(-1, 1, (p, H)), tf.float32)
        m = x[:, :K]
        ok = tf.constant(rng.uniform(size=p) < 0.95)
        ids = tf.constant(np.sort(rng.integers(0, t, p)), tf.int32)
        bias_t = tf.constant(rng.normal(size=(t, 3 * H)), tf.float32)
        args_pm = (w, x, h, m, ok, ids, bias_t)
        args_fm = (w, tf.transpose(x), tf.transpose(h), tf.transpose(m), ok, ids, bias_t)
        fns = {"a_param_major": (tf.function(param_major, jit_compile=True), args_pm),
               "b_feature_major": (tf.function(feature_major, jit_compile=True), args_fm),
               "c_transposed": (tf.function(transposed, jit_compile=True), args_pm),
               "d_state_transposed": (tf.function(state_transposed, jit_compile=True),
                                      (w, tf.transpose(x), h, tf.transpose(m), ok, ids, bias_t))}
        ref = [v.numpy() for v in fns["a_param_major"][0](*args_pm)]
        for name, (fn, a) in fns.items():  # compile, check the same math
            out = [v.numpy() for v in fn(*a)]
            if name == "b_feature_major":
                out[0] = out[0].T
            err = max(float(np.max(np.abs(o - r))) for o, r in zip(out, ref))
            print(f"P={p} {name}: max abs diff vs (a) {err:.2e}")
        reps = 20 if p < 100_000 else 2
        times = {name: [] for name in fns}
        for _ in range(args.rounds):
            for name, (fn, a) in fns.items():
                start = time.perf_counter()
                for _ in range(reps):
                    out = fn(*a)
                out[1].numpy()
                times[name].append((time.perf_counter() - start) / reps * 1e3)
        base = min(times["a_param_major"])
        for name, ts in times.items():
            print(f"P={p} {name}: min {min(ts):.3f} ms  median {np.median(ts):.3f} ms  min/a {min(ts) / base:.2f}")


if __name__ == "__main__":
    main()
