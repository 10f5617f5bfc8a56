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
from pathlib import Path

import h5py
import numpy as np
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
    wanted = set(model.genes)
    # the model's genes, duplicates included (align averages them): the rest is never densified
    columns = np.array([i for i, g in enumerate(var_names) if g in wanted])
    kept_names = [var_names[i] for i in columns]
    n_obs = backed.n_obs
    check_chunk_memory(chunk_size, n_obs, len(columns), len(model.genes))
    means, stds = np.empty(n_obs, np.float32), np.empty(n_obs, np.float32)

    def write(staging: Path) -> None:
        if copy_matrix:
            shutil.copyfile(input_path, staging)
        with h5py.File(staging, "r+" if copy_matrix else "w") as handle:
            if not copy_matrix:
                write_elem(handle, "var", backed.var)
                handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
            obsm = handle.require_group("obsm")
            if "X_ssda" in obsm:
                del obsm["X_ssda"]
            features = obsm.create_dataset(
                "X_ssda", shape=(n_obs, model.config.predictor_dim), dtype="float32"
            )
            features.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
            warned = False
            for start in range(0, n_obs, chunk_size):
                stop = min(start + chunk_size, n_obs)
                values = _chunk_values(
                    backed.X[start:stop], columns, backed.obs_names[start:stop], var_names, str(input_path)
                )
                if not warned and (values < 0).any():
                    warnings.warn(
                        f"{input_path}: X has negative values; log-scale expression was expected "
                        "(fine for data that is already z-scored)",
                        SSDAInputWarning,
                        stacklevel=3,
                    )
                    warned = True
                x, _ = model.align_values(values, kept_names, str(input_path))
                means[start:stop], stds[start:stop], features[start:stop] = model.score(x, device)
            obs = backed.obs.copy()
            obs["ssda_score"], obs["ssda_score_std"] = means, stds
            obs["ssda_label"] = np.where(means >= 0.5, "sensitive", "resistant")
            if "obs" in handle:
                del handle["obs"]
            write_elem(handle, "obs", obs)
            uns = handle.require_group("uns")
            if "ssda" in uns:
                del uns["ssda"]
            write_elem(
                uns,
                "ssda",
                {
                    "model": model_path,
                    "method": model.config.method,
                    "genes_used": [g for g in model.genes if g not in set(missing)],
                    "genes_missing": missing,
                    "n_models": len(model.state_dicts),
                    **(provenance or {}),
                },
            )

    try:
        replace_folder(output_path, write)
    finally:
        close_h5ad(backed)
    return {"cells": n_obs, "sensitive": int((means >= 0.5).sum()), "genes_missing": len(missing)}
