"""What every experiment needs: sizes (quick or full), seeds, the run cache and the output directory."""

from __future__ import annotations

import dataclasses
import os

from train.evaluation.runs import RunCache

TEST_PROBLEM_SEED = 2_000_000  # the evaluation's synthetic test problems; weight selection uses 1,000,000+


@dataclasses.dataclass
class Context:
    out_dir: str
    quick: bool
    weights: str
    ablation_weights: dict[str, str] = dataclasses.field(default_factory=dict)
    verbose: int = 1
    # Seeds of the synthetic problems (experiments 1, 4, 5): the evaluation's test range starts at 2,000,000;
    # weight selection runs the same experiments on the validation range (1,000,000+), see train.select_weights.
    first_problem_seed: int = TEST_PROBLEM_SEED
    exclude_problems: frozenset = frozenset()  # problem names to skip (selection: the test problems' names)

    def __post_init__(self):
        os.makedirs(self.out_dir, exist_ok=True)
        self.cache = RunCache(os.path.join(self.out_dir, "cache"))

    @property
    def seeds(self) -> list[int]:
        return [0] if self.quick else [0, 1, 2]

    def size(self, quick, full):
        return quick if self.quick else full

    def figure(self, name: str) -> str:
        return os.path.join(self.out_dir, f"{name}.png")
