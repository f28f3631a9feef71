"""Learning-rate tuning of the baselines: a log grid of half-decades, extended until the best is not at an edge.

Selection is by final training loss at the tuning seed; the selected learning rate then runs at every seed.
"""

from __future__ import annotations

import math

from train.evaluation.optimizers import OptimizerSpec
from train.evaluation.runs import final_loss


def half_decades(low_exp: float, high_exp: float) -> list[float]:
    count = int(round((high_exp - low_exp) * 2)) + 1
    return [10.0 ** (low_exp + 0.5 * i) for i in range(count)]


def tune(kind: str, run, grid: list[float], max_extend: int = 6) -> tuple[float, dict[float, dict]]:
    """Best learning rate for optimizer `kind`; `run(spec) -> result` (already cached by the caller).

    The grid grows by half-decades past an edge that holds the best value, at most `max_extend` times; a best
    value still at an edge after that is reported as it is (the caller can see it in the returned runs).
    """
    tried: dict[float, dict] = {}
    grid = sorted(grid)
    for _ in range(max_extend + 1):
        for lr in grid:
            if lr not in tried:
                tried[lr] = run(OptimizerSpec(kind, learning_rate=lr))
        ordered = sorted(tried)
        best = min(ordered, key=lambda lr: (final_loss(tried[lr]), lr))
        if best == ordered[0]:
            grid = [best / math.sqrt(10.0)]
        elif best == ordered[-1]:
            grid = [best * math.sqrt(10.0)]
        else:
            return best, tried
    return best, tried
