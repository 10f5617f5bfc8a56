"""Single-cell count matrices: the 10x and table readers (QC and normalisation: data/qc.py)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ssda_model.errors import SSDAInputError


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
