"""Why the bulk helps one SCAD target and hurts another: linear diagnostics in seconds, no training.

    .venv/bin/python bench/real_diagnostics.py [path/to/shared/data]

Per target, on the genes shared with the GDSC source, each domain z-scored per gene (as the model
does): class balance; how well the cells' first principal components separate the labels; what
1 or 3 labeled cells per class give alone (nearest centroid, 200 random draws); and what the bulk
gives alone, as the AUC on the cells of (a) the bulk's sensitive-minus-resistant mean difference
and (b) logistic regressions on the bulk, from strongly to weakly regularised. Also the drugs whose
SCAD labels are the same cells with the labels inverted (AR-42 on JHU006, Sorafenib on SCC47).
Prints the table quoted in docs/method.md.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ssda_model.datasets import FLIPPED_TARGETS, PUBLIC_TARGETS, public_scad_pair
from ssda_model.errors import SSDAInputWarning


def zscore(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def shots_alone(x: np.ndarray, y: np.ndarray, shots: int, rng: np.random.Generator) -> float:
    """Mean AUC of scoring the other cells on the difference of the shots' class means."""
    aucs = []
    for _ in range(200):
        chosen = np.r_[
            rng.choice(np.flatnonzero(y == 1), shots, replace=False),
            rng.choice(np.flatnonzero(y == 0), shots, replace=False),
        ]
        direction = x[chosen[:shots]].mean(axis=0) - x[chosen[shots:]].mean(axis=0)
        rest = np.setdiff1d(np.arange(len(y)), chosen)
        aucs.append(roc_auc_score(y[rest], x[rest] @ direction))
    return float(np.mean(aucs))


def diagnose(source, target) -> dict[str, float | str]:
    genes = sorted(set(source.var_names) & set(target.var_names))
    xs, xt = zscore(source[:, genes].X.astype(float)), zscore(target[:, genes].X.astype(float))
    ys, yt = source.obs["response"].to_numpy(int), target.obs["response"].to_numpy(int)
    pcs = PCA(3, random_state=0).fit_transform(xt)
    row = {"genes": len(genes), "bulk sensitive": f"{ys.mean():.2f}", "cells sensitive": f"{yt.mean():.2f}"}
    for k in range(3):
        auc = roc_auc_score(yt, pcs[:, k])
        row[f"PC{k + 1} AUC"] = round(max(auc, 1 - auc), 3)
    rng = np.random.default_rng(0)
    for shots in (1, 3):
        row[f"{shots} shot alone"] = round(shots_alone(xt, yt, shots, rng), 3)
    row["bulk mean difference"] = round(
        roc_auc_score(yt, xt @ (xs[ys == 1].mean(0) - xs[ys == 0].mean(0))), 3
    )
    for c in (1e-3, 1e-2, 1e-1):
        model = LogisticRegression(C=c, max_iter=5000).fit(xs, ys)
        row[f"bulk LR C={c:g}"] = round(roc_auc_score(yt, model.decision_function(xt)), 3)
    return row


def main() -> None:
    warnings.filterwarnings("ignore", category=SSDAInputWarning)
    data_dir = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    rows = {
        drug: diagnose(*public_scad_pair(data_dir, drug, source="gdsc"))
        for drug in [*PUBLIC_TARGETS, *FLIPPED_TARGETS]
    }
    print(pd.DataFrame(rows).to_markdown())


if __name__ == "__main__":
    main()
