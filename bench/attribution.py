"""attribution_report's work beside the training it explains, at the demo's size, in one run.

    .venv/bin/python bench/attribution.py [--lines 300] [--cells 300] [--genes 2000] [--repeats 3]
        [--epochs 50] [--repetitions 5]

Trains the platform's default configuration (what `make demo` trains; --epochs/--repetitions change
it) on a synthetic pair of the demo's shape, then times each part of what `attribution_report`
computes for its cells with the asset's defaults: integrated gradients for every cell (adaptive
steps; and, for comparison, the fixed 256 steps it used before), SHAP for 32 cells, the figures,
`rank_genes_groups` on |IG|. Each part is the best of --repeats. Goal (issue 13): the asset's parts
together ≤ 10 % of the training. Run it when nothing else runs.
"""

import argparse
import time

import numpy as np
import pandas as pd

from ssda_assets.defs.analysis.assets import shap_figures
from ssda_model.analysis.attribution import (
    attribution_summary,
    integrated_gradients,
    key_genes,
    shap_values,
)
from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.model import SSDAModel


def best(repeats: int, work) -> tuple[float, object]:
    """The shortest of `repeats` runs of work() and its last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=SSDAConfig().epochs)
    parser.add_argument("--repetitions", type=int, default=SSDAConfig().repetitions)
    args = parser.parse_args()
    source, target = synthetic_pair(n_source=args.lines, n_cells=args.cells, n_genes=args.genes, seed=0)
    start = time.perf_counter()
    training_config = {"epochs": args.epochs, "repetitions": args.repetitions}
    model = SSDAModel.fit(source, target, SSDAConfig(**training_config))
    training = time.perf_counter() - start
    x, _ = model.align(target)
    scored = model.predict(target)
    groups = scored.obs["ssda_label"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    background = x[rng.choice(len(x), size=min(200, len(x)), replace=False)]
    shap_rows = np.sort(rng.choice(len(x), size=min(32, len(x)), replace=False))

    rows = []
    fixed, (_, fixed_gaps, _) = best(args.repeats, lambda: integrated_gradients(model, x, 256, max_gap=None))
    rows.append(("IG, every cell at a fixed 256 steps", fixed, f"max gap {np.abs(fixed_gaps).max():.4f}"))
    ig_time, (ig, gaps, steps) = best(args.repeats, lambda: integrated_gradients(model, x))
    counts = pd.Series(steps).value_counts().sort_index().to_dict()
    rows.append(
        ("IG, adaptive steps", ig_time, f"max gap {np.abs(gaps).max():.4f}; cells per step count {counts}")
    )
    shap_time, values = best(args.repeats, lambda: shap_values(model, x[shap_rows], background))
    rows.append(("SHAP, 32 cells × 200 draws", shap_time, ""))
    figures, _ = best(
        args.repeats, lambda: shap_figures(values, x[shap_rows], groups[shap_rows], model.genes, 20)
    )
    rows.append(("figures (bar, beeswarm per group)", figures, ""))
    summary_time, _ = best(
        args.repeats, lambda: attribution_summary(ig, values, shap_rows, groups, model.genes)
    )
    rows.append(("per-gene summary", summary_time, ""))
    key_time, _ = best(args.repeats, lambda: key_genes(ig, groups, model.genes, 1.0, 0.05))
    rows.append(("rank_genes_groups on |IG|", key_time, ""))
    total = sum(seconds for name, seconds, _ in rows if "fixed" not in name)
    rows.append(("attribution_report's parts together", total, ""))

    table = pd.DataFrame(rows, columns=["part", "seconds", "note"])
    table["share of training"] = (table["seconds"] / training).map("{:.1%}".format)
    table["seconds"] = table["seconds"].round(3)
    print(
        f"training ({training_config}, {args.lines} lines → {args.cells} cells × {args.genes} genes): "
        f"{training:.2f} s"
    )
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
