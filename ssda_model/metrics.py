"""Pooled classification metrics over all evaluation cells (never averaged per batch)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def pooled_auc_aupr(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """AUC and AUPR with sensitive (1) as the positive class; NaN when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))
