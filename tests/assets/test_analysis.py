"""The analysis assets on the demo data, whose planted truth is known."""

import dagster as dg
import pytest

from ssda_assets.operations.pipeline import run_pipeline
from tests.platform_helpers import make_platform

TRAIN = {"epochs": 8, "repetitions": 2}
PC9 = dg.MultiPartitionKey({"drug": "erlotinib", "dataset": "pc9_erlotinib"})


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(tmp_path_factory.mktemp("analysis"), monkeypatch)
        summary, failures = run_pipeline(platform.instance, TRAIN)
        assert failures == []
        yield platform


def latest(platform, asset: str, task: str) -> dict:
    records = platform.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[task]), limit=1
    ).records
    assert records, (asset, task)
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_cell_predictions_table_and_scored_h5ad(analysed):
    rows = analysed.query(
        "SELECT dataset, count(*) AS n, min(score) >= 0 AND max(score) <= 1 AS bounded "
        "FROM cell_predictions WHERE drug = ? GROUP BY dataset",
        ["bortezomib"],
    )
    assert rows.to_dict("records") == [{"dataset": "mcf7_bortezomib", "n": 389, "bounded": True}]
    scored = analysed.paths.data / "predictions" / "bortezomib" / "mcf7_bortezomib" / "scored.h5ad"
    import anndata as ad

    adata = ad.read_h5ad(scored)
    assert {"ssda_score", "ssda_score_std", "ssda_label"} <= set(adata.obs) and "X_ssda" in adata.obsm
    assert adata.X is None and not adata.layers  # the cells' matrix is kept once, in sc_dataset
    cells = ad.read_h5ad(analysed.paths.sc_dataset("mcf7_bortezomib"), backed="r")
    assert list(adata.obs_names) == list(cells.obs_names)


def test_resistance_rises_over_the_time_course(analysed):
    meta = latest(analysed, "temporal_drift", "mcf7_bortezomib|bortezomib")
    assert meta["pct_resistant_last"] > meta["pct_resistant_first"]
    assert meta["kendall_tau"] > 0 and meta["trend_p_value"] < 0.05
    steps = analysed.query(
        "SELECT * FROM temporal_drift WHERE dataset = ? AND kind = 'step'", ["mcf7_bortezomib"]
    )
    assert len(steps) == 3 and steps["p_value"].between(0, 1).all()
    assert "data:image/png;base64," in meta["plots"]


def test_drug_holiday_restores_sensitivity(analysed):
    points = analysed.query(
        "SELECT name, pct_resistant FROM temporal_drift WHERE dataset = ? AND kind = 'time_point'",
        ["pc9_erlotinib"],
    ).set_index("name")["pct_resistant"]
    assert points["D19DMSO"] < points["D19ERL"]  # more sensitive after the holiday than re-treated
    contrast = analysed.query(
        "SELECT delta_pct, p_value FROM temporal_drift WHERE dataset = ? AND kind = 'contrast' "
        "AND name LIKE 'holiday_vs_retreated%'",
        ["pc9_erlotinib"],
    )
    assert contrast["delta_pct"].iloc[0] > 0


def test_dataset_without_time_points_skips_temporal_drift(analysed):
    records = analysed.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("temporal_drift"), asset_partitions=["jhu006_gefitinib|gefitinib"]
        ),
        limit=1,
    ).records
    assert records == []  # skipped, not failed: the pipeline reported no failure


def test_attribution_recovers_planted_genes_and_is_complete(analysed):
    meta = latest(analysed, "attribution_report", "pc9_erlotinib|erlotinib")
    planted = set(analysed.truth["programs"]["Erlotinib"])
    import pandas as pd

    genes = pd.read_parquet(analysed.paths.reports / "erlotinib__pc9_erlotinib" / "attribution_genes.parquet")
    top20 = genes.sort_values("ig_all", ascending=False)["gene"].head(20)
    assert top20.isin(planted).sum() >= 10, sorted(top20)
    assert meta["ig_completeness_max_gap"] < 0.01
    html = (analysed.paths.reports / "erlotinib__pc9_erlotinib" / "attribution.html").read_text()
    assert "Top 20 genes" in html and "data:image/png;base64," in html
    run_id = (
        analysed.mlflow.client().get_model_version_by_alias("ssda-erlotinib-pc9-erlotinib", "champion").run_id
    )
    logged = {a.path for a in analysed.mlflow.client().list_artifacts(run_id, "attribution")}
    assert logged == {"attribution/attribution.html"}  # the champion's MLflow run shows the report


def test_latent_space_separates_classes_better_than_raw(analysed):
    meta = latest(analysed, "latent_map", "jhu006_gefitinib|gefitinib")
    assert meta["silhouette_latent"] > meta["silhouette_raw"]


def test_markers_found_between_predicted_groups(analysed):
    meta = latest(analysed, "resistance_markers", "mcf7_bortezomib|bortezomib")
    assert meta["markers"] > 0 and "fraction_t0" in meta["fraction_expressing"]


def test_predictions_follow_a_new_champion_only(analysed):
    """cell_predictions is requested after trained_model moves the champion, not after a worse training."""
    platform = analysed
    selection = dg.AssetSelection.assets("cell_predictions")
    state = {"cursor": None}

    def requested() -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=platform.defs, instance=platform.instance, asset_selection=selection, cursor=state["cursor"]
        )
        state["cursor"] = result.cursor
        return {
            str(k)
            for r in result.results
            for k in r.true_subset.expensively_compute_partition_keys()
            if r.key == dg.AssetKey("cell_predictions")
        }

    requested()  # first evaluation initialises the condition's state
    assert requested() == set()

    def run(**changes):
        return platform.materialize(
            ["trained_model"],
            partition_key=PC9,
            run_config={"ops": {"trained_model": {"config": {**TRAIN, **changes}}}},
        )

    worse = run(method="target_only", epochs=1, lr=1e-7)
    assert (
        "champion stays"
        in worse.get_asset_materialization_events()[0].materialization.metadata["alias_audit"].value
    )
    assert "pc9_erlotinib|erlotinib" not in requested()
    better = run(epochs=20)
    assert (
        "champion: v1 → v3"
        in better.get_asset_materialization_events()[0].materialization.metadata["alias_audit"].value
    )
    assert "pc9_erlotinib|erlotinib" in requested()


def test_task_without_champion_fails_with_the_training_to_run(analysed):
    analysed.instance.add_dynamic_partitions("drug", ["bortezomib"])
    key = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "mcf7_bortezomib"})
    result = analysed.materialize(["cell_predictions"], partition_key=key, raise_on_error=False)
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "ssda-gefitinib-mcf7-bortezomib" in message and "materialize trained_model" in message
