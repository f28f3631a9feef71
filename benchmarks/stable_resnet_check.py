"""Experiment 3's quick ResNet50V2 check (64x64, 10 classes, tfds mock data, 20 steps, loss every 10) for one
weight set: the loss must stay below 10x the first one (`keras_models.trains_stably`).

    python benchmarks/stable_resnet_check.py WEIGHTS [STEPS EVERY]

WEIGHTS is a weight set (name or .npz path), "adam" (Adam at 1e-3) or "adam:LR".
"""
import json
import sys

sys.path.insert(0, ".")  # run from the repository root
from problems import imagenet  # noqa: E402
from train.evaluation.keras_models import trains_stably  # noqa: E402
from train.evaluation.optimizers import OptimizerSpec  # noqa: E402
from train.evaluation.runs import run_keras  # noqa: E402

weights = sys.argv[1]
steps, every = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (20, 10)
with imagenet.mock_imagenet(num_examples=256, num_classes=10):
    problem = imagenet.small_imagenet_problem("resnet50_v2", image_size=64, num_classes=10, num_examples=256,
                                              batch_size=32)
if weights.split(":")[0] == "adam":
    spec = OptimizerSpec("adam", learning_rate=float(weights.split(":")[1]) if ":" in weights else 1e-3)
else:
    spec = OptimizerSpec("learned", weights=weights)
result = run_keras(problem, spec, steps, 0, every)
print(json.dumps({"problem": problem.name, "weights": weights, "losses": result["losses"],
                  "max_over_first": max(result["losses"]) / result["losses"][0],
                  "stable": trains_stably(result["losses"]), "seconds": round(result["seconds"], 1)}), flush=True)
