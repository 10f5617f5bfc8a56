"""Memory estimates (ssda_model.memory): values that cannot fit are refused before training, with
the estimate."""

import time

import anndata as ad
import pandas as pd
import pytest
import torch
from scipy import sparse

from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.memory import available_bytes, estimate, n_weights
from ssda_model.module.networks import SSDANet
from tests.model.test_cli import fit_args, run_error
from tests.model.test_outputs import bench_args


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


def test_a_predict_chunk_that_cannot_fit_is_refused_before_reading(tmp_path, capsys, pair_files, small_pair):
    """An atlas-wide file (sparse, so small on disk) with --chunk-size larger than memory holds densified."""
    out = tmp_path / "model"
    assert main(fit_args(*pair_files, out)) == 0
    n_cells = 100_000
    n_genes = int(2 * available_bytes(torch.device("cpu")) // (4 * n_cells))  # twice the RAM free, densified
    genes = list(small_pair[1].var_names) + [f"FILLER{i}" for i in range(n_genes - small_pair[1].n_vars)]
    cells = ad.AnnData(
        sparse.csr_matrix((n_cells, n_genes), dtype="float32"),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=genes),
    )
    cells.write_h5ad(tmp_path / "atlas.h5ad")
    started = time.perf_counter()
    line = run_error(
        capsys,
        [
            "predict",
            "--model",
            str(out),
            "--input",
            str(tmp_path / "atlas.h5ad"),
            "--out",
            str(tmp_path / "scored.h5ad"),
            "--chunk-size",
            str(n_cells),
        ],
    )
    assert time.perf_counter() - started < 10
    assert f"chunk size {n_cells}: {n_cells} cells × {n_genes} genes densified need about" in line
    assert "use --chunk-size" in line
    assert not (tmp_path / "scored.h5ad").exists()
