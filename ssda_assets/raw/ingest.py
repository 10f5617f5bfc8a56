"""From a dataset manifest to an annotated .h5ad: read the matrix, QC, labels and time points.

Raw counts in an .h5ad are read backed, a block of cells at a time, QC'd and normalised block by
block (ssda_model.data.qc) and appended to the output, so memory follows the block and the
per-cell metrics, not the dataset. 10x folders and cells × genes tables are first streamed into a
staging .h5ad beside the output (ssda_model.data.single_cell) and read the same way;
already-normalised matrices are taken as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ssda_assets.raw.manifest import Manifest
from ssda_model.data.qc import BLOCK, QCThresholds, StreamingQC, check_barcodes
from ssda_model.data.readers import H5adRows, close_h5ad, open_h5ad, read_h5ad, read_scad_tsv
from ssda_model.data.single_cell import read_10x, read_count_table
from ssda_model.errors import SSDAInputError

LABEL = "response"  # obs column of the ingested dataset: 1 sensitive, 0 resistant, NaN unlabeled
TIME = "time_point"


def read_matrix(manifest: Manifest, staging: Path | None = None, block: int = BLOCK) -> ad.AnnData:
    """The dataset's matrix as AnnData (raw counts, or already normalised values for SCAD files),
    with the manifest's per-cell metadata table joined to obs. With `staging`, X stays on disk: an
    .h5ad is opened backed, a 10x matrix or cells × genes table is streamed into `staging` first,
    `block` cells at a time."""
    if manifest.format == "h5ad":
        adata = open_h5ad(manifest.matrix, manifest.layer) if staging else read_h5ad(manifest.matrix)
    elif manifest.format == "10x":
        adata = read_10x(manifest.matrix, manifest.gene_id, staging, block)
    elif manifest.format == "scad":
        adata = read_scad_tsv(manifest.matrix)
    else:
        adata = read_count_table(manifest.matrix, manifest.orientation or "cells_by_genes", staging, block)
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
        adata.obs = adata.obs.join(table, how="left")  # in memory, backed or not
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


def _require_column(obs: pd.DataFrame, column: str, where: str, manifest: Manifest) -> pd.Series:
    if column not in obs.columns:
        raise SSDAInputError(
            str(manifest.folder / "dataset.yaml"),
            f"{where} column {column!r} is not in the matrix's obs (columns: "
            f"{', '.join(map(str, obs.columns)) or 'none'})",
        )
    return _as_text(obs[column])


def _require_values(values: pd.Series, declared: tuple[str, ...], where: str, manifest: Manifest) -> None:
    present = set(values.dropna())
    absent = [v for v in declared if v not in present]
    if absent:
        raise SSDAInputError(
            str(manifest.folder / "dataset.yaml"),
            f"{where} values {', '.join(map(repr, absent))} never occur in the data "
            f"(present: {', '.join(sorted(present)[:10])})",
        )


def annotate_obs(obs: pd.DataFrame, manifest: Manifest) -> pd.DataFrame:
    """Add obs['response'] (from the label column or from time points) and obs['time_point'] (ordered)."""
    obs = obs.copy()
    labels = pd.Series(np.nan, index=obs.index)
    if manifest.time is not None:
        times = _require_column(obs, manifest.time.column, "time", manifest)
        _require_values(times, manifest.time.order, "time.order", manifest)
        extra = sorted(set(times.dropna()) - set(manifest.time.order))
        if extra:
            raise SSDAInputError(
                str(manifest.folder / "dataset.yaml"),
                f"time points {', '.join(extra)} occur in the data but not in time.order",
            )
        obs[TIME] = pd.Categorical(times, categories=list(manifest.time.order), ordered=True)
        if manifest.labels_from_time:
            labels[times.isin(manifest.time.sensitive).to_numpy()] = 1.0
            labels[times.isin(manifest.time.resistant).to_numpy()] = 0.0
    if manifest.label is not None:
        values = _require_column(obs, manifest.label.column, "label", manifest)
        _require_values(values, manifest.label.sensitive + manifest.label.resistant, "label", manifest)
        labels[values.isin(manifest.label.sensitive).to_numpy()] = 1.0
        labels[values.isin(manifest.label.resistant).to_numpy()] = 0.0
    obs[LABEL] = labels.to_numpy()
    return obs


@dataclass(frozen=True)
class Ingested:
    """What the asset reports of a written dataset: its annotated obs and the QC counts."""

    obs: pd.DataFrame
    report: dict[str, int | str]
    finite: bool


def _write_h5ad(
    path: Path, qc: StreamingQC, obs: pd.DataFrame, var: pd.DataFrame, manifest: Manifest
) -> pd.DataFrame:
    """Append each QC block's log1p values (X) to a new .h5ad, then its obs (annotated), var and
    uns; returns the annotated obs. The counts are not stored again: they stay in the raw zone's
    file, and a second copy would double the largest file of a 10^6-cell dataset."""
    out = H5adRows(path)
    try:
        for block in qc.blocks():
            out.append("X", block.values)
        assert qc.obs is not None and qc.var is not None
        annotated = annotate_obs(obs.loc[qc.obs.index].join(qc.obs), manifest)
        out.finish(annotated, var.loc[qc.var.index].join(qc.var), {"log1p": {"base": None}})
    finally:
        out.close()
    return annotated


def space_estimate(folder: Path) -> int:
    """Bytes an ingest writes, from the dataset's files: the normalised matrix is about an .h5ad's
    size (float32 values and int32 indices, as counts are stored), a text matrix also passes
    through a staging .h5ad of about its size, and a gzipped file expands about fourfold."""
    total = 0.0
    for file in (f for f in folder.rglob("*") if f.is_file()):
        factor = 1.25 if file.suffix == ".h5ad" else 4 if file.suffix == ".gz" else 2
        total += factor * file.stat().st_size
    return int(total)


def ingest(manifest: Manifest, path: Path, block: int = BLOCK) -> Ingested:
    """Read, check, QC + normalise (unless already normalised), annotate; write the .h5ad to `path`,
    `block` cells at a time (memory follows it)."""
    source = str(manifest.matrix)
    staging = path.with_name(f".{path.name}.counts.h5ad")  # a 10x or table's counts, streamed
    adata = None
    try:
        adata = read_matrix(manifest, None if manifest.normalized else staging, block)
        if adata.n_obs == 0:
            raise SSDAInputError(source, "the matrix has no cells (only a header?)")
        check_barcodes(adata.obs_names, source)
        if manifest.normalized:
            adata.obs = annotate_obs(adata.obs, manifest)
            adata.write_h5ad(path)
            values = adata.X.data if hasattr(adata.X, "data") else np.asarray(adata.X)
            report: dict[str, int | str] = {
                "qc": "skipped: the matrix is declared already normalised",
                "cells_out": adata.n_obs,
                "genes_out": adata.n_vars,
            }
            return Ingested(adata.obs, report, bool(np.isfinite(values).all()))
        qc = StreamingQC(adata, source, block, manifest.qc)
        obs = _write_h5ad(path, qc, adata.obs, adata.var, manifest)
    finally:
        if adata is not None:
            close_h5ad(adata)
        staging.unlink(missing_ok=True)
    report = {
        **qc.report,
        "qc": f"{'paper' if manifest.qc == QCThresholds() else 'dataset.yaml'} QC: {manifest.qc.describe()}"
        + (f", counts from {manifest.layer}" if manifest.layer else ""),
    }
    return Ingested(obs, report, True)  # counts were checked finite block by block
