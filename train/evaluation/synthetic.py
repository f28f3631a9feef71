"""Experiments on held-out problems of the meta-training distribution: wins against tuned baselines (paper
Fig. 3), learning-rate robustness (Fig. 5), ablations (Fig. 6), and the steps tuned Adam needs (speedup)."""

from __future__ import annotations

import math

import keras
import numpy as np

import problems
from train.evaluation import plots
from train.evaluation.optimizers import BASELINES, LABELS, OptimizerSpec, resolve_weights
from train.evaluation.runs import final_loss, run_synthetic, steps_to_reach, summarize
from train.evaluation.tuning import half_decades, tune

def held_out_problems(ctx):
    """The first `count` distinct problems drawn from seeds `ctx.first_problem_seed` + 0, 1, 2, ...

    The test problems start at seed 2,000,000 (meta-training draws task seeds by hashing; validation uses
    1,000,000 + i). Distinct by name: a repeated draw would count twice in the win fraction, and the run cache
    is keyed by name. Names in `ctx.exclude_problems` are skipped.
    """
    problem_set = ctx.size("no_large", "default")
    count = ctx.size(4, 40)
    items, names = [], set(ctx.exclude_problems)
    first = ctx.first_problem_seed
    for seed in range(first, first + 100 * count):
        problem = problems.sample(seed, problem_set)
        if problem.name not in names:
            names.add(problem.name)
            items.append(problem)
            if len(items) == count:
                return items
    raise ValueError(f"problem set {problem_set!r} gave fewer than {count} distinct problems")


def cached_runner(ctx, problem, steps, record_every):
    """`run(spec, seed) -> curve` of `problem` for `steps` steps, cached in `ctx.cache` (keyed by problem name)."""
    def run(spec: OptimizerSpec, seed: int = 0):
        key = {"exp": "synthetic", "problem": problem.name, "family": problem.family, "steps": steps,
               "record_every": record_every, "seed": seed, "spec": spec.key()}
        return ctx.cache.get_or_run(key, lambda: run_synthetic(problem, spec, steps, seed, record_every))
    return run


def compare_on_problem(ctx, problem, weights=None):
    """Learned optimizer (untuned) and the three tuned baselines on one problem, at every seed."""
    steps, every = ctx.size(100, 1000), ctx.size(10, 50)
    run = cached_runner(ctx, problem, steps, every)
    grid = half_decades(-3, -1) if ctx.quick else half_decades(-4, 0)
    out = {"learned": summarize([run(OptimizerSpec("learned", weights=weights or ctx.weights), s) for s in ctx.seeds])}
    for kind in BASELINES:
        best, _ = tune(kind, run, grid)
        out[kind] = {**summarize([run(OptimizerSpec(kind, learning_rate=best), s) for s in ctx.seeds]), "lr": best}
    return out


def _learned_wins(row, kind: str) -> bool:
    """The learned optimizer's mean final loss is strictly below baseline `kind`'s (an equal loss is no win)."""
    return row["learned"]["final_mean"] < row[kind]["final_mean"]


def win_fractions(rows) -> dict[str, float]:
    """Per baseline, the fraction of rows the learned optimizer wins."""
    return {k: float(np.mean([_learned_wins(r, k) for r in rows])) for k in BASELINES}


def meta_distribution(ctx) -> dict:
    """Experiment 1: fraction of held-out problems where the learned optimizer beats each tuned baseline."""
    items = held_out_problems(ctx)
    bar = keras.utils.Progbar(len(items), verbose=ctx.verbose, unit_name="problem")
    rows = []
    for i, problem in enumerate(items):
        res = compare_on_problem(ctx, problem)
        rows.append({"problem": problem.name, "family": problem.family, **res})
        bar.update(i + 1)
    wins = win_fractions(rows)
    # Equal final losses (both stuck at the same value, or both exactly 0) are not wins; counted to show how many.
    ties = {k: sum(r["learned"]["final_mean"] == r[k]["final_mean"] for r in rows) for k in BASELINES}
    table = "| baseline (tuned lr) | learned optimizer wins | equal final loss (not a win) |\n|---|---|---|\n"
    table += "".join(
        f"| {LABELS[k]} | {wins[k]:.0%} ({sum(_learned_wins(r, k) for r in rows)}/{len(rows)}) | {ties[k]} |\n"
        for k in BASELINES)
    detail = "| problem | family | learned | " + " | ".join(f"{LABELS[k]} (lr)" for k in BASELINES) + " |\n"
    detail += "|---|---|---|" + "---|" * len(BASELINES) + "\n"
    for r in rows:
        detail += f"| {r['problem']} | {r['family']} | {r['learned']['final_mean']:.3g} | " + " | ".join(
            f"{r[k]['final_mean']:.3g} ({r[k]['lr']:.2g})" for k in BASELINES) + " |\n"
    plots.win_scatter(rows, ctx.figure("exp1_meta_distribution"))
    return {"wins": wins, "ties": ties, "rows": rows, "tables": [table, detail],
            "figures": ["exp1_meta_distribution.png"]}


def learned_at_lr(weights: str, lr: float) -> OptimizerSpec:
    """The learned optimizer started at learning rate `lr`, for experiment 4's sweep: the initial per-parameter
    learning rate of a design that draws them (2017: `init_lr="random"`, the paper's Fig. 5), or the whole step
    scaled so that its anchor is `lr` (`learning_rate` = lr / lr_anchor) for one whose initial step is fixed
    (`init_lr="fixed"`: there the initial learning rate is not a setting, the step multiplier is)."""
    _, config, _ = resolve_weights(weights)
    if config.init_lr == "fixed":
        return OptimizerSpec("learned", weights=weights, learning_rate=lr / config.lr_anchor)
    return OptimizerSpec("learned", weights=weights, init_lr=lr)


def lr_robustness(ctx) -> dict:
    """Experiment 4: final loss over learning rates 1e-6 .. 1e-1 (learned: `learned_at_lr`; Adam, RMSProp: their
    learning rate); spread = standard deviation over the sweep of log10(final loss), averaged over problems."""
    lrs = [10.0 ** e for e in range(-6, 0)]
    items = held_out_problems(ctx)[: ctx.size(3, 10)]
    steps, every = ctx.size(100, 1000), ctx.size(10, 50)
    curves = {k: [] for k in ("learned", "adam", "rmsprop")}
    bar = keras.utils.Progbar(len(items), verbose=ctx.verbose, unit_name="problem")
    for i, problem in enumerate(items):
        run = cached_runner(ctx, problem, steps, every)
        for kind in curves:
            specs = [learned_at_lr(ctx.weights, lr) if kind == "learned" else OptimizerSpec(kind, learning_rate=lr)
                     for lr in lrs]
            finals = [np.mean([final_loss(run(s, seed)) for seed in ctx.seeds]) for s in specs]
            curves[kind].append([float(f) for f in finals])
        bar.update(i + 1)

    def spread(rows):
        return float(np.mean([np.std(np.log10(np.maximum(np.minimum(r, 1e30), 1e-30))) for r in rows]))

    spreads = {k: spread(v) for k, v in curves.items()}
    table = "| optimizer | spread of log10(final loss) over lr 1e-6..1e-1 (lower = more robust) |\n|---|---|\n"
    table += "".join(f"| {LABELS[k]} | {spreads[k]:.3f} |\n" for k in curves)
    plots.lr_sweep(lrs, curves, [p.name for p in items], ctx.figure("exp4_lr_robustness"))
    return {"learning_rates": lrs, "finals": curves, "spread": spreads, "tables": [table],
            "figures": ["exp4_lr_robustness.png"]}


def ablations(ctx) -> dict:
    """Experiment 5: several weight sets (one per feature switched off) on the held-out problems."""
    sets = {"default": ctx.weights, **ctx.ablation_weights}
    items = held_out_problems(ctx)
    steps, every = ctx.size(100, 1000), ctx.size(10, 50)
    finals = {name: [] for name in sets}
    for problem in items:
        run = cached_runner(ctx, problem, steps, every)
        for name, weights in sets.items():
            finals[name].append(float(np.mean([final_loss(run(OptimizerSpec("learned", weights=weights), s))
                                               for s in ctx.seeds])))
    base = np.array(finals["default"])
    table = "| weight set | mean log10(final loss) | beats default on |\n|---|---|---|\n"
    for name, values in finals.items():
        v = np.array(values)
        table += f"| {name} | {np.mean(np.log10(np.maximum(v, 1e-30))):.3f} | {np.mean(v < base):.0%} |\n"
    if not ctx.ablation_weights:
        table += "\n(No ablation weight sets were given: pass --ablation_weights name=path,...)\n"
    plots.ablation_bars(finals, ctx.figure("exp5_ablations"))
    return {"finals": finals, "tables": [table], "figures": ["exp5_ablations.png"]}


def speedup_rows(ctx, rows):
    """Experiment 7 rows: steps tuned Adam needs to reach the learned optimizer's final loss / learned steps."""
    out = []
    for r in rows:
        target = r["learned"]["final_mean"]
        adam = {"steps": r["adam"]["steps"], "losses": r["adam"]["curve_mean"]}
        reached = steps_to_reach(adam, target) if math.isfinite(target) else None
        total = r["learned"]["steps"][-1]
        out.append({"problem": r["problem"], "speedup": None if reached is None else reached / total})
    return out
