"""How well the two classes separate in a space: silhouette of raw expression vs the model's features."""

import numpy as np
from sklearn.metrics import silhouette_score


def class_silhouette(space: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the two classes (labelled cells only); NaN with fewer than two classes."""
    keep = ~np.isnan(labels)
    if len(np.unique(labels[keep])) < 2:
        return float("nan")
    return float(silhouette_score(space[keep], labels[keep].astype(int)))
