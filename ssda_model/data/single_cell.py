"""Single-cell count matrices: the 10x and table readers, and the paper's QC and normalisation."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ssda_model.errors import SSDAInputError

MIN_GENES_PER_CELL = 200
MIN_CELLS_PER_GENE = 3
MAX_MITO_PERCENT = 5.0
TARGET_SUM = 1e4


def read_10x(folder: str | Path, gene_id: str = "symbol") -> ad.AnnData:
    """A 10x folder (matrix.mtx[.gz], features.tsv[.gz] or genes.tsv, barcodes.tsv[.gz]); genes named by
    their symbols, or by their IDs (features' first column) when `gene_id` is 'entrez' or 'ensembl'."""
    import scanpy as sc

    folder = Path(folder)
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    needed = [
        ("matrix.mtx", "matrix.mtx.gz"),
        ("barcodes.tsv", "barcodes.tsv.gz"),
        ("features.tsv", "features.tsv.gz", "genes.tsv", "genes.tsv.gz"),
    ]
    missing = [" or ".join(options) for options in needed if not names & set(options)]
    if missing:
        raise SSDAInputError(str(folder), f"not a 10x folder: missing {', '.join(missing)}")
    try:
        adata = sc.read_10x_mtx(
            folder, var_names="gene_symbols" if gene_id == "symbol" else "gene_ids", make_unique=False
        )
    except Exception as exc:
        raise SSDAInputError(str(folder), f"unreadable 10x matrix ({type(exc).__name__}: {exc})") from None
    return adata


def read_count_table(path: str | Path, orientation: str) -> ad.AnnData:
    """A csv/tsv of counts with a header row and an id column; `orientation` is
    'cells_by_genes' (rows = cells) or 'genes_by_cells'."""
    path = Path(path)
    sep = "\t" if path.suffix in (".tsv", ".txt") or path.name.endswith((".tsv.gz", ".txt.gz")) else ","
    try:
        table = pd.read_csv(path, sep=sep, index_col=0)
    except Exception as exc:
        raise SSDAInputError(
            str(path), f"not a readable {('csv', 'tsv')[sep == chr(9)]} table ({type(exc).__name__})"
        ) from None
    if orientation == "genes_by_cells":
        table = table.T
    try:
        values = table.to_numpy(dtype=np.float32)
    except ValueError:
        raise SSDAInputError(str(path), "counts must be numeric") from None
    return ad.AnnData(
        X=sparse.csr_matrix(values),
        obs=pd.DataFrame(index=table.index.astype(str)),
        var=pd.DataFrame(index=table.columns.astype(str)),
    )


def check_counts(adata: ad.AnnData, source: str) -> None:
    """Raw counts must be finite, non-negative numbers, and cell barcodes unique."""
    values = adata.X.data if sparse.issparse(adata.X) else np.asarray(adata.X)
    if not np.isfinite(values).all():
        raise SSDAInputError(source, "counts contain NaN or infinite values")
    if (values < 0).any():
        raise SSDAInputError(
            source, f"counts must be non-negative; found {int((values < 0).sum())} negative values"
        )
    duplicated = adata.obs_names[adata.obs_names.duplicated()]
    if len(duplicated):
        raise SSDAInputError(source, f"{len(duplicated)} duplicated cell barcodes (first: {duplicated[0]!r})")


def _nothing_passes(report: dict[str, int], source: str) -> SSDAInputError:
    """What each QC rule removed, and what to change, when no cell or no gene is left."""
    return SSDAInputError(
        source,
        (
            f"no {'cell' if report.get('cells_left', 1) == 0 else 'gene'} passes QC: "
            f"of {report['cells_in']} cells, "
            f"{report['cells_removed_min_genes']} have fewer than {MIN_GENES_PER_CELL} detected genes and "
            f"{report.get('cells_removed_mito', 0)} more than {MAX_MITO_PERCENT:g} % mitochondrial counts; "
            f"{report['genes_removed_min_cells']} of {report['genes_in']} genes are detected in fewer than "
            f"{MIN_CELLS_PER_GENE} of the cells left. If the matrix is already normalised declare it so "
            "(normalized: true in its dataset.yaml); otherwise check that it holds raw counts, "
            "cells and genes "
            "the right way round (orientation)"
        ),
    )


def quality_control(adata: ad.AnnData, source: str = "matrix") -> tuple[ad.AnnData, dict[str, int]]:
    """The paper's QC on raw counts, then library-size normalisation to 1e4 and log1p.

    Cells with < 200 detected genes, genes detected in < 3 cells and cells with > 5 % counts on
    mitochondrial genes (MT- / mt- prefix) are removed; the report counts each filter's removals.
    Raw counts stay in `layers["counts"]`. A matrix nothing of which passes is an SSDAInputError
    saying what each rule removed.
    """
    import scanpy as sc

    adata = adata.copy()
    adata.X = sparse.csr_matrix(adata.X, dtype=np.float32)
    report = {"cells_in": adata.n_obs, "genes_in": adata.n_vars}
    detected = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    adata = adata[detected >= MIN_GENES_PER_CELL].copy()
    report["cells_removed_min_genes"] = report["cells_in"] - adata.n_obs
    in_cells = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    adata = adata[:, in_cells >= MIN_CELLS_PER_GENE].copy()
    report["genes_removed_min_cells"] = report["genes_in"] - adata.n_vars
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise _nothing_passes({**report, "cells_left": adata.n_obs}, source)
    adata.var["mt"] = adata.var_names.str.startswith(("MT-", "mt-"))
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    keep = adata.obs["pct_counts_mt"].to_numpy() <= MAX_MITO_PERCENT
    report["cells_removed_mito"] = int((~keep).sum())
    adata = adata[keep].copy()
    if adata.n_obs == 0:
        raise _nothing_passes({**report, "cells_left": 0}, source)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=TARGET_SUM)
    sc.pp.log1p(adata)
    report.update(cells_out=adata.n_obs, genes_out=adata.n_vars)
    return adata, report
