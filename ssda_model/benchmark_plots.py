"""Figures of a benchmark: boxplots per method (Fig. 2a style) and few-shot curves (Fig. 3 style)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def boxplots(results: pd.DataFrame, metric: str, path: Path) -> Path:
    """One box per method at the benchmark's most common shot count (3 when present)."""
    shots = 3 if (results["shots"] == 3).any() else int(results["shots"].mode()[0])
    subset = results[results["shots"] == shots]
    methods = list(dict.fromkeys(subset["method"]))
    figure, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 4))
    ax.boxplot([subset.loc[subset["method"] == m, metric].dropna() for m in methods], showmeans=True)
    ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30, ha="right")
    ax.set(
        ylabel=metric.upper(),
        title=f"{metric.upper()} per method, {shots}-shot, {subset['repetition'].nunique()} repetitions",
    )
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def fewshot_curves(results: pd.DataFrame, path: Path) -> Path:
    """Mean AUC ± std against the number of labeled cells per class, one line per method."""
    figure, ax = plt.subplots(figsize=(6, 4))
    for method, group in results.groupby("method", sort=False):
        stats = group.groupby("shots")["auc"].agg(["mean", "std"]).fillna(0)
        ax.plot(stats.index, stats["mean"], marker="o", label=method)
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.15)
    ax.set(xlabel="labeled target cells per class", ylabel="AUC", title="Few-shot curves")
    ax.legend(fontsize=7)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
