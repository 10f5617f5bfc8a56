"""A dataset above scanpy's exact-neighbour limit through every asset of its task.

Below 8,192 cells (4,096 for other metrics) scanpy computes every distance; above it takes
pynndescent's approximate neighbours, the path real datasets take and the demo never did. Each
output must cover every cell that passed QC, and each sampled analysis must say how many it used.
"""

import tracemalloc

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import sparse

from ssda_assets.defs.single_cell.assets import write_target
from ssda_assets.raw.catalog import register_partitions
from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_assets.raw.demo_scale import write_scaled_dataset
from ssda_assets.raw.ingest import LABEL, TIME, ingest
from ssda_assets.raw.manifest import read_manifest
from ssda_assets.storage.harmonized import read_target
from tests.platform_helpers import make_platform

CELLS, GENES = 9_000, 3_000
DATASET = "scale_bortezomib"
TASK = dg.MultiPartitionKey({"drug": "bortezomib", "dataset": DATASET})
ANALYSES = ["cell_predictions", "temporal_drift", "resistance_markers", "attribution_report", "latent_map"]


def metadata(platform, asset: str, partition) -> dict:
    records = platform.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(partition)]), limit=1
    ).records
    assert records, asset
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.mark.slow
def test_every_asset_covers_every_qc_passing_cell_above_the_exact_neighbour_limit(tmp_path, monkeypatch):
    platform = make_platform(tmp_path, monkeypatch)
    write_scaled_dataset(platform.paths.raw, DATASET, CELLS, GENES, seed=3)
    register_partitions(platform.instance, platform.paths.raw)
    platform.materialize(["gdsc_expression", "gdsc_response"])
    platform.materialize(["gdsc_labels"], partition_key="bortezomib")
    platform.materialize(["sc_dataset"], partition_key=DATASET)
    platform.materialize(["harmonized_expression", "target_dataset"], partition_key=TASK)
    platform.materialize(
        ["trained_model"],
        partition_key=TASK,
        run_config={
            "ops": {"trained_model": {"config": {"epochs": 3, "repetitions": 2, "max_target_cells": 4_000}}}
        },
    )
    platform.materialize(ANALYSES, partition_key=TASK)

    qc = metadata(platform, "sc_dataset", DATASET)
    cells = qc["cells_out"]
    assert 8_192 < cells < CELLS  # QC removed the template's empty droplets and high-mito cells
    trained = metadata(platform, "trained_model", TASK)
    assert trained["cells"] == 4_000 and trained["cells_in_dataset"] == cells  # trained on a sample...
    count = "SELECT count(*) AS n FROM {} WHERE drug = 'bortezomib' AND dataset = ?"
    for table in ("target_dataset", "cell_predictions"):  # ...scores every cell
        assert platform.query(count.format(table), [DATASET])["n"][0] == cells, table
    scored = ad.read_h5ad(platform.paths.predictions("bortezomib", DATASET) / "scored.h5ad", backed="r")
    assert scored.n_obs == cells and scored.obsm["X_ssda"].shape[0] == cells
    drift = platform.query(
        "SELECT sum(n_cells) AS n FROM temporal_drift WHERE dataset = ? AND kind = 'time_point'", [DATASET]
    )
    assert drift["n"][0] == cells

    umap = metadata(platform, "temporal_drift", TASK)
    assert umap["umap_cells"] == cells and umap["umap_sample"] == f"every cell ({cells})"
    latent = metadata(platform, "latent_map", TASK)
    assert latent["umap_cells"] == cells and latent["labelled_cells"] == cells
    assert latent["silhouette_cells"] == 2_000 and "seed 0" in latent["silhouette_sample"]
    assert -1 <= latent["silhouette_latent"] <= 1
    markers = metadata(platform, "resistance_markers", TASK)
    assert markers["cells_tested"] == cells
    attribution = metadata(platform, "attribution_report", TASK)
    assert attribution["cells"] == cells and attribution["ig_cells"] == 2_000
    assert f"2000 of {cells} cells" in attribution["ig_sample"]


def ingest_peak(raw, name: str, cells: int, fmt: str) -> tuple[int, int]:
    """numpy's peak allocation while one generated dataset is ingested, and its cells out (a 10x
    matrix's text is parsed by Arrow, 16 MB a batch, outside numpy's count)."""
    folder = write_scaled_dataset(raw, name, cells, 3_000, seed=1, fmt=fmt)
    tracemalloc.start()
    try:
        done = ingest(read_manifest(folder), raw / f"{name}.h5ad", block=1_000)
        return tracemalloc.get_traced_memory()[1], int(done.report["cells_out"])
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["h5ad", "10x"])
def test_ingest_memory_does_not_grow_with_the_cells(tmp_path, fmt):
    """Twice the cells, about the same peak, far below the matrix itself: ingestion holds a block,
    and a 10x folder is streamed into a staging .h5ad a block of cells at a time, then removed."""
    write_demo_raw(tmp_path)
    small, small_out = ingest_peak(tmp_path, "small", 15_000, fmt)
    large, large_out = ingest_peak(tmp_path, "large", 30_000, fmt)
    assert large_out > 2 * small_out - 100
    assert large < 1.2 * small, (small / 2**20, large / 2**20)
    whole = ad.read_h5ad(tmp_path / "large.h5ad").X  # after QC
    assert large < (whole.data.nbytes + whole.indices.nbytes) / 3  # a third of the sparse matrix
    assert sorted(p.name for p in tmp_path.glob("*.h5ad")) == ["large.h5ad", "small.h5ad"]  # no staging left


def test_training_reads_a_stratified_sample_of_a_large_target(tmp_path):
    obs = pd.DataFrame(
        {LABEL: np.repeat([1.0, 0.0, np.nan], [6_000, 3_000, 3_000]), TIME: np.tile(["t0", "t1"], 6_000)},
        index=[f"c{i}" for i in range(12_000)],
    )
    matrix = sparse.random(12_000, 50, density=0.1, format="csr", dtype="float32", random_state=0)
    cells = ad.AnnData(matrix, obs=obs)
    genes = list(cells.var_names)
    write_target(tmp_path / "target.parquet", (cells[i : i + 5_000] for i in range(0, 12_000, 5_000)), genes)
    assert pq.ParquetFile(tmp_path / "target.parquet").num_row_groups > 1
    assert len(read_target(tmp_path / "target.parquet")) == 12_000
    sample = read_target(tmp_path / "target.parquet", 1_200, seed=0)
    assert len(sample) == 1_200 and sample["cell_id"].is_unique
    labels = sample[LABEL]
    assert [(labels == 1).sum(), (labels == 0).sum(), labels.isna().sum()] == [600, 300, 300]
    expected = pd.read_parquet(tmp_path / "target.parquet").set_index("cell_id").loc[sample["cell_id"]]
    pd.testing.assert_frame_equal(sample.set_index("cell_id"), expected)
    again = read_target(tmp_path / "target.parquet", 1_200, seed=0)
    assert list(again["cell_id"]) == list(sample["cell_id"])
