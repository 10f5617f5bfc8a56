"""The data assets on the demo raw zone: contents checked against what the generator planted."""

import anndata as ad
import dagster as dg
import numpy as np
import pandas as pd

from ssda_model.outputs import MARKER
from tests.platform_helpers import TASKS


def test_gdsc_expression_parquet(built_platform):
    frame = pd.read_parquet(built_platform.paths.data / "gdsc_expression.parquet")
    truth = built_platform.truth["gdsc"]
    assert frame.shape == (truth["cell_lines"], truth["genes"] + 1)  # + cosmic_id
    assert "" not in frame.columns and frame.columns.is_unique
    event = built_platform.instance.get_latest_materialization_event(dg.AssetKey("gdsc_expression"))
    metadata = event.asset_materialization.metadata
    assert metadata["genes_dropped_empty_symbol"].value == truth["empty_symbol_rows"]
    assert metadata["rows_with_duplicated_symbol"].value == 2 * truth["duplicated_symbols"]


def test_gdsc_response_and_labels_in_duckdb(built_platform):
    response = built_platform.query("SELECT * FROM gdsc_response")
    assert set(response.columns) >= {
        "cosmic_id",
        "cell_line",
        "tissue",
        "drug",
        "drug_id",
        "dataset",
        "ln_ic50",
        "auc",
    }
    assert set(response["drug"]) == set(built_platform.truth["gdsc"]["drugs"])
    labels = built_platform.query("SELECT * FROM gdsc_labels WHERE drug = ?", ["gefitinib"])
    ic50 = response[response["drug"] == "Gefitinib"].groupby("cosmic_id")["ln_ic50"].mean()
    assert len(labels) == len(ic50)
    assert np.isclose(labels["threshold"].iloc[0], ic50.mean())
    expected = (ic50.loc[labels["cosmic_id"]] < ic50.mean()).astype(int).to_numpy()
    assert np.array_equal(labels["label"].to_numpy(), expected)
    assert set(built_platform.query("SELECT DISTINCT drug FROM gdsc_labels")["drug"]) == {d for d, _ in TASKS}


def test_sc_dataset_qc_removes_exactly_what_was_planted(built_platform):
    for _, dataset in TASKS:
        truth = built_platform.truth["datasets"][dataset]
        event = built_platform.instance.get_latest_materialization_event(dg.AssetKey("sc_dataset"))
        records = built_platform.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("sc_dataset"), asset_partitions=[dataset]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata
        for key in ("cells_removed_min_genes", "cells_removed_mito", "genes_removed_min_cells"):
            assert metadata[key].value == truth[key], (dataset, key)
        adata = ad.read_h5ad(built_platform.paths.data / "single_cell" / f"{dataset}.h5ad")
        removed = truth["cells_removed_min_genes"] + truth["cells_removed_mito"]
        assert adata.n_obs == truth["cells"] - removed
        assert not set(truth["rare_genes"]) & set(adata.var_names)
        assert np.allclose(np.expm1(adata.X[:5].toarray()).sum(axis=1), 1e4, rtol=1e-3)  # normalised + log1p
        assert event is not None


def test_labels_come_from_the_manifest(built_platform):
    jhu = ad.read_h5ad(built_platform.paths.data / "single_cell" / "jhu006_gefitinib.h5ad")
    expected = (jhu.obs["condition"] == "parental").astype(float)
    assert np.array_equal(jhu.obs["response"].to_numpy(), expected.to_numpy())
    mcf7 = ad.read_h5ad(built_platform.paths.data / "single_cell" / "mcf7_bortezomib.h5ad")
    assert list(mcf7.obs["time_point"].cat.categories) == ["t0", "t12", "t48", "t96"]
    by_time = mcf7.obs.groupby("time_point", observed=True)["response"]
    assert by_time.apply(lambda s: set(s.dropna())).to_dict() == {
        "t0": {1.0},
        "t12": set(),
        "t48": set(),
        "t96": {0.0},
    }


def test_harmonized_expression_files(built_platform):
    folder = built_platform.paths.data / "harmonized" / "gefitinib" / "jhu006_gefitinib"
    genes = (folder / "genes.txt").read_text().split()
    source, target = pd.read_parquet(folder / "source.parquet"), pd.read_parquet(folder / "target.parquet")
    assert 200 <= len(genes) <= 3000
    assert list(source.columns) == ["sample_id", "response", *genes]
    assert list(target.columns) == ["cell_id", "response", "time_point", *genes]
    labels = built_platform.query("SELECT label FROM gdsc_labels WHERE drug = ?", ["gefitinib"])
    assert len(source) == len(labels) and source["response"].sum() == labels["label"].sum()
    assert len(target) == 289


def test_target_dataset_answers_which_cells_which_labels(built_platform):
    rows = built_platform.query(
        "SELECT dataset, count(*) AS n, count(label) AS labelled FROM target_dataset "
        "WHERE drug = ? GROUP BY dataset",
        ["bortezomib"],
    )
    assert rows.to_dict("records") == [{"dataset": "mcf7_bortezomib", "n": 389, "labelled": 197}]
    times = built_platform.query(
        "SELECT DISTINCT time_point FROM target_dataset WHERE drug = ?", ["erlotinib"]
    )
    assert len(times) == 8


def test_undeclared_task_materializes_nothing(built_platform):
    result = built_platform.materialize(
        ["harmonized_expression"],
        partition_key=dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "pc9_erlotinib"}),
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert not (built_platform.paths.data / "harmonized" / "gefitinib" / "pc9_erlotinib").exists()


def test_asset_checks_pass_on_demo_data(built_platform):
    checks = built_platform.instance.event_log_storage.get_asset_check_execution_history
    for asset, check, runs in (
        ("gdsc_labels", "both_classes", 3),
        ("sc_dataset", "declared_values_occur", 3),
        ("harmonized_expression", "enough_shared_genes", 3),
        ("gdsc_expression", "finite_expression", 1),
    ):
        history = checks(dg.AssetCheckKey(dg.AssetKey(asset), check), limit=10)
        passed = [h for h in history if h.status.value == "SUCCEEDED"]
        assert len(passed) >= runs, (asset, check, [h.status for h in history])


def test_platform_folders_written_before_output_markers_are_still_replaced(platform):
    """An existing dagster_home's folders carry no .ssda-output marker; the platform owns its data
    zone, so re-materializing replaces them instead of refusing."""
    drug, dataset = TASKS[0]
    platform.materialize_data_assets([(drug, dataset)])
    folder = platform.paths.data / "harmonized" / drug / dataset
    (folder / MARKER).unlink()
    (folder / "genes.txt").write_text("stale\n")
    platform.materialize(
        ["harmonized_expression"], partition_key=dg.MultiPartitionKey({"drug": drug, "dataset": dataset})
    )
    assert (folder / "genes.txt").read_text() != "stale\n" and (folder / MARKER).is_file()
