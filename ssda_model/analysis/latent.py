"""The latent space: how well the two classes separate in it, and its 2-d UMAP view."""

import functools

import numpy as np
from scipy import sparse
from sklearn.metrics import silhouette_score


def class_silhouette(space: np.ndarray | sparse.csr_matrix, labels: np.ndarray) -> float:
    """Silhouette of the two classes (labelled cells only; a sparse space stays sparse); NaN with
    fewer than two classes. Quadratic in cells: callers pass a sample of large datasets."""
    keep = ~np.isnan(labels)
    if len(np.unique(labels[keep])) < 2:
        return float("nan")
    return float(silhouette_score(space[keep], labels[keep].astype(int)))


@functools.cache
def _cache_umap_kernels() -> None:
    """Keep numba's compiled code of UMAP's neighbour-graph kernels on disk. UMAP declares them
    without `cache=True`, so every process compiled them again (about 4 s), and every Dagster run
    of latent_map is a fresh process; with the cache the first run compiles, later ones load."""
    from umap import umap_

    for kernel in (umap_.smooth_knn_dist, umap_.compute_membership_strengths):
        kernel.enable_caching()


def umap_2d(space: np.ndarray | sparse.csr_matrix, pca: bool = False) -> np.ndarray:
    """2-d UMAP (fixed seed) of cells × dimensions, as scanpy computes it; `pca` first reduces
    expression (sparse or dense) to 30 components."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    _cache_umap_kernels()
    view = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(space.shape[0])]))
    view.obsm["X_space"] = (
        sc.pp.pca(space, n_comps=min(30, space.shape[0] - 1, space.shape[1] - 1), random_state=0)
        if pca
        else space
    )
    sc.pp.neighbors(view, use_rep="X_space", random_state=0)
    sc.tl.umap(view, random_state=0)
    return view.obsm["X_umap"]
