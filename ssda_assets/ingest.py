"""From a dataset manifest to an annotated AnnData: read the matrix, QC, labels and time points."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ssda_assets.manifest import Manifest
from ssda_model.data.readers import read_h5ad, read_scad_tsv
from ssda_model.data.single_cell import check_counts, quality_control, read_10x, read_count_table
from ssda_model.errors import SSDAInputError

LABEL = "response"  # obs column of the ingested dataset: 1 sensitive, 0 resistant, NaN unlabeled
TIME = "time_point"


def read_matrix(manifest: Manifest) -> ad.AnnData:
    """The dataset's matrix as AnnData (raw counts, or already normalised values for SCAD files),
    with the manifest's per-cell metadata table joined to obs."""
    if manifest.format == "h5ad":
        adata = read_h5ad(manifest.matrix)
    elif manifest.format == "10x":
        adata = read_10x(manifest.matrix, manifest.gene_id)
    elif manifest.format == "scad":
        adata = read_scad_tsv(manifest.matrix)
    else:
        adata = read_count_table(manifest.matrix, manifest.orientation or "cells_by_genes")
    if manifest.obs is not None:
        sep = "\t" if manifest.obs.suffix in (".tsv", ".txt") else ","
        try:
            table = pd.read_csv(manifest.obs, sep=sep, index_col=0, dtype=str)
        except Exception as exc:
            raise SSDAInputError(
                str(manifest.obs), f"not a readable cell metadata table ({type(exc).__name__})"
            ) from None
        table.index = table.index.astype(str)
        unmatched = adata.obs_names.difference(table.index)
        if len(unmatched):
            raise SSDAInputError(
                str(manifest.obs),
                f"{len(unmatched)} cells of the matrix have no row here (first: {unmatched[0]!r})",
            )
        adata.obs = adata.obs.join(table, how="left")
    return adata


def _as_text(column: pd.Series) -> pd.Series:
    """Values as the strings a manifest writes them (1.0 → '1'), missing stays missing."""

    def text(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return column.astype(object).map(text)


def _require_column(adata: ad.AnnData, column: str, where: str, manifest: Manifest) -> pd.Series:
    if column not in adata.obs.columns:
        raise SSDAInputError(
            str(manifest.folder / "dataset.yaml"),
            f"{where} column {column!r} is not in the matrix's obs (columns: "
            f"{', '.join(map(str, adata.obs.columns)) or 'none'})",
        )
    return _as_text(adata.obs[column])


def _require_values(values: pd.Series, declared: tuple[str, ...], where: str, manifest: Manifest) -> None:
    present = set(values.dropna())
    absent = [v for v in declared if v not in present]
    if absent:
        raise SSDAInputError(
            str(manifest.folder / "dataset.yaml"),
            f"{where} values {', '.join(map(repr, absent))} never occur in the data "
            f"(present: {', '.join(sorted(present)[:10])})",
        )


def annotate(adata: ad.AnnData, manifest: Manifest) -> ad.AnnData:
    """Add obs['response'] (from the label column or from time points) and obs['time_point'] (ordered)."""
    labels = pd.Series(np.nan, index=adata.obs_names)
    if manifest.time is not None:
        times = _require_column(adata, manifest.time.column, "time", manifest)
        _require_values(times, manifest.time.order, "time.order", manifest)
        extra = sorted(set(times.dropna()) - set(manifest.time.order))
        if extra:
            raise SSDAInputError(
                str(manifest.folder / "dataset.yaml"),
                f"time points {', '.join(extra)} occur in the data but not in time.order",
            )
        adata.obs[TIME] = pd.Categorical(times, categories=list(manifest.time.order), ordered=True)
        if manifest.labels_from_time:
            labels[times.isin(manifest.time.sensitive).to_numpy()] = 1.0
            labels[times.isin(manifest.time.resistant).to_numpy()] = 0.0
    if manifest.label is not None:
        values = _require_column(adata, manifest.label.column, "label", manifest)
        _require_values(values, manifest.label.sensitive + manifest.label.resistant, "label", manifest)
        labels[values.isin(manifest.label.sensitive).to_numpy()] = 1.0
        labels[values.isin(manifest.label.resistant).to_numpy()] = 0.0
    adata.obs[LABEL] = labels.to_numpy()
    return adata


def ingest(manifest: Manifest) -> tuple[ad.AnnData, dict[str, int | str]]:
    """Read, check, QC + normalise (unless already normalised), annotate."""
    adata = read_matrix(manifest)
    source = str(manifest.matrix)
    if adata.n_obs == 0:
        raise SSDAInputError(source, "the matrix has no cells (only a header?)")
    if manifest.normalized:
        if adata.obs_names.duplicated().any():
            raise SSDAInputError(source, "duplicated cell ids")
        report: dict[str, int | str] = {
            "qc": "skipped: the matrix is declared already normalised",
            "cells_out": adata.n_obs,
            "genes_out": adata.n_vars,
        }
    else:
        check_counts(adata, source)
        adata, report = quality_control(adata, source)
        report["qc"] = "paper QC: min 200 genes/cell, min 3 cells/gene, max 5 % mitochondrial counts"
    return annotate(adata, manifest), report
