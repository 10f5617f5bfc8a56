"""A dataset above scanpy's exact-neighbour limit through every asset of its task.

Below 8,192 cells (4,096 for other metrics) scanpy computes every distance; above it takes
pynndescent's approximate neighbours, the path real datasets take and the demo never did. Each
output must cover every cell that passed QC, and each sampled analysis must say how many it used.
"""

import tracemalloc

import anndata as ad
import dagster as dg
import pytest

from ssda_assets.catalog import register_partitions
from ssda_assets.demo_raw import write_demo_raw
from ssda_assets.demo_scale import write_scaled_dataset
from ssda_assets.ingest import ingest
from ssda_assets.manifest import read_manifest
from tests.assets.conftest import make_platform

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
        run_config={"ops": {"trained_model": {"config": {"epochs": 3, "repetitions": 2}}}},
    )
    platform.materialize(ANALYSES, partition_key=TASK)

    qc = metadata(platform, "sc_dataset", DATASET)
    cells = qc["cells_out"]
    assert 8_192 < cells < CELLS  # QC removed the template's empty droplets and high-mito cells
    count = "SELECT count(*) AS n FROM {} WHERE drug = 'bortezomib' AND dataset = ?"
    for table in ("target_dataset", "cell_predictions"):
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


def ingest_peak(raw, name: str, cells: int) -> tuple[int, int]:
    """numpy's peak allocation while one generated dataset is ingested, and its cells out."""
    folder = write_scaled_dataset(raw, name, cells, 3_000, seed=1)
    tracemalloc.start()
    try:
        done = ingest(read_manifest(folder), raw / f"{name}.h5ad", block=1_000)
        return tracemalloc.get_traced_memory()[1], int(done.report["cells_out"])
    finally:
        tracemalloc.stop()


def test_ingest_memory_does_not_grow_with_the_cells(tmp_path):
    """Twice the cells, about the same peak, far below the matrix itself: ingestion holds a block."""
    write_demo_raw(tmp_path)
    small, small_out = ingest_peak(tmp_path, "small", 15_000)
    large, large_out = ingest_peak(tmp_path, "large", 30_000)
    assert large_out > 2 * small_out - 100
    assert large < 1.2 * small, (small / 2**20, large / 2**20)
    whole = ad.read_h5ad(tmp_path / "datasets" / "large" / "counts.h5ad").X
    assert large < (whole.data.nbytes + whole.indices.nbytes) / 4  # a quarter of the sparse counts
