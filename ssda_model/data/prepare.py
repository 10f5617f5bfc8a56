"""From two AnnData objects to aligned, validated, z-scored matrices: the data path of `fit`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np

from ssda_model.data.genes import (
    GeneScaler,
    collapse_duplicate_genes,
    fit_scalers,
    highly_variable,
    read_gene_list,
    shared_genes,
)
from ssda_model.data.readers import expression_matrix, label_vector
from ssda_model.data.splits import validation_count
from ssda_model.errors import SSDAInputError


@dataclass(frozen=True)
class PreparedDomains:
    """Both domains on the model's genes, z-scored, with labels (target NaN = unlabeled)."""

    genes: list[str]
    source_x: np.ndarray
    source_y: np.ndarray
    target_x: np.ndarray
    target_y: np.ndarray
    source_scaler: GeneScaler
    target_scaler: GeneScaler


def aligned_matrix(adata: ad.AnnData, genes: list[str], name: str) -> np.ndarray:
    """X restricted to `genes` in that order, duplicates averaged; genes must all be present."""
    values, names = collapse_duplicate_genes(expression_matrix(adata, name), adata.var_names)
    position = {g: i for i, g in enumerate(names)}
    return values[:, [position[g] for g in genes]]


def check_shots(
    target_y: np.ndarray, shots: int | str, val_fraction: float, name: str, label_key: str
) -> None:
    """Enough labeled target cells of each class for the requested shots, said with the counts."""
    counts = {cls: int((target_y == cls).sum()) for cls in (1, 0)}
    if not isinstance(shots, int):  # "all"
        if min(counts.values()) == 0:
            raise SSDAInputError(
                name,
                f"--shots all needs at least one labeled cell of each class in "
                f"obs[{label_key!r}]; found {counts[1]} sensitive (1) and {counts[0]} resistant (0)",
            )
        return
    usable = {cls: n - validation_count(n, val_fraction) for cls, n in counts.items()}
    if min(usable.values()) < shots:
        raise SSDAInputError(
            name,
            f"--shots {shots} needs {shots} labeled cells per class in the target training "
            f"split, but obs[{label_key!r}] has {counts[1]} sensitive (1) and {counts[0]} "
            f"resistant (0) labeled cells, {usable[1]} and {usable[0]} after holding out "
            f"{val_fraction:.0%} for validation",
        )


def prepare_domains(
    source: ad.AnnData,
    target: ad.AnnData,
    *,
    label_key: str,
    shots: int | str,
    val_fraction: float,
    scaling: str,
    source_name: str = "source",
    target_name: str = "target",
    n_top_genes: int | None = None,
    gene_list: str | Path | None = None,
) -> PreparedDomains:
    """Validate labels and values, match genes, optionally restrict to HVGs / a gene list, z-score."""
    source_y = label_vector(source, label_key, source_name, required=True)
    present = set(np.unique(source_y).astype(int))
    if present != {0, 1}:
        only = "sensitive (1)" if present == {1} else "resistant (0)"
        raise SSDAInputError(
            source_name, f"obs[{label_key!r}] has only {only} samples; both classes are needed"
        )
    if min((source_y == 0).sum(), (source_y == 1).sum()) < 2:
        raise SSDAInputError(
            source_name,
            f"obs[{label_key!r}] needs at least 2 samples of each class "
            "(one for training, one for validation)",
        )
    target_y = label_vector(target, label_key, target_name, required=False)
    check_shots(target_y, shots, val_fraction, target_name, label_key)

    genes = shared_genes(
        [str(g) for g in source.var_names], [str(g) for g in target.var_names], source_name, target_name
    )
    if gene_list is not None:
        listed = read_gene_list(gene_list)
        genes = shared_genes(genes, [g for g in genes if g in listed], source_name, str(gene_list))
    source_x = aligned_matrix(source, genes, source_name)
    target_x = aligned_matrix(target, genes, target_name)
    if n_top_genes is not None:
        hvg_target = ad.AnnData(X=target_x, var={"gene": genes})
        hvg_target.var_names = genes
        keep = highly_variable(hvg_target, genes, n_top_genes)
        position = {g: i for i, g in enumerate(genes)}
        columns = [position[g] for g in keep]
        genes, source_x, target_x = keep, source_x[:, columns], target_x[:, columns]

    source_scaler, target_scaler = fit_scalers(source_x, target_x, scaling)
    return PreparedDomains(
        genes=genes,
        source_x=source_scaler.transform(source_x),
        source_y=source_y.astype(np.int64),
        target_x=target_scaler.transform(target_x),
        target_y=target_y,
        source_scaler=source_scaler,
        target_scaler=target_scaler,
    )
