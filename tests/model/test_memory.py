"""Memory estimates (ssda_model.memory): values that cannot fit are refused before training, with
the estimate."""

import time
import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from ssda_model import memory
from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.memory import estimate, n_weights
from ssda_model.model import SSDAModel
from ssda_model.module.networks import SSDANet
from ssda_model.streaming import predict_file
from tests.helpers import bench_args, fit_args, run_error


def test_the_weight_count_is_the_networks():
    config = SSDAConfig()
    assert n_weights(2000, config) == sum(t.numel() for t in SSDANet(2000, config).state_dict().values())


def test_the_estimate_grows_with_repetitions_genes_and_epochs():
    small = estimate(2000, 1000, SSDAConfig(repetitions=5))
    more = estimate(2000, 1000, SSDAConfig(repetitions=10))  # all ten still train together
    assert more["total"] - small["total"] == 5 * (small["per_repetition"] + small["per_member"])
    assert estimate(4000, 1000, SSDAConfig(repetitions=5))["total"] > small["total"]
    assert estimate(2000, 1000, SSDAConfig(repetitions=5, epochs=500))["total"] > small["total"]
    assert small["per_repetition"] > 4 * n_weights(2000, SSDAConfig())  # best weights, split and history kept


@pytest.mark.parametrize("command", ["fit", "benchmark"])
def test_repetitions_that_cannot_fit_are_refused_before_training(tmp_path, capsys, pair_files, command):
    repetitions = 10**9
    args = (
        fit_args(*pair_files, tmp_path / "out")
        if command == "fit"
        else bench_args(*pair_files, tmp_path / "out")
    )
    args[args.index("--repetitions") + 1] = str(repetitions)
    started = time.perf_counter()
    line = run_error(capsys, args)
    assert time.perf_counter() - started < 10
    assert f"repetitions={repetitions}: needs about" in line and " GiB is available" in line
    assert "MiB kept per repetition (300 genes" in line and "use at most" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, pair_files):
    out = tmp_path_factory.mktemp("memory") / "model"
    assert main(fit_args(*pair_files, out)) == 0
    return out


def atlas(path, model_genes, n_cells: int, n_genes: int, per_cell: int = 0):
    """A wide sparse file (`per_cell` stored values a cell): the model's genes and filler genes,
    small on disk whatever its dense size."""
    genes = list(model_genes) + [f"FILLER{i}" for i in range(n_genes - len(model_genes))]
    rng = np.random.default_rng(0)
    indices = np.sort(rng.integers(0, n_genes, (n_cells, per_cell)), axis=1).ravel()
    matrix = sparse.csr_matrix(
        (np.ones(n_cells * per_cell, "float32"), indices, np.arange(n_cells + 1) * per_cell),
        shape=(n_cells, n_genes),
    )
    matrix.sum_duplicates()
    cells = ad.AnnData(
        matrix, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]), var=pd.DataFrame(index=genes)
    )
    cells.write_h5ad(path)
    return path


def test_a_predict_chunk_that_cannot_fit_is_refused_before_reading(
    tmp_path, capsys, model_dir, small_pair, monkeypatch
):
    """--chunk-size larger than memory holds the chunk's model genes densified: refused up front."""
    n_cells, model_genes = 2_000, small_pair[1].n_vars
    monkeypatch.setattr(memory, "available_bytes", lambda device: 4 * n_cells * model_genes)
    path = atlas(tmp_path / "atlas.h5ad", small_pair[1].var_names, n_cells, 5_000)
    args = [
        "predict",
        "--model",
        str(model_dir),
        "--input",
        str(path),
        "--out",
        str(tmp_path / "scored.h5ad"),
    ]
    line = run_error(capsys, [*args, "--chunk-size", str(n_cells)])
    assert f"chunk size {n_cells}: {n_cells} cells × {model_genes} genes densified need about" in line
    assert "use --chunk-size" in line
    assert not (tmp_path / "scored.h5ad").exists()


def test_predict_densifies_only_the_models_genes(tmp_path, model_dir, small_pair):
    """30,000 cells × 20,000 genes (2.4 GB dense) score with numpy's allocations peaking far below:
    the filler genes stay sparse, one chunk of the model's genes is dense at a time."""
    path = atlas(tmp_path / "atlas.h5ad", small_pair[1].var_names, 30_000, 20_000, per_cell=200)
    model = SSDAModel.load(model_dir)
    tracemalloc.start()
    try:
        counts = predict_file(model, path, tmp_path / "scored.h5ad", chunk_size=5_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts["cells"] == 30_000
    dense = 4 * 30_000 * 20_000
    assert peak < dense / 10, f"peak {peak / 2**20:.0f} MiB of numpy allocations"
