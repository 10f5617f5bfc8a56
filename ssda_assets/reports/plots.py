"""Figures for the Dagster UI: PNGs embedded in markdown, one colour per class everywhere."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SENSITIVE, RESISTANT = "#2b7bba", "#d7301f"  # blue / red, in every plot


def to_markdown(figure, title: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return (
        f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})\n"
    )


def score_by_time(frame: pd.DataFrame, order: list[str]) -> str:
    figure, ax = plt.subplots(figsize=(7, 3.5))
    data = [frame.loc[frame["time_point"] == t, "score"].to_numpy() for t in order]
    parts = ax.violinplot([d for d in data if len(d)], showmedians=True)
    for body in parts["bodies"]:
        body.set_facecolor("#9e9ac8")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--", label="decision threshold")
    ax.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right")
    ax.set(xlabel="time point", ylabel="P(sensitive)", title="Score distribution per time point")
    ax.legend(loc="lower left")
    return to_markdown(figure, "Score distribution per time point")


def stacked_response(table: pd.DataFrame) -> str:
    figure, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(table))
    resistant = table["pct_resistant"].to_numpy()
    ax.stackplot(
        x, 100 - resistant, resistant, colors=[SENSITIVE, RESISTANT], labels=["sensitive", "resistant"]
    )
    ax.set_xticks(x, table["time_point"])
    ax.set(xlabel="time point", ylabel="% of cells", ylim=(0, 100), title="Predicted response over time")
    ax.legend(loc="upper left")
    return to_markdown(figure, "Predicted sensitive / resistant over time")


def embedding(coords: np.ndarray, colour: pd.Series, title: str) -> str:
    figure, ax = plt.subplots(figsize=(4.5, 4))
    if colour.dtype.kind in "fi" and colour.nunique() > 3:
        points = ax.scatter(coords[:, 0], coords[:, 1], c=colour, cmap="coolwarm_r", s=8, vmin=0, vmax=1)
        figure.colorbar(points, ax=ax, label="P(sensitive)")
    else:
        palette = {"sensitive": SENSITIVE, "resistant": RESISTANT, "1.0": SENSITIVE, "0.0": RESISTANT}
        for value in pd.unique(colour.astype(str)):
            mask = (colour.astype(str) == value).to_numpy()
            ax.scatter(coords[mask, 0], coords[mask, 1], s=8, label=value, color=palette.get(value))
        ax.legend(markerscale=2, fontsize=7)
    ax.set(xlabel="UMAP 1", ylabel="UMAP 2", title=title)
    return to_markdown(figure, title)


def volcano(table: pd.DataFrame, fc: float = 1.0) -> str:
    figure, ax = plt.subplots(figsize=(5, 4))
    logp = -np.log10(table["pvals_adj"].clip(lower=1e-300))
    colour = np.where(
        (table["logfoldchanges"] > fc) & (table["pvals_adj"] < 0.05),
        RESISTANT,
        np.where((table["logfoldchanges"] < -fc) & (table["pvals_adj"] < 0.05), SENSITIVE, "lightgrey"),
    )
    ax.scatter(table["logfoldchanges"], logp, c=colour, s=6)
    for label, value in (
        ("up in resistant", RESISTANT),
        ("up in sensitive", SENSITIVE),
        ("not significant", "lightgrey"),
    ):
        ax.scatter([], [], color=value, s=12, label=label)
    ax.axvline(fc, color="grey", lw=0.6, ls="--")
    ax.axvline(-fc, color="grey", lw=0.6, ls="--")
    ax.legend(fontsize=7)
    ax.set(
        xlabel="log2 fold change (resistant vs sensitive)",
        ylabel="-log10 adjusted p",
        title="Resistance markers",
    )
    return to_markdown(figure, "Volcano plot: predicted resistant vs sensitive")


def mean_abs_bar(values: pd.Series, title: str, top: int = 20) -> str:
    figure, ax = plt.subplots(figsize=(5, 5))
    largest = values.sort_values().tail(top)
    ax.barh(np.arange(len(largest)), largest.to_numpy(), color="#6a51a3")
    ax.set_yticks(np.arange(len(largest)), largest.index)  # numbers, not a category axis: faster
    ax.set(xlabel="mean |SHAP value|", title=title)
    return to_markdown(figure, title)


def beeswarm(values: np.ndarray, expression: np.ndarray, genes: list[str], title: str, top: int = 20) -> str:
    """The summary plot of shap, drawn here (importing shap costs more than the plot): per gene, by mean
    |SHAP|, one dot per cell at its SHAP value, coloured by the cell's expression within the gene
    (5th–95th percentile), spread vertically where dots pile up."""
    order = np.argsort(np.abs(values).mean(axis=0))[::-1][:top][::-1]  # the largest at the top
    figure, ax = plt.subplots(figsize=(6, 0.28 * len(order) + 1.2))
    level = expression[:, order].astype(float)
    low, high = np.nanpercentile(level, [5, 95], axis=0)
    colour = np.clip((level - low) / np.where(high > low, high - low, np.inf), 0, 1)
    colour[:, high <= low] = 0.5
    rows = np.arange(len(order)) + np.column_stack([_pile_offsets(values[:, g]) for g in order])
    dots = ax.scatter(
        values[:, order].ravel(), rows.ravel(), c=colour.ravel(), cmap="coolwarm", s=9, vmin=0, vmax=1
    )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(order)), [genes[g] for g in order])
    ax.set(xlabel="SHAP value (impact on P(sensitive))", title=title, ylim=(-0.6, len(order) - 0.4))
    bar = figure.colorbar(dots, ax=ax, ticks=[0, 1], aspect=40, pad=0.02)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("expression")
    return to_markdown(figure, title)


def _pile_offsets(x: np.ndarray, bins: int = 50, height: float = 0.4) -> np.ndarray:
    """Vertical offsets that fan out dots sharing a bin of x, alternating above and below the row."""
    edges = np.linspace(x.min(), x.max() + 1e-12, bins + 1)
    which = np.digitize(x, edges)
    offsets = np.zeros(len(x))
    for b in np.unique(which):
        members = np.flatnonzero(which == b)
        rank = np.arange(len(members))
        offsets[members] = np.ceil(rank / 2) * np.where(rank % 2, 1, -1)
    scale = np.abs(offsets).max()
    return offsets * (height / scale) if scale else offsets
