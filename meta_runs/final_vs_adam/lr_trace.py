"""Loss and log step size (log LR + step offset: mean, max, 99th percentile over parameters) of the pure update
rule every EVERY steps on held-out validation problem INDEX of PROBLEM_SET (seed 1,000,000 + INDEX).

    python meta_runs/final_vs_adam/lr_trace.py nn_no_decay 0 10000 250 [WEIGHTS]
"""
import sys, dataclasses
import numpy as np, tensorflow as tf
sys.path.insert(0, ".")  # run from the repository root
import problems
from lopt_tf import hrnn
from lopt_tf.weights import load_weights
from train.trainer import MetaTrainConfig

pset, idx, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
weights = sys.argv[5] if len(sys.argv) > 5 else "hrnn_v4_x0.03"
meta, config, _ = load_weights(weights)
meta = {k: tf.constant(v) for k, v in meta.items()}
seed = MetaTrainConfig.validation_seed + idx
p = problems.ProblemSampler.named(pset).sample(seed)
params = p.init_params(seed)
state = hrnn.init_state(meta, config, params, seed)
off = float(meta["stepsize_offset"])

@tf.function
def run(params, state, t0):
    def body(t, params, state):
        _, g = p.gradient(params, t, seed)
        params, state = hrnn.step(meta, config, params, g, state)
        return t + 1, params, state
    _, params, state = tf.while_loop(lambda t, *_: t < t0 + every, body, (t0, params, state))
    return params, state

print(p.name, "offset", off)
for k in range(steps // every):
    params, state = run(params, state, tf.constant(k * every))
    lr = state["log_lr"].numpy() + off
    print((k + 1) * every, "loss %.3g" % float(p.objective(params)), "log step mean %.2f max %.2f p99 %.2f" % (lr.mean(), lr.max(), np.percentile(lr, 99)), flush=True)
