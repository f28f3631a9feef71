"""Untrained stability check: a config's fresh initialisation (or a weights file) against Adam(1e-3) on the
evaluation's MNIST networks, full-training-set loss every EVERY steps (the evaluation's `run_keras` protocol).

    python benchmarks/stable_mnist_check.py ARCH ACT STEPS EVERY SEED VARIANT [VARIANT ...]

VARIANT: "adam", a weights name or path ("w:NAME"), or a preset with overrides ("stable",
"stable:stepsize_offset_init=-2.3,nominal_term=scaled_momentum"). One JSON line per run on stdout.
Nothing here is meta-training: the initialisations are fixed before these runs.
"""
import json
import math
import sys
import time

sys.path.insert(0, ".")  # run from the repository root
import keras  # noqa: E402

import lopt_tf  # noqa: E402
from problems import mnist  # noqa: E402


def parse_config(variant):
    name, _, rest = variant.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        k, v = item.split("=")
        try:
            overrides[k] = float(v) if any(c in v for c in ".e") or v.lstrip("-").isdigit() else v
        except ValueError:
            overrides[k] = v
        if v in ("True", "False"):
            overrides[k] = v == "True"
    return lopt_tf.HRNNConfig.preset(name, **overrides)


def optimizer(variant, seed):
    if variant == "adam":
        return keras.optimizers.Adam(1e-3)
    if variant.startswith("w:"):
        return lopt_tf.LearnedOptimizer(weights=variant[2:], seed=seed)
    return lopt_tf.LearnedOptimizer(weights=None, hrnn_config=parse_config(variant), seed=seed)


def main():
    arch, act, steps, every, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    data = mnist.load_mnist("idx")
    build = mnist.mnist_mlp_problem if arch == "mlp" else mnist.mnist_convnet_problem
    problem = build(act, data=data, batch_size=64)
    for variant in sys.argv[6:]:
        model = problem.make_model(seed)
        model.compile(optimizer=optimizer(variant, seed), loss=problem.loss_fn())
        train = problem.train_dataset(shuffle_seed=seed).repeat()
        full = problem.train_dataset(shuffle_seed=None, batch_size=1000)
        losses = [float(model.evaluate(full, verbose=0))]
        start = time.perf_counter()
        for _ in range(steps // every):
            model.fit(train, steps_per_epoch=every, epochs=1, verbose=0)
            losses.append(float(model.evaluate(full, verbose=0)))
            if not math.isfinite(losses[-1]):
                break
        print(json.dumps({"problem": problem.name, "seed": seed, "steps": steps, "every": every,
                          "variant": variant, "final": losses[-1], "max": max(losses), "losses": losses,
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
