"""Problems for meta-training and evaluating learned optimizers.

* `problems.base`: the `Problem` interface (init_params / objective / gradient) and seeding helpers.
* Synthetic meta-training problems: `quadratics`, `functions2d`, `classification`, `matmul`, `transforms`.
* `problems.user_like`: small MLPs, ConvNets (plain, BatchNorm, LayerNorm) and RNNs on freshly sampled data.
* `problems.problem_sets`: the meta-training distribution as data (`Family`, `ProblemSampler`, `sample`).
* Evaluation problems on real data (imported lazily, they pull in Keras / tfds): `problems.mnist`,
  `problems.imagenet`, and `problems.keras_problem` (any Keras model as a pure problem via `stateless_call`).

This package never imports `lopt_tf` or `train`.
"""

from problems.base import Problem, derive_seed, make_key, split_key, validate, value_and_grad
from problems.classification import ConvClassifier, MLPClassifier, SoftmaxRegression
from problems.functions2d import FUNCTIONS, Function2D
from problems.matmul import MatMulAlgorithm
from problems.problem_sets import PROBLEM_SETS, Family, ProblemSampler, families, sample
from problems.quadratics import Bowl, Norm, Quadratic
from problems.transforms import LogObjective, Noisy, Oscillating, Reparam, Rescale, ScaleInit, Slow, Sparse, Sum
from problems.user_like import FreshConvNet, FreshMLP, FreshRNN

__all__ = [
    "Problem", "derive_seed", "make_key", "split_key", "validate", "value_and_grad",
    "ConvClassifier", "MLPClassifier", "SoftmaxRegression", "FUNCTIONS", "Function2D", "MatMulAlgorithm",
    "PROBLEM_SETS", "Family", "ProblemSampler", "families", "sample",
    "Bowl", "Norm", "Quadratic", "LogObjective", "Noisy", "Oscillating", "Rescale", "Slow", "Sparse", "Sum",
    "Reparam", "ScaleInit", "FreshConvNet", "FreshMLP", "FreshRNN",
]
