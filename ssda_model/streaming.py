"""`ssda predict` for atlases: score an .h5ad chunk by chunk in backed mode, write the result incrementally.

Peak memory is bounded by the chunk (cells of one chunk × the model's genes, densified; the other
genes stay sparse or unread) and the per-cell outputs (scores and the 32-d features), never by a
dense matrix of the whole input: the input file is copied as it is (or not at all: `copy_matrix`),
and the new obs columns, obsm["X_ssda"] and uns["ssda"] are written into the copy, a uniquely named
temporary file renamed into place: concurrent runs into one output never share a file, and the
last one to finish wins.
"""

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import write_elem
from scipy import sparse

from ssda_model.data.readers import close_h5ad, open_h5ad
from ssda_model.errors import SSDAInputError, SSDAInputWarning
from ssda_model.memory import check_chunk_memory
from ssda_model.model import SSDAModel
from ssda_model.outputs import replace_folder

CHUNK = 10_000


def _first_non_finite(chunk) -> tuple[int, int] | None:
    """(row, column) of the chunk's first NaN or infinite value, read from the stored values of a
    sparse chunk so that no gene is densified; None when all are finite."""
    if sparse.issparse(chunk):
        csr = sparse.csr_matrix(chunk)
        bad = np.flatnonzero(~np.isfinite(csr.data))
        if not len(bad):
            return None
        return int(np.searchsorted(csr.indptr, bad[0], side="right") - 1), int(csr.indices[bad[0]])
    rows, cols = np.nonzero(~np.isfinite(np.asarray(chunk)))
    return (int(rows[0]), int(cols[0])) if len(rows) else None


def _chunk_values(chunk, columns: np.ndarray, obs_names, var_names, source: str) -> np.ndarray:
    """The chunk's `columns` (the model's genes) as dense float32, the whole chunk checked finite."""
    bad = _first_non_finite(chunk)
    if bad is not None:
        raise SSDAInputError(
            source,
            f"X has NaN or infinite values (first at obs {obs_names[bad[0]]!r}, var {var_names[bad[1]]!r})",
        )
    kept = chunk[:, columns]
    return (kept.toarray() if sparse.issparse(kept) else np.asarray(kept)).astype(np.float32, copy=False)


def predict_file(
    model: SSDAModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    model_path: str = "",
    device: str = "auto",
    chunk_size: int = CHUNK,
    provenance: dict | None = None,
    copy_matrix: bool = True,
) -> dict:
    """Score every cell of an .h5ad file into a copy of it, in chunks, at bounded memory.

    Parameters
    ----------
    model
        A fitted or loaded `SSDAModel`.
    input_path
        The cells (.h5ad), read in backed mode, `chunk_size` cells at a time.
    output_path
        The scored copy, written under a unique temporary name and renamed into place.
    model_path, device
        As for `SSDAModel.predict`.
    chunk_size
        Cells scored at once; memory grows with it, not with the file.
    provenance
        More entries for ``uns["ssda"]`` (the platform records the registry version and run).
    copy_matrix
        False writes the scores alone (obs, var, obsm, uns; no X, no layers): the platform keeps
        its cells' matrix once, in the ingested dataset, whatever the number of cells.

    Returns
    -------
    Counts for the summary line: ``cells``, ``sensitive``, ``genes_missing``. The output holds
    the fields `SSDAModel.predict` sets (``obs["ssda_score"]``, ``obs["ssda_score_std"]``,
    ``obs["ssda_label"]``, ``obsm["X_ssda"]``, ``uns["ssda"]``).
    """
    input_path, output_path = Path(input_path), Path(output_path)
    backed = open_h5ad(input_path)  # X on disk, no layer read
    var_names = list(map(str, backed.var_names))
    missing = model.missing_genes(var_names, str(input_path))
    columns = _model_columns(model, var_names)
    n_obs = backed.n_obs
    check_chunk_memory(chunk_size, n_obs, len(columns), len(model.genes))
    means, stds = np.empty(n_obs, np.float32), np.empty(n_obs, np.float32)
    run_info = {
        "model": model_path,
        "method": model.config.method,
        "genes_used": [g for g in model.genes if g not in set(missing)],
        "genes_missing": missing,
        "n_models": len(model.state_dicts),
        **(provenance or {}),
    }

    def write(staging: Path) -> None:
        if copy_matrix:
            shutil.copyfile(input_path, staging)
        with h5py.File(staging, "r+" if copy_matrix else "w") as handle:
            if not copy_matrix:
                _start_scores_only(handle, backed.var)
            features = _new_features(handle, n_obs, model.config.predictor_dim)
            chunks = _scored_chunks(model, backed, columns, var_names, str(input_path), device, chunk_size)
            for rows, mean, std, feature in chunks:
                means[rows], stds[rows], features[rows] = mean, std, feature
            _replace_elem(handle, "obs", _scored_obs(backed.obs, means, stds))
            _replace_elem(handle.require_group("uns"), "ssda", run_info)

    try:
        replace_folder(output_path, write)
    finally:
        close_h5ad(backed)
    return {"cells": n_obs, "sensitive": int((means >= 0.5).sum()), "genes_missing": len(missing)}


def _model_columns(model: SSDAModel, var_names: list[str]) -> np.ndarray:
    """Positions of the model's genes in the file, duplicates included (`align_values` averages
    them): the only columns ever densified."""
    wanted = set(model.genes)
    return np.array([i for i, g in enumerate(var_names) if g in wanted])


def _start_scores_only(handle: h5py.File, var: pd.DataFrame) -> None:
    """A new AnnData file holding var alone (no X, no layers), for the scores to be written into."""
    write_elem(handle, "var", var)
    handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})


def _new_features(handle: h5py.File, n_obs: int, dim: int) -> h5py.Dataset:
    """An empty ``obsm["X_ssda"]`` (cells × `dim` float32) in place of any earlier one, filled chunk by
    chunk."""
    obsm = handle.require_group("obsm")
    if "X_ssda" in obsm:
        del obsm["X_ssda"]
    features = obsm.create_dataset("X_ssda", shape=(n_obs, dim), dtype="float32")
    features.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    return features


def _scored_chunks(
    model: SSDAModel,
    backed: ad.AnnData,
    columns: np.ndarray,
    var_names: list[str],
    source: str,
    device: str,
    chunk_size: int,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """Each chunk's rows and their (mean P(sensitive), its std, mean features), one chunk of the
    backed file in memory at a time; negative values are warned about once."""
    kept_names = [var_names[i] for i in columns]
    warned = False
    for start in range(0, backed.n_obs, chunk_size):
        rows = slice(start, min(start + chunk_size, backed.n_obs))
        values = _chunk_values(backed.X[rows], columns, backed.obs_names[rows], var_names, source)
        if not warned and (values < 0).any():
            warnings.warn(
                f"{source}: X has negative values; log-scale expression was expected "
                "(fine for data that is already z-scored)",
                SSDAInputWarning,
                stacklevel=4,  # predict_file (through write and replace_folder)
            )
            warned = True
        x, _ = model.align_values(values, kept_names, source)
        yield rows, *model.score(x, device)


def _scored_obs(obs: pd.DataFrame, means: np.ndarray, stds: np.ndarray) -> pd.DataFrame:
    """The input's obs with the score columns `SSDAModel.predict` sets."""
    obs = obs.copy()
    obs["ssda_score"], obs["ssda_score_std"] = means, stds
    obs["ssda_label"] = np.where(means >= 0.5, "sensitive", "resistant")
    return obs


def _replace_elem(group: h5py.Group, key: str, value: object) -> None:
    """`value` written as AnnData's element `key` of `group`, in place of any earlier one."""
    if key in group:
        del group[key]
    write_elem(group, key, value)
