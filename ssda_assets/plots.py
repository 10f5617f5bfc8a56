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
    ax.barh(largest.index, largest.to_numpy(), color="#6a51a3")
    ax.set(xlabel="mean |SHAP value|", title=title)
    return to_markdown(figure, title)


def beeswarm(values: np.ndarray, expression: np.ndarray, genes: list[str], title: str, top: int = 20) -> str:
    import shap

    figure = plt.figure(figsize=(6, 5))
    shap.summary_plot(
        values,
        expression,
        feature_names=genes,
        max_display=top,
        show=False,
        plot_size=None,
        rng=np.random.default_rng(0),
    )  # the jitter of overlapping dots; seeded, not NumPy's global RNG
    plt.title(title)
    return to_markdown(figure, title)
