"""Demo datasets at real size, for the large-dataset test and `bench/scale.py`: never shipped, made.

`write_scaled_dataset` resamples the cells of the demo's bortezomib time course (its first and
last time points, so labels come from time as in the demo) to any number of cells, and pads the
genes with sparse filler genes to any width at about the density of a 10x experiment (9 %
nonzero). The planted response program stays in the demo's genes, so a model still has something
to find. Written as .h5ad or as a 10x folder (entries grouped by cell, as Cell Ranger writes
them), a block of cells at a time so that a million cells need no more memory than a thousand,
with a dataset.yaml the raw zone picks up.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from scipy import sparse

from ssda_model.data.readers import H5adRows

TEMPLATE = "mcf7_bortezomib"
FIRST, LAST = "t0", "t96"
BLOCK = 10_000  # cells generated at once: ~36 M filler entries at 20,000 genes


def _filler(rng: np.random.Generator, n_cells: int, n_genes: int, density: float) -> sparse.csr_matrix:
    """Counts of genes that carry no signal: 1-3 reads in `density` of the entries, placed by
    geometric gaps over the flattened block (a Bernoulli process), so no dense mask is made."""
    size = n_cells * n_genes
    if not size:
        return sparse.csr_matrix((n_cells, n_genes), dtype=np.float32)
    gaps = rng.geometric(density, int(size * density * 1.05) + 1_000)
    positions = np.cumsum(gaps, dtype=np.int64) - 1
    while positions[-1] < size:  # rarely: the draw fell short of the block
        more = rng.geometric(density, int(size * density * 0.05) + 1_000)
        positions = np.concatenate([positions, positions[-1] + np.cumsum(more, dtype=np.int64)])
    positions = positions[positions < size]
    counts = rng.integers(1, 4, len(positions)).astype(np.float32)
    return sparse.csr_matrix((counts, (positions // n_genes, positions % n_genes)), shape=(n_cells, n_genes))


def _blocks(
    raw: Path, n_cells: int, n_genes: int, density: float, seed: int
) -> tuple[list[str], np.ndarray, Iterator[sparse.csr_matrix]]:
    """The genes, every cell's time point, and the counts `BLOCK` cells at a time."""
    template = ad.read_h5ad(raw / "datasets" / TEMPLATE / "counts.h5ad")
    template = template[template.obs["time"].isin([FIRST, LAST]).to_numpy()]
    signal = sparse.csr_matrix(template.X, dtype=np.float32)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, template.n_obs, n_cells)
    pad = max(0, n_genes - template.n_vars)
    genes = list(template.var_names) + [f"FILLER{i:05d}" for i in range(pad)]

    def blocks() -> Iterator[sparse.csr_matrix]:
        for start in range(0, n_cells, BLOCK):
            picked = rows[start : start + BLOCK]
            yield sparse.hstack([signal[picked], _filler(rng, len(picked), pad, density)], format="csr")

    return genes, template.obs["time"].astype(str).to_numpy()[rows], blocks()


def _write_mtx(path: Path, blocks: Iterator[sparse.csr_matrix], n_genes: int, n_cells: int) -> None:
    """A genes × cells MatrixMarket file, its entries grouped by cell; the header, which needs the
    number of entries, is written last in front of the entries."""
    body, entries, start = path.with_suffix(".entries"), 0, 0
    options = pacsv.WriteOptions(include_header=False, delimiter=" ")
    with pa.OSFile(str(body), "wb") as sink:
        for block in blocks:
            cells = np.repeat(np.arange(start, start + block.shape[0], dtype=np.int32), np.diff(block.indptr))
            table = pa.table(
                {"gene": block.indices + 1, "cell": cells + 1, "count": block.data.astype(np.int32)}
            )
            pacsv.write_csv(table, sink, options)
            entries, start = entries + block.nnz, start + block.shape[0]
    with open(path, "wb") as out, open(body, "rb") as rest:
        out.write(
            f"%%MatrixMarket matrix coordinate integer general\n{n_genes} {n_cells} {entries}\n".encode()
        )
        shutil.copyfileobj(rest, out, 16 << 20)
    body.unlink()


def write_scaled_dataset(
    raw: str | Path,
    name: str,
    n_cells: int,
    n_genes: int = 20_000,
    *,
    density: float = 0.09,
    fmt: str = "h5ad",
    seed: int = 0,
) -> Path:
    """Write dataset `name` (bortezomib, labels from time: t0 sensitive, t96 resistant) under
    `raw/datasets/`, as .h5ad or a 10x folder with a cells table; returns its folder."""
    raw = Path(raw)
    genes, time, blocks = _blocks(raw, n_cells, n_genes, density, seed)
    obs = pd.DataFrame(
        {"time": time}, index=pd.Index([f"CELL{i:07d}" for i in range(n_cells)], name="barcode")
    )
    folder = raw / "datasets" / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "description": f"{n_cells:,} resampled demo cells × {len(genes):,} genes (scale test)",
        "drugs": ["Bortezomib"],
        "time": {"column": "time", "order": [FIRST, LAST], "sensitive": [FIRST], "resistant": [LAST]},
    }
    if fmt == "10x":
        matrix = folder / "matrix"
        matrix.mkdir(exist_ok=True)
        _write_mtx(matrix / "matrix.mtx", blocks, len(genes), n_cells)
        features = pd.DataFrame({"id": [f"ENSG_SCALE{i:05d}" for i in range(len(genes))], "name": genes})
        features.assign(type="Gene Expression").to_csv(
            matrix / "features.tsv", sep="\t", header=False, index=False
        )
        pd.Series(obs.index).to_csv(matrix / "barcodes.tsv", header=False, index=False)
        obs.to_csv(folder / "cells.csv")
        manifest.update(matrix="matrix", obs="cells.csv", gene_id="symbol")
    else:
        out = H5adRows(folder / "counts.h5ad")
        try:
            for block in blocks:
                out.append("X", block)
            out.finish(obs.rename_axis(None), pd.DataFrame(index=genes))
        finally:
            out.close()
        manifest["matrix"] = "counts.h5ad"
    (folder / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder
