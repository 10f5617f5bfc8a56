"""Shared fixtures: a small synthetic bulk / single-cell pair written as real .h5ad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssda_model.config import SSDAConfig
from ssda_model.datasets import synthetic_pair
from ssda_model.threads import THREADS_ENV, available_cores

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Small enough to train in about a second per repetition on 2 CPU cores.
FAST = SSDAConfig(encoder_dims=(64, 32, 16), predictor_dim=8, epochs=4, repetitions=2)


@pytest.fixture(scope="session")
def small_pair():
    return synthetic_pair(n_source=120, n_cells=150, n_genes=300, seed=1)


@pytest.fixture(scope="session")
def pair_files(tmp_path_factory, small_pair) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    source, target = small_pair
    source.write_h5ad(folder / "source.h5ad")
    target.write_h5ad(folder / "target.h5ad")
    return folder / "source.h5ad", folder / "target.h5ad"


@pytest.fixture(autouse=True)
def _one_thread_count_for_numerics(request, monkeypatch):
    """Tests that compare trained numbers train at one thread count: the core share lowers it while
    another ssda process trains, and kernels may split their sums by it (docs/numerics.md)."""
    if request.node.get_closest_marker("numerics"):
        monkeypatch.setenv(THREADS_ENV, str(available_cores()))
