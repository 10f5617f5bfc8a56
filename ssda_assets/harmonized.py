"""The harmonized zone read back: what training and the benchmark fit on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd

from ssda_assets.ingest import LABEL


def read_harmonized(folder: Path, task: str) -> tuple[ad.AnnData, ad.AnnData, str]:
    """Source and target AnnData from harmonized_expression's files of `task` (drug/dataset), and a
    hash of those files; a task not harmonized yet is a failure that says what to materialize."""
    if not (folder / "genes.txt").exists():
        raise dg.Failure(
            description=f"no harmonized data for {task} in {folder}: materialize harmonized_expression "
            "for this task first (does the dataset declare the drug?)",
            allow_retries=False,
        )
    genes = (folder / "genes.txt").read_text().split()
    digest = hashlib.sha256()
    frames = {}
    for part in ("source", "target"):
        path = folder / f"{part}.parquet"
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
        frames[part] = pd.read_parquet(path)

    def as_anndata(frame: pd.DataFrame) -> ad.AnnData:
        return ad.AnnData(
            X=frame[genes].to_numpy(np.float32),
            var=pd.DataFrame(index=genes),
            obs=pd.DataFrame({LABEL: frame[LABEL].to_numpy()}, index=frame.index.astype(str)),
        )

    source, target = frames["source"].set_index("sample_id"), frames["target"].set_index("cell_id")
    return as_anndata(source), as_anndata(target), digest.hexdigest()[:16]
