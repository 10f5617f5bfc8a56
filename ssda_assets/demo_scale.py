"""Demo datasets at real size, for the large-dataset test and `bench/scale.py`: never shipped, made.

`write_scaled_dataset` resamples the cells of the demo's bortezomib time course (its first and
last time points, so labels come from time as in the demo) to any number of cells, and pads the
genes with sparse filler genes to any width at about the density of a 10x experiment (9 %
nonzero). The planted response program stays in the demo's genes, so a model still has something
to find. Written as .h5ad or as a 10x folder, with a dataset.yaml the raw zone picks up.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from scipy import sparse

from ssda_assets.demo_raw import _write_10x

TEMPLATE = "mcf7_bortezomib"
FIRST, LAST = "t0", "t96"


def _filler(rng: np.random.Generator, n_cells: int, n_genes: int, density: float) -> sparse.csr_matrix:
    """Counts of genes that carry no signal: 1-3 reads in `density` of the entries, drawn a block
    of cells at a time so the dense mask stays small."""
    blocks = []
    for start in range(0, n_cells, 5_000):
        mask = rng.random((min(5_000, n_cells - start), n_genes), dtype=np.float32) < density
        block = sparse.csr_matrix(mask, dtype=np.float32)
        block.data = rng.integers(1, 4, block.nnz).astype(np.float32)
        blocks.append(block)
    return sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, n_genes))


def scaled_counts(raw: Path, n_cells: int, n_genes: int, density: float, seed: int) -> ad.AnnData:
    """Cells resampled from the template's first and last time points, genes padded to `n_genes`."""
    template = ad.read_h5ad(raw / "datasets" / TEMPLATE / "counts.h5ad")
    template = template[template.obs["time"].isin([FIRST, LAST]).to_numpy()]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, template.n_obs, n_cells)
    signal = sparse.csr_matrix(template.X)[rows]
    pad = max(0, n_genes - template.n_vars)
    counts = sparse.hstack([signal, _filler(rng, n_cells, pad, density)], format="csr")
    genes = list(template.var_names) + [f"FILLER{i:05d}" for i in range(pad)]
    obs = pd.DataFrame(
        {"time": template.obs["time"].astype(str).to_numpy()[rows]},
        index=[f"CELL{i:07d}" for i in range(n_cells)],
    )
    return ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=genes))


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
    adata = scaled_counts(raw, n_cells, n_genes, density, seed)
    folder = raw / "datasets" / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "description": f"{n_cells:,} resampled demo cells × {adata.n_vars:,} genes (scale test)",
        "drugs": ["Bortezomib"],
        "time": {"column": "time", "order": [FIRST, LAST], "sensitive": [FIRST], "resistant": [LAST]},
    }
    if fmt == "10x":
        _write_10x(folder / "matrix", adata.X, list(adata.var_names), list(adata.obs_names))
        adata.obs.rename_axis("barcode").to_csv(folder / "cells.csv")
        manifest.update(matrix="matrix", obs="cells.csv", gene_id="symbol")
    else:
        adata.write_h5ad(folder / "counts.h5ad")
        manifest["matrix"] = "counts.h5ad"
    (folder / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder
