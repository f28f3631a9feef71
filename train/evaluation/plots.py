"""Matplotlib figures of the evaluation: labelled axes, log scales where losses span decades, legends that
name each baseline's tuned learning rate."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from train.evaluation.optimizers import BASELINES, LABELS  # noqa: E402


def _clean(values):
    return np.array([v if math.isfinite(v) and v > 0 else np.nan for v in values], dtype=np.float64)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def win_scatter(rows, path):
    fig, ax = plt.subplots(figsize=(6, 5.5))
    lo, hi = np.inf, -np.inf
    for kind, marker in zip(BASELINES, "os^"):
        x = _clean([r[kind]["final_mean"] for r in rows])
        y = _clean([r["learned"]["final_mean"] for r in rows])
        wins = int(np.sum(y < x))
        ax.scatter(x, y, marker=marker, alpha=0.7, label=f"{LABELS[kind]} (lr tuned per problem): learned wins "
                                                         f"{wins}/{len(rows)}")
        both = np.concatenate([x, y])
        lo, hi = min(lo, np.nanmin(both)), max(hi, np.nanmax(both))
    if math.isfinite(lo) and math.isfinite(hi):
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equal final loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("final loss, tuned baseline")
    ax.set_ylabel("final loss, learned optimizer (below the diagonal = learned wins)")
    ax.set_title("Held-out problems of the meta-training distribution")
    ax.legend(fontsize=7)
    _save(fig, path)


def curves(rows, keys, names, path, ylabel, lr_label="tuned lr"):
    """One panel per row: each optimizer's mean curve; baselines' learning rates named as `lr_label`."""
    cols = min(len(rows), 2)
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        for k in keys:
            if k not in row:
                continue
            label = names[k] + (f" ({lr_label}={row[k]['lr']:.2g})" if k in BASELINES and "lr" in row[k] else "")
            ax.plot(row[k]["steps"], _clean(row[k]["curve_mean"]), label=label)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(row["problem"])
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    _save(fig, path)


def lr_sweep(lrs, finals, problem_names, path):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, rows in finals.items():
        # Normalise per problem by its best value over every optimizer, so problems of any scale average.
        rel = [np.log10(_clean(r)) - np.nanmin([np.nanmin(np.log10(_clean(finals[k][i]))) for k in finals])
               for i, r in enumerate(rows)]
        ax.plot(lrs, np.nanmean(rel, axis=0), marker="o", label=LABELS[kind] + (" (initial lr)" if kind == "learned"
                                                                                  else " (lr)"))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (learned optimizer: initial per-parameter learning rate)")
    ax.set_ylabel("log10 final loss above the best, mean over problems")
    ax.set_title(f"Learning-rate robustness ({len(problem_names)} problems)")
    ax.legend(fontsize=8)
    _save(fig, path)


def ablation_bars(finals, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(finals)
    values = [np.nanmean(np.log10(_clean(finals[n]))) for n in names]
    ax.bar(range(len(names)), values, tick_label=names)
    ax.set_ylabel("mean log10 final loss (lower is better)")
    ax.set_xlabel("weight set")
    ax.set_title("Ablations")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    _save(fig, path)


def wall_clock(batches, times, path):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, label in (("adam", "Adam"), ("learned", LABELS["learned"])):
        ax.plot(batches, np.array(times[kind]) * 1e3, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("time per training step (ms)")
    ax.set_title("MNIST ConvNet: forward + backward + update")
    ax.legend()
    _save(fig, path)
