"""File readers at the boundary: every problem becomes an SSDAInputError naming the file and field."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem, sparse_dataset, write_elem
from scipy import sparse

from ssda_model.errors import SSDAInputError, SSDAInputWarning

SENSITIVE, RESISTANT = 1, 0
_LABEL_WORDS = {
    "1": 1.0,
    "0": 0.0,
    "1.0": 1.0,
    "0.0": 0.0,
    "sensitive": 1.0,
    "resistant": 0.0,
    "true": 1.0,
    "false": 0.0,
}
_MISSING_WORDS = {"", "nan", "na", "none", "unlabeled", "unknown"}


def read_h5ad(path: str | Path) -> ad.AnnData:
    """Read an .h5ad file; a missing, unreadable or non-AnnData file is one clear error."""
    path = _h5ad_path(path)
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py and anndata raise many types for a bad file
        raise SSDAInputError(str(path), f"not a readable AnnData .h5ad file ({type(exc).__name__})") from None
    return _non_empty(adata, path)


def open_h5ad(path: str | Path, layer: str | None = None) -> ad.AnnData:
    """The cells of an .h5ad with X left on disk (sliced a block at a time: `row_blocks`), obs,
    var and obsm read, and no layer: anndata's backed mode reads every layer whole, and the raw
    counts of 10^5 cells are gigabytes. `layer` (a layer's name, or ".raw" for `adata.raw`) is
    opened as X instead, on disk the same way. Close it with `close_h5ad`."""
    path = _h5ad_path(path)
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:
        raise SSDAInputError(str(path), f"not a readable AnnData .h5ad file ({type(exc).__name__})") from None
    matrix, var = {None: ("X", "var"), ".raw": ("raw/X", "raw/var")}.get(layer, (f"layers/{layer}", "var"))
    if matrix not in handle:
        layers = ", ".join(sorted(handle["layers"])) if "layers" in handle else ""
        handle.close()
        layers = layers or "none"
        where = "no .raw" if layer == ".raw" else f"no layer {layer!r} (layers: {layers})"
        raise SSDAInputError(
            str(path), f"has {where}; the dataset.yaml's 'layer' names where the raw counts are"
        )
    try:
        stored = handle[matrix]
        adata = ad.AnnData(
            X=sparse_dataset(stored) if isinstance(stored, h5py.Group) else stored,
            obs=read_elem(handle["obs"]),
            var=read_elem(handle[var]),
            obsm=read_elem(handle["obsm"]) if "obsm" in handle else None,
        )
    except Exception as exc:
        handle.close()
        raise SSDAInputError(str(path), f"not a readable AnnData .h5ad file ({type(exc).__name__})") from None
    try:
        return _non_empty(adata, path)
    except SSDAInputError:
        handle.close()
        raise


def close_h5ad(adata: ad.AnnData) -> None:
    """Close the file under an `open_h5ad` AnnData (nothing to do for one in memory)."""
    stored = adata.X
    handle = stored.group.file if hasattr(stored, "group") else getattr(stored, "file", None)
    if isinstance(handle, h5py.File):
        handle.close()


def row_blocks(
    adata: ad.AnnData, block: int, rows: np.ndarray | None = None, columns: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, sparse.csr_matrix]]:
    """(row positions, CSR of X) a block of cells at a time from an `open_h5ad` (or in-memory)
    AnnData, only the sorted `rows` and the `columns` (a mask) asked for: memory follows the block."""
    for start in range(0, adata.n_obs, block):
        stop = min(start + block, adata.n_obs)
        wanted = np.arange(start, stop) if rows is None else rows[(rows >= start) & (rows < stop)]
        if not len(wanted):
            continue
        values = sparse.csr_matrix(adata.X[start:stop], dtype=np.float32)
        if len(wanted) < stop - start:
            values = values[wanted - start]
        yield wanted, values if columns is None else values[:, columns]


class H5adRows:
    """An .h5ad written a block of cells at a time: sparse matrices (X, or a layer as
    "layers/<name>") grow by rows, then `finish` writes obs, var and uns. Memory follows the block."""

    def __init__(self, path: str | Path) -> None:
        self.handle = h5py.File(path, "w")
        write_elem(self.handle, "layers", {})

    def append(self, key: str, block: sparse.csr_matrix) -> None:
        """Append the rows of `block` to the CSR matrix at `key`, created by the first block with a
        64-bit indptr: 10^6 cells of a 10x experiment hold more than 2^31 values."""
        if key in self.handle:
            sparse_dataset(self.handle[key]).append(block)
            return
        write_elem(self.handle, key, block)
        group = self.handle[key]
        if group["indptr"].dtype != np.int64:
            indptr = group["indptr"][...].astype(np.int64)
            del group["indptr"]
            group.create_dataset("indptr", data=indptr, maxshape=(None,), chunks=True)

    def finish(self, obs: pd.DataFrame, var: pd.DataFrame, uns: dict | None = None) -> None:
        """Write the cells' and genes' tables and close the file."""
        write_elem(self.handle, "obs", obs)
        write_elem(self.handle, "var", var)
        write_elem(self.handle, "uns", uns or {})
        for name in ("obsm", "varm", "obsp", "varp"):
            write_elem(self.handle, name, {})
        self.handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        self.close()

    def close(self) -> None:
        """Close the file, finished or not (an unfinished one is for the caller to remove)."""
        if self.handle.id.valid:
            self.handle.close()


def _h5ad_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise SSDAInputError(str(path), "file not found")
    if path.is_dir():
        raise SSDAInputError(str(path), "is a folder, expected an .h5ad file")
    return path


def _non_empty(adata: ad.AnnData, path: Path) -> ad.AnnData:
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise SSDAInputError(str(path), f"AnnData is empty ({adata.n_obs} obs × {adata.n_vars} vars)")
    return adata


def read_scad_tsv(path: str | Path, label_key: str = "response") -> ad.AnnData:
    """Read SCAD / SSDA4Drug pre-processed tables (rows = samples, a response column, gene columns).

    Values are already z-scored by the authors and are kept as they are; genes keep their
    identifiers (Entrez IDs in SCAD's files) as strings.
    """
    path = Path(path)
    if not path.exists():
        raise SSDAInputError(str(path), "file not found")
    try:
        table = pd.read_csv(path, sep="\t", index_col=0)
    except Exception as exc:
        raise SSDAInputError(
            str(path), f"not a readable tab-separated table ({type(exc).__name__})"
        ) from None
    if label_key not in table.columns:
        raise SSDAInputError(str(path), f"column {label_key!r} not found; expected a response column")
    genes = table.drop(columns=[c for c in table.columns if c in (label_key, "logIC50")])
    try:
        values = genes.to_numpy(dtype=np.float32)
    except ValueError:
        raise SSDAInputError(str(path), "gene columns must be numeric") from None
    obs = pd.DataFrame({label_key: table[label_key].to_numpy()}, index=table.index.astype(str))
    var = pd.DataFrame(index=[str(g) for g in genes.columns])
    return ad.AnnData(X=values, obs=obs, var=var)


def label_vector(adata: ad.AnnData, label_key: str, source: str, required: bool) -> np.ndarray:
    """obs[label_key] as floats 1 = sensitive, 0 = resistant, NaN = unlabeled.

    Accepts numbers, booleans and the words sensitive / resistant; anything else is an error
    that lists the offending values.
    """
    if label_key not in adata.obs.columns:
        if required:
            raise SSDAInputError(
                source,
                f"obs has no label column {label_key!r} (columns: "
                f"{', '.join(map(str, adata.obs.columns)) or 'none'})",
            )
        return np.full(adata.n_obs, np.nan)
    column = adata.obs[label_key]
    labels = np.full(adata.n_obs, np.nan)
    bad: set[str] = set()
    for i, value in enumerate(column.astype(object).to_numpy()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        word = str(value).strip().lower()
        if word in _MISSING_WORDS:
            continue
        if word in _LABEL_WORDS:
            labels[i] = _LABEL_WORDS[word]
        else:
            bad.add(str(value))
    if bad:
        shown = ", ".join(sorted(bad)[:5])
        raise SSDAInputError(
            source,
            f"obs[{label_key!r}] has values other than 1 (sensitive), 0 (resistant) or missing: {shown}",
        )
    if required and np.isnan(labels).any():
        raise SSDAInputError(
            source,
            f"obs[{label_key!r}] has {int(np.isnan(labels).sum())} missing labels; "
            "every source sample needs 1 or 0",
        )
    return labels


def expression_matrix(adata: ad.AnnData, source: str) -> np.ndarray:
    """Dense float32 copy of X after checking it is finite; negative values only warn."""
    x = adata.X
    values = x.toarray() if sparse.issparse(x) else np.asarray(x)
    values = values.astype(np.float32, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        raise SSDAInputError(
            source,
            f"X has {int((~finite).sum())} NaN or infinite values "
            f"(first at obs {adata.obs_names[rows[0]]!r}, var {adata.var_names[cols[0]]!r})",
        )
    if (values < 0).any():
        warnings.warn(
            f"{source}: X has negative values; log-scale expression was expected "
            "(fine for data that is already z-scored)",
            SSDAInputWarning,
            stacklevel=2,
        )
    return values
