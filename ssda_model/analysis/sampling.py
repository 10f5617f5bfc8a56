"""Seeded, stratified samples of cells for the analyses whose cost grows faster than the cells.

Silhouettes are quadratic in cells and UMAP, Wilcoxon tests and attributions grow with them, so
above a stated size they run on a sample that keeps each stratum's share (label × time point, say)
and at least one cell of every stratum. The same seed and strata give the same sample.
"""

from __future__ import annotations

import numpy as np


def stratified_sample(strata: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: every row when there are at most `size` (or `size` ≤ 0), else `size`
    rows drawn without replacement, each stratum in proportion to its share (largest remainders),
    at least one row of each."""
    n = len(strata)
    if size <= 0 or n <= size:
        return np.arange(n)
    names, codes = np.unique(np.asarray(strata, dtype=str), return_inverse=True)
    counts = np.bincount(codes, minlength=len(names))
    exact = counts * size / n
    quota = np.maximum(np.floor(exact).astype(int), 1)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for k in order[: max(0, size - quota.sum())]:
        quota[k] += 1
    quota = np.minimum(quota, counts)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == k), size=q, replace=False) for k, q in enumerate(quota)]
    return np.sort(np.concatenate(picked))


def strata_of(*columns: np.ndarray) -> np.ndarray:
    """One stratum label per row from several columns (missing values form their own stratum)."""
    parts = [np.asarray(c, dtype=object).astype(str) for c in columns]
    return np.array(["|".join(row) for row in zip(*parts, strict=True)]) if parts else np.array([])
