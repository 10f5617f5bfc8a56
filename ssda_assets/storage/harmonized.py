"""The harmonized zone read back: what training and the benchmark fit on.

Above `max_target_cells` the target is a seeded sample stratified by label and time point, read
row group by row group, so a training's memory follows the cap, not the dataset: the model is fit
and selected on the sample and scores every cell afterwards (cell_predictions).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ssda_assets.raw.ingest import LABEL, TIME
from ssda_model.analysis.sampling import strata_of, stratified_sample


def read_target(path: Path, max_cells: int = 0, seed: int = 0) -> pd.DataFrame:
    """target.parquet whole, or a seeded sample of at most `max_cells` cells (0: every cell)
    stratified by label and time point, taken row group by row group."""
    file = pq.ParquetFile(path)
    keys = file.read(columns=[LABEL, TIME]).to_pandas()
    rows = stratified_sample(strata_of(keys[LABEL].to_numpy(), keys[TIME].to_numpy()), max_cells, seed)
    if len(rows) == len(keys):
        return file.read().to_pandas()
    pieces, offset = [], 0
    for group in range(file.num_row_groups):
        size = file.metadata.row_group(group).num_rows
        take = rows[(rows >= offset) & (rows < offset + size)] - offset
        if len(take):
            pieces.append(file.read_row_group(group).take(take).to_pandas())
        offset += size
    return pd.concat(pieces, ignore_index=True)


def read_harmonized(folder: Path, task: str, max_target_cells: int = 0) -> tuple[ad.AnnData, ad.AnnData, str]:
    """Source and target AnnData from harmonized_expression's files of `task` (drug/dataset), the
    target sampled above `max_target_cells` (0: every cell), and a hash of the files; a task not
    harmonized yet is a failure that says what to materialize."""
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
        frames[part] = read_target(path, max_target_cells) if part == "target" else pd.read_parquet(path)

    def as_anndata(frame: pd.DataFrame) -> ad.AnnData:
        return ad.AnnData(
            X=frame[genes].to_numpy(np.float32),
            var=pd.DataFrame(index=genes),
            obs=pd.DataFrame({LABEL: frame[LABEL].to_numpy()}, index=frame.index.astype(str)),
        )

    source, target = frames["source"].set_index("sample_id"), frames["target"].set_index("cell_id")
    return as_anndata(source), as_anndata(target), digest.hexdigest()[:16]
