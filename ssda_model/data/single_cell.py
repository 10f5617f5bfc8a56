"""Single-cell count matrices: the 10x and table readers (QC and normalisation: data/qc.py).

Given a `staging` path, a 10x matrix or a cells × genes table is streamed into that .h5ad a block
of cells at a time and returned backed (`open_h5ad`), so QC reads it from disk like any .h5ad and
memory follows the block, not the file. A 10x matrix whose entries are not grouped by cell (Cell
Ranger and R's `writeMM` group them) and a genes × cells table can only be read whole.
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy import io, sparse

from ssda_model.data.readers import H5adRows, open_h5ad
from ssda_model.errors import SSDAInputError, SSDAInputWarning

BLOCK = 5_000  # cells per streamed block
WHOLE_WARNING = 10_000_000  # entries above which reading a matrix whole is worth a warning


class _NotGrouped(Exception):
    """The matrix's entries are not grouped by cell: it cannot be streamed."""


def _pick(folder: Path, *names: str) -> Path:
    return next(folder / n for n in names if (folder / n).exists())


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)


def _tables_10x(folder: Path, gene_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cells (barcodes) and genes (named by symbol, or by ID for 'entrez'/'ensembl'), as scanpy's
    `read_10x_mtx` names them: the other name in var['gene_ids'] or var['gene_symbols']."""
    features = _tsv(_pick(folder, "features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"))
    barcodes = _tsv(_pick(folder, "barcodes.tsv.gz", "barcodes.tsv"))
    ids, symbols = (
        features[0].to_numpy(),
        features[features.columns[min(1, features.shape[1] - 1)]].to_numpy(),
    )
    if gene_id == "symbol":
        var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(symbols))
    else:
        var = pd.DataFrame({"gene_symbols": symbols}, index=pd.Index(ids))
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    return pd.DataFrame(index=pd.Index(barcodes[0].to_numpy())), var


def _mtx_header(path: Path) -> tuple[int, str, tuple[int, int, int]]:
    """(lines before the entries, field, (rows, columns, entries)) of a coordinate .mtx[.gz]."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
        banner = handle.readline().split()
        if banner[:3] != ["%%MatrixMarket", "matrix", "coordinate"] or len(banner) < 5:
            raise SSDAInputError(str(path), "not a MatrixMarket coordinate matrix (first line)")
        lines, line = 1, handle.readline()
        while line.startswith("%"):
            lines, line = lines + 1, handle.readline()
        try:
            rows, columns, entries = map(int, line.split())
        except ValueError:
            raise SSDAInputError(
                str(path), f"size line {line.strip()!r}: expected 'genes cells entries'"
            ) from None
    return lines + 1, banner[3], (rows, columns, entries)


def _entries(path: Path, skip: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(gene, cell, count) arrays as the file numbers them (from 1), 16 MB of text at a time."""
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            skip_rows=skip, column_names=["gene", "cell", "count"], block_size=16 << 20
        ),
        parse_options=pacsv.ParseOptions(delimiter=" "),
        convert_options=pacsv.ConvertOptions(
            column_types={"gene": pa.int32(), "cell": pa.int32(), "count": pa.float32()}
        ),
    )
    for batch in reader:
        yield batch.column(0).to_numpy(), batch.column(1).to_numpy(), batch.column(2).to_numpy()


def _stream_mtx(path: Path, staging: Path, obs: pd.DataFrame, var: pd.DataFrame, block: int) -> None:
    """Write the genes × cells .mtx as a cells × genes .h5ad at `staging`, `block` cells at a time:
    entries grouped by cell are already a CSR matrix, cut into blocks of cells."""
    skip, field, (n_genes, n_cells, n_entries) = _mtx_header(path)
    if field not in ("integer", "real") or n_cells == 0 or (n_genes, n_cells) != (len(var), len(obs)):
        raise _NotGrouped  # the whole read says what is wrong, or reads what streaming cannot
    out, start, last, seen = H5adRows(staging), 0, 0, 0
    pending = [(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float32))]

    def flush(stop: int) -> None:
        """Write cells start..stop (from 0; the file's cells start + 1..stop)."""
        nonlocal pending
        gene, cell, count = (np.concatenate(parts) for parts in zip(*pending, strict=True))
        cut = int(np.searchsorted(cell, stop, side="right"))
        pending = [(gene[cut:], cell[cut:], count[cut:])]
        indptr = np.searchsorted(cell[:cut], np.arange(start + 1, stop + 2))
        block = sparse.csr_matrix((count[:cut], gene[:cut] - 1, indptr), shape=(stop - start, n_genes))
        block.sum_duplicates()
        out.append("X", block)

    try:
        for gene, cell, count in _entries(path, skip):
            if not len(cell):
                continue
            if cell[0] < last or (np.diff(cell) < 0).any():
                raise _NotGrouped
            if gene.min() < 1 or gene.max() > n_genes or cell.max() > n_cells or cell.min() < 1:
                raise SSDAInputError(
                    str(path), f"an entry lies outside the declared {n_genes} genes × {n_cells} cells"
                )
            last, seen = int(cell[-1]), seen + len(cell)
            pending.append((gene, cell, count))
            while last > start + block:  # every entry of cells up to start + block has been read
                flush(start + block)
                start += block
        if seen != n_entries:
            raise SSDAInputError(str(path), f"declares {n_entries} entries but holds {seen} (truncated?)")
        while start < n_cells:
            flush(min(start + block, n_cells))
            start += block
        out.finish(obs, var)
    except pa.ArrowInvalid as exc:
        raise _NotGrouped from exc  # odd spacing: scipy's reader is more lenient
    finally:
        out.close()


def read_10x(
    folder: str | Path, gene_id: str = "symbol", staging: Path | None = None, block: int = BLOCK
) -> ad.AnnData:
    """A 10x folder (matrix.mtx[.gz], features.tsv[.gz] or genes.tsv, barcodes.tsv[.gz]); genes named by
    their symbols, or by their IDs (features' first column) when `gene_id` is 'entrez' or 'ensembl'.
    With `staging`, streamed into that .h5ad and returned backed (module docstring)."""
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
    matrix = _pick(folder, "matrix.mtx.gz", "matrix.mtx")
    try:
        obs, var = _tables_10x(folder, gene_id)
        if staging is not None:
            try:
                _stream_mtx(matrix, staging, obs, var, block)
                return open_h5ad(staging)
            except _NotGrouped:
                staging.unlink(missing_ok=True)
        counts = io.mmread(matrix)
    except SSDAInputError:
        raise
    except Exception as exc:
        raise SSDAInputError(str(folder), f"unreadable 10x matrix ({type(exc).__name__}: {exc})") from None
    if counts.shape != (len(var), len(obs)):
        raise SSDAInputError(
            str(matrix),
            f"{counts.shape[0]} genes × {counts.shape[1]} cells, but {len(var)} features and "
            f"{len(obs)} barcodes",
        )
    if staging is not None and counts.nnz > WHOLE_WARNING:
        warnings.warn(
            f"{matrix}: entries not grouped by cell, read whole ({counts.nnz:,} entries in memory)",
            SSDAInputWarning,
            stacklevel=2,
        )
    return ad.AnnData(X=sparse.csr_matrix(counts.T, dtype=np.float32), obs=obs, var=var)


def _numeric(frame: pd.DataFrame, path: Path) -> np.ndarray:
    try:
        return frame.to_numpy(dtype=np.float32)
    except ValueError:
        raise SSDAInputError(str(path), "counts must be numeric") from None


def read_count_table(
    path: str | Path, orientation: str, staging: Path | None = None, block: int = BLOCK
) -> ad.AnnData:
    """A csv/tsv of counts with a header row and an id column; `orientation` is
    'cells_by_genes' (rows = cells) or 'genes_by_cells'. With `staging`, a cells × genes table is
    streamed into that .h5ad and returned backed (module docstring)."""
    path = Path(path)
    sep = "\t" if path.suffix in (".tsv", ".txt") or path.name.endswith((".tsv.gz", ".txt.gz")) else ","
    kind = ("csv", "tsv")[sep == "\t"]
    streamed = staging is not None and orientation == "cells_by_genes"
    try:
        chunks = pd.read_csv(path, sep=sep, index_col=0, chunksize=block if streamed else None)
        if streamed:
            assert staging is not None
            out, cells, genes = H5adRows(staging), [], None
            try:
                for chunk in chunks:
                    if len(chunk):
                        genes = chunk.columns
                        cells.append(chunk.index.astype(str))
                        out.append("X", sparse.csr_matrix(_numeric(chunk, path)))
                if genes is None:
                    raise SSDAInputError(str(path), "the matrix has no cells (only a header?)")
                obs = pd.DataFrame(index=cells[0].append(cells[1:]))
                out.finish(obs, pd.DataFrame(index=genes.astype(str)))
            finally:
                out.close()
            return open_h5ad(staging)
        table = chunks
    except SSDAInputError:
        raise
    except Exception as exc:
        raise SSDAInputError(str(path), f"not a readable {kind} table ({type(exc).__name__})") from None
    if orientation == "genes_by_cells":
        table = table.T
    return ad.AnnData(
        X=sparse.csr_matrix(_numeric(table, path)),
        obs=pd.DataFrame(index=table.index.astype(str)),
        var=pd.DataFrame(index=table.columns.astype(str)),
    )
