"""The paper's QC and normalisation, a block of cells at a time, so memory follows the block.

Two passes over the counts: the first counts each cell's detected genes and, over the cells that
keep enough, each gene's detecting cells; the second drops the rare genes, measures each cell's
mitochondrial share on the genes left, and hands out the kept cells' counts and their library-size
normalised log1p values block by block. The numbers equal scanpy's `calculate_qc_metrics`,
`normalize_total(target_sum=1e4)` and `log1p` on the whole matrix (tests/model/test_qc.py); only
the per-cell and per-gene metrics are held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ssda_model.data.readers import row_blocks
from ssda_model.errors import SSDAInputError

TARGET_SUM = 1e4
BLOCK = 5_000  # cells: at 20,000 genes and 9 % nonzero 72 MB a copy; a pass holds about five


@dataclass(frozen=True)
class QCThresholds:
    """The paper's QC (its defaults); a dataset's manifest may set its own (`qc:`)."""

    min_genes: int = 200  # detected genes per cell
    min_cells: int = 3  # cells detecting a gene, among those kept
    max_mito_pct: float = 5.0  # % of a cell's counts from MT- genes
    integer_counts: bool = True  # raw counts are whole numbers; false for corrected counts (CellBender)

    def describe(self) -> str:
        """One line for the metadata and the errors."""
        return (
            f"min {self.min_genes} genes/cell, min {self.min_cells} cells/gene, "
            f"max {self.max_mito_pct:g} % mitochondrial counts"
        )


def _csr(block) -> sparse.csr_matrix:
    """A block as float32 CSR without explicit zeros (a stored value is a detection), copied only
    when it is not one already."""
    if not (isinstance(block, sparse.csr_matrix) and block.dtype == np.float32):
        block = sparse.csr_matrix(block, dtype=np.float32)
    block.eliminate_zeros()
    return block


def check_count_block(counts: sparse.csr_matrix, source: str, integers: bool = False) -> None:
    """Raw counts must be finite and non-negative, and whole numbers when `integers`: a normalised
    matrix declared raw would be normalised twice."""
    if not np.isfinite(counts.data).all():
        raise SSDAInputError(source, "counts contain NaN or infinite values")
    negative = int((counts.data < 0).sum())
    if negative:
        raise SSDAInputError(source, f"counts must be non-negative; found {negative} negative values")
    if integers:
        fractional = np.flatnonzero(counts.data != np.round(counts.data))
        if len(fractional):
            raise SSDAInputError(
                source,
                f"raw counts expected, but {len(fractional)} values of a block are not whole numbers "
                f"(e.g. {counts.data[fractional[0]]:g}): point 'layer' in the dataset.yaml at the counts "
                "(a layer's name, or .raw), declare 'normalized: true', or for corrected counts set "
                "'qc: {integer_counts: false}'",
            )


def check_barcodes(obs_names: pd.Index, source: str) -> None:
    """Cell barcodes must be unique."""
    duplicated = obs_names[obs_names.duplicated()]
    if len(duplicated):
        raise SSDAInputError(source, f"{len(duplicated)} duplicated cell barcodes (first: {duplicated[0]!r})")


def check_counts(adata: ad.AnnData, source: str) -> None:
    """Raw counts must be finite, non-negative numbers, and cell barcodes unique."""
    check_count_block(_csr(adata.X), source)
    check_barcodes(adata.obs_names, source)


def nothing_passes(report: dict[str, int], source: str, qc: QCThresholds = QCThresholds()) -> SSDAInputError:
    """What each QC rule removed, and what to change, when no cell or no gene is left."""
    return SSDAInputError(
        source,
        (
            f"no {'cell' if report.get('cells_left', 1) == 0 else 'gene'} passes QC: "
            f"of {report['cells_in']} cells, "
            f"{report['cells_removed_min_genes']} have fewer than {qc.min_genes} detected genes and "
            f"{report.get('cells_removed_mito', 0)} more than {qc.max_mito_pct:g} % mitochondrial counts; "
            f"{report['genes_removed_min_cells']} of {report['genes_in']} genes are detected in fewer than "
            f"{qc.min_cells} of the cells left. If the matrix is already normalised declare it so "
            "(normalized: true in its dataset.yaml); otherwise check that it holds raw counts, "
            "cells and genes "
            "the right way round (orientation)"
        ),
    )


def _take(block: sparse.csr_matrix, rows: np.ndarray, genes: np.ndarray | slice) -> sparse.csr_matrix:
    """`block[rows][:, genes]`, without a copy where every row or every gene stays."""
    if len(rows) < block.shape[0]:
        block = block[rows]
    if not isinstance(genes, slice) and not genes.all():
        block = block[:, genes]
    return block


@dataclass
class QCBlock:
    """The kept cells of one block: their raw counts and log1p values."""

    counts: sparse.csr_matrix
    values: sparse.csr_matrix


@dataclass
class StreamingQC:
    """QC of the counts of `cells` (in memory, or on disk from `open_h5ad`); iterate `blocks()`
    once, then read `obs`, `var` and `report` (the kept cells' and genes' metrics, as
    `calculate_qc_metrics` names them)."""

    cells: ad.AnnData
    source: str
    block: int = BLOCK
    thresholds: QCThresholds = field(default_factory=QCThresholds)
    report: dict[str, int] = field(default_factory=dict)
    obs: pd.DataFrame | None = None
    var: pd.DataFrame | None = None

    def _blocks(self) -> Iterator[tuple[int, sparse.csr_matrix]]:
        for positions, counts in row_blocks(self.cells, self.block):
            yield int(positions[0]), _csr(counts)

    def _plan(self) -> tuple[np.ndarray, np.ndarray]:
        """Pass 1: cells with enough detected genes, and genes detected in enough of them."""
        enough = np.zeros(self.cells.n_obs, bool)
        in_cells = np.zeros(self.cells.n_vars, np.int64)
        for start, counts in self._blocks():
            check_count_block(counts, self.source, self.thresholds.integer_counts)
            ok = np.diff(counts.indptr) >= self.thresholds.min_genes
            enough[start : start + counts.shape[0]] = ok
            detecting = counts.indices[np.repeat(ok, np.diff(counts.indptr))]
            in_cells += np.bincount(detecting, minlength=self.cells.n_vars)
        genes = in_cells >= self.thresholds.min_cells
        self.report = {
            "cells_in": self.cells.n_obs,
            "genes_in": self.cells.n_vars,
            "cells_removed_min_genes": int((~enough).sum()),
            "genes_removed_min_cells": int((~genes).sum()),
        }
        if not enough.any() or not genes.any():
            raise nothing_passes(
                {**self.report, "cells_left": int(enough.sum())}, self.source, self.thresholds
            )
        return enough, genes

    def blocks(self) -> Iterator[QCBlock]:
        """Pass 2: the kept cells of each block, on the kept genes, counts and normalised log1p."""
        enough, genes = self._plan()
        names = self.cells.var_names[genes]
        mt = np.asarray(names.str.startswith(("MT-", "mt-")))
        metrics, var_cells, var_total, kept_rows = [], np.zeros(len(names)), np.zeros(len(names)), []
        for start, counts in self._blocks():
            rows = np.flatnonzero(enough[start : start + counts.shape[0]])
            counts = _take(counts, rows, genes)
            total = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
            total_mt = counts @ mt.astype(np.float64)
            pct = np.divide(100 * total_mt, total, out=np.zeros_like(total), where=total > 0)
            var_cells += np.bincount(counts.indices, minlength=len(names))
            var_total += np.asarray(counts.sum(axis=0), dtype=np.float64).ravel()
            keep = pct <= self.thresholds.max_mito_pct
            metrics.append((np.diff(counts.indptr)[keep], total[keep], total_mt[keep], pct[keep]))
            kept_rows.append(start + rows[keep])
            counts = _take(counts, np.flatnonzero(keep), slice(None))
            values = counts.copy()
            scale = (TARGET_SUM / total[keep]).astype(np.float32)
            values.data *= np.repeat(scale, np.diff(values.indptr))
            np.log1p(values.data, out=values.data)
            yield QCBlock(counts, values)
        rows = np.concatenate(kept_rows)
        self.report["cells_removed_mito"] = int(enough.sum()) - len(rows)
        if not len(rows):
            raise nothing_passes({**self.report, "cells_left": 0}, self.source, self.thresholds)
        detected, total, total_mt, pct = (np.concatenate(m) for m in zip(*metrics, strict=True))
        self.obs = pd.DataFrame(
            {
                "n_genes_by_counts": detected.astype(np.int32),
                "total_counts": total.astype(np.float32),
                "total_counts_mt": total_mt.astype(np.float32),
                "pct_counts_mt": pct.astype(np.float32),
            },
            index=self.cells.obs_names[rows],
        )
        n_cells = int(enough.sum())
        self.var = pd.DataFrame(
            {
                "mt": mt,
                "n_cells_by_counts": var_cells.astype(np.int32),
                "mean_counts": (var_total / n_cells).astype(np.float32),
                "pct_dropout_by_counts": (100 * (1 - var_cells / n_cells)).astype(np.float32),
                "total_counts": var_total.astype(np.float32),
            },
            index=names,
        )
        self.report.update(cells_out=len(rows), genes_out=len(names))


def quality_control(adata: ad.AnnData, source: str = "matrix") -> tuple[ad.AnnData, dict[str, int]]:
    """`StreamingQC` of an AnnData held in memory: the kept cells' log1p values in X, their raw
    counts in `layers["counts"]`, the metrics in obs and var; a matrix nothing of which passes is
    an SSDAInputError saying what each rule removed."""
    qc = StreamingQC(adata, source)
    blocks = list(qc.blocks())
    assert qc.obs is not None and qc.var is not None
    obs = adata.obs.loc[qc.obs.index].join(qc.obs)
    out = ad.AnnData(
        sparse.vstack([b.values for b in blocks], format="csr"),
        obs=obs,
        var=adata.var.loc[qc.var.index].join(qc.var),
        layers={"counts": sparse.vstack([b.counts for b in blocks], format="csr")},
        uns={"log1p": {"base": None}},
    )
    return out, qc.report
