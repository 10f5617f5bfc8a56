"""Streaming `ssda predict` at atlas scale: seconds, cells per second and peak RSS per input size.

    .venv/bin/python bench/predict.py [--cells 10000 100000 1000000] [--genes 3000]

Writes a sparse .h5ad of N cells × G genes (~10 % non-zero, log1p-like values; cached under
bench/.cache), fits a small model on the same genes once, then scores each file in a fresh
process that reports its own peak RSS. Results: bench/results/predict.json and a table.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import sparse_dataset, write_elem
from scipy import sparse

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def genes(n: int) -> list[str]:
    return [f"GENE{i:04d}" for i in range(n)]


def write_cells(path: Path, n_cells: int, n_genes: int, chunk: int = 50_000) -> None:
    """Append CSR chunks so that writing never needs the whole matrix in memory."""
    rng = np.random.default_rng(n_cells)
    with h5py.File(path, "w") as handle:
        write_elem(handle, "obs", pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]))
        write_elem(handle, "var", pd.DataFrame(index=genes(n_genes)))
        for start in range(0, n_cells, chunk):
            rows = min(chunk, n_cells - start)
            block = sparse.random(
                rows, n_genes, density=0.1, format="csr", dtype=np.float32, random_state=rng
            )
            block.data = np.log1p(block.data * 20).astype(np.float32)
            if start == 0:
                write_elem(handle, "X", block)
            else:
                sparse_dataset(handle["X"]).append(block)
        for group in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            handle.create_group(group)
    ad.read_h5ad(path, backed="r").file.close()  # a readable h5ad


def model_dir(n_genes: int) -> Path:
    path = CACHE / f"model_{n_genes}"
    if not (path / "model.json").exists():
        from ssda_model.config import SSDAConfig
        from ssda_model.datasets import synthetic_pair
        from ssda_model.model import SSDAModel

        source, target = synthetic_pair(n_genes=n_genes, seed=0)
        SSDAModel.fit(source, target, SSDAConfig(epochs=2, repetitions=3)).save(path)
    return path


def score_in_child(model: Path, cells: Path, out: Path) -> dict:
    code = (
        "import json,resource,sys,time\nfrom ssda_model.model import SSDAModel\n"
        "from ssda_model.streaming import predict_file\nt=time.perf_counter()\n"
        "m=SSDAModel.load(sys.argv[1]); predict_file(m, sys.argv[2], sys.argv[3], device='cpu')\n"
        "print(json.dumps({'seconds': time.perf_counter()-t, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(model), str(cells), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--genes", type=int, default=3000)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    model = model_dir(args.genes)
    rows = []
    for n in args.cells:
        cells = CACHE / f"cells_{n}_{args.genes}.h5ad"
        if not cells.exists():
            write_cells(cells, n, args.genes)
        measured = score_in_child(model, cells, CACHE / "scored.h5ad")
        rows.append(
            {
                "cells": n,
                "genes": args.genes,
                **{k: round(v, 1) for k, v in measured.items()},
                "cells_per_second": round(n / measured["seconds"]),
            }
        )
        print(rows[-1], flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "predict.json").write_text(json.dumps(rows, indent=2))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
