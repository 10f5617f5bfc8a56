"""The Dagster catalog's conventions: code versions and owners on every asset, the standard
`dagster/row_count` and `dagster/column_schema` on every table, launchpad fields with descriptions
and choices, and the asset checks of the tables, the predictions and the champion."""

import typing

import dagster as dg
import pytest

from ssda_assets.defs.training.config import TrainConfig
from ssda_assets.storage.table_metadata import COLUMN_SCHEMA, OWNERS, ROW_COUNT
from ssda_model.config import METHODS, PROTOCOLS

TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})


def test_every_asset_has_a_code_version_and_owners():
    from ssda_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.code_version and list(node.owners) == OWNERS, key.to_user_string()


def test_every_launchpad_field_of_every_asset_is_described():
    from ssda_assets.definitions import defs

    undescribed = [
        f"{asset.key.to_user_string()}.{name}"
        for asset in defs().assets or []
        if asset.op.config_schema is not None and hasattr(asset.op.config_schema.config_type, "fields")
        for name, field in asset.op.config_schema.config_type.fields.items()
        if not field.description
    ]
    assert undescribed == []


def test_launchpad_fields_are_described_and_choices_are_listed():
    fields = TrainConfig.to_fields_dict()
    assert all(field.description for field in fields.values()), [
        n for n, f in fields.items() if not f.description
    ]
    choices = {
        name: [v.config_value for v in fields[name].config_type.enum_values]
        for name in ("method", "protocol")
    }
    assert choices == {"method": list(METHODS), "protocol": list(PROTOCOLS)}
    assert typing.get_args(TrainConfig.model_fields["scaling"].annotation) == ("per_domain", "joint")


def materialize_with_checks(platform, names, partition_key=None, run_config=None):
    """The assets and every asset check of theirs, in one run (as a job of the UI runs them)."""
    checks = [
        check
        for check in platform.defs.asset_checks or []
        if {key.asset_key.to_user_string() for key in check.check_keys} <= set(names)
    ]
    return dg.materialize(
        [platform.asset(n) for n in names] + checks,
        instance=platform.instance,
        partition_key=partition_key,
        resources={
            "paths": platform.paths,
            "warehouse": platform.warehouse,
            "mlflow_tracking": platform.mlflow,
        },
        run_config=run_config,
    )


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """One small task from the raw zone to scored cells, every asset check run with its asset."""
    from tests.platform_helpers import make_platform

    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(tmp_path_factory.mktemp("catalog"), monkeypatch)
        results = [
            materialize_with_checks(platform, ["gdsc_expression", "gdsc_response"]),
            materialize_with_checks(platform, ["gdsc_labels"], "gefitinib"),
        ]
        platform.materialize(["sc_dataset"], partition_key="jhu006_gefitinib")  # an AnnData, no table
        results.append(materialize_with_checks(platform, ["harmonized_expression", "target_dataset"], TASK))
        train = {"ops": {"trained_model": {"config": {"epochs": 8, "repetitions": 2}}}}
        results.append(materialize_with_checks(platform, ["trained_model"], TASK, train))
        results.append(materialize_with_checks(platform, ["cell_predictions"], TASK))
        yield platform, results


def test_tables_report_row_count_and_column_schema(scored):
    platform, results = scored
    for result in results:
        for event in result.get_asset_materialization_events():
            name = event.asset_key.to_user_string()
            if name == "trained_model":
                continue  # a model, not a table
            metadata = event.materialization.metadata
            assert metadata[ROW_COUNT].value > 0, name
            columns = [c.name for c in metadata[COLUMN_SCHEMA].value.columns]
            assert columns, name
    predictions = results[-1].get_asset_materialization_events()[0].materialization.metadata
    count = platform.query(
        "SELECT count(*) AS n FROM cell_predictions WHERE dataset = ?", ["jhu006_gefitinib"]
    )["n"][0]
    assert predictions[ROW_COUNT].value == count
    assert [c.name for c in predictions[COLUMN_SCHEMA].value.columns][:3] == ["drug", "dataset", "cell_id"]


def test_invariant_checks_pass_on_the_demo_data(scored):
    _, results = scored
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for r in results
        for e in r.get_asset_check_evaluations()
    }
    for name in ("gdsc_response", "gdsc_labels", "target_dataset", "cell_predictions"):
        for check in ("not_empty", "unique_keys"):
            assert evaluations[(name, check)].passed, (name, check)
    for check in ("every_qc_cell_scored", "scores_are_probabilities"):
        evaluation = evaluations[("cell_predictions", check)]
        assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, check
    assert evaluations[("cell_predictions", "every_qc_cell_scored")].metadata["unscored"].value == 0


def test_champion_is_compared_with_the_shots_alone(scored):
    _, results = scored
    (evaluation,) = [
        e for e in results[-2].get_asset_check_evaluations() if e.check_name == "beats_shots_alone"
    ]
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.severity == dg.AssetCheckSeverity.WARN and metadata["same_data"]
    assert 0 <= metadata["shots_alone_auc"] <= 1 and 0 <= metadata["champion_auc"] <= 1
    assert evaluation.passed == (metadata["champion_auc"] > metadata["shots_alone_auc"])
