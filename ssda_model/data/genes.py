"""Gene matching between domains and the one place genes are z-scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ssda_model.errors import SSDAInputError

MIN_SHARED_GENES = 50


def collapse_duplicate_genes(matrix: np.ndarray, genes: pd.Index) -> tuple[np.ndarray, list[str]]:
    """Average the columns of genes that appear more than once, keeping first-seen order."""
    names = pd.Index([str(g) for g in genes])
    if names.is_unique:
        return matrix, list(names)
    frame = pd.DataFrame(matrix, columns=names)
    averaged = frame.T.groupby(level=0, sort=False).mean().T
    return averaged.to_numpy(dtype=np.float32), list(averaged.columns)


def shared_genes(source_genes: list[str], target_genes: list[str], source: str, target: str) -> list[str]:
    """Genes present in both domains, sorted so the model's input order never depends on file order."""
    shared = sorted(set(source_genes) & set(target_genes))
    if len(shared) < MIN_SHARED_GENES:
        raise SSDAInputError(
            f"{source} / {target}",
            f"only {len(shared)} genes are shared by var_names; at least {MIN_SHARED_GENES} are needed",
        )
    return shared


def highly_variable(target: ad.AnnData, genes: list[str], n_top: int) -> list[str]:
    """The n_top highly variable genes of the target (scanpy, on log1p data) among `genes`."""
    import scanpy as sc

    subset = target[:, genes].copy()
    n_top = min(n_top, subset.n_vars)
    sc.pp.highly_variable_genes(subset, n_top_genes=n_top, flavor="seurat")
    keep = set(subset.var_names[subset.var["highly_variable"].to_numpy()])
    return [g for g in genes if g in keep]


def read_gene_list(path: str | Path) -> set[str]:
    """One gene identifier per line; blank lines and #-comments ignored."""
    path = Path(path)
    if not path.exists():
        raise SSDAInputError(str(path), "gene list file not found")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    genes = {line for line in lines if line}
    if not genes:
        raise SSDAInputError(str(path), "gene list is empty; expected one gene identifier per line")
    return genes


@dataclass(frozen=True)
class GeneScaler:
    """Per-gene mean and standard deviation; z = (x - mean) / std (std 0 is treated as 1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, matrix: np.ndarray) -> GeneScaler:
        std = matrix.std(axis=0)
        return cls(
            mean=matrix.mean(axis=0).astype(np.float32), std=np.where(std > 0, std, 1.0).astype(np.float32)
        )

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        return ((matrix - self.mean) / self.std).astype(np.float32)


def fit_scalers(source: np.ndarray, target: np.ndarray, scaling: str) -> tuple[GeneScaler, GeneScaler]:
    """Scalers for (source, target): one per domain (removes a global platform offset) or one joint."""
    if scaling == "joint":
        joint = GeneScaler.fit(np.vstack([source, target]))
        return joint, joint
    return GeneScaler.fit(source), GeneScaler.fit(target)
