"""Bounded storage: a task retrained many times keeps the files of its champion, its challenger and
its last K versions only; aliases never move and the champion still loads
(ssda_assets/registry/retention.py)."""

import dagster as dg
import pytest

from ssda_assets.registry.retention import TAG
from ssda_assets.registry.uri import load_registered
from ssda_assets.registry.versions import CHALLENGER, CHAMPION, champion_model, model_name, native_files
from ssda_assets.resources import MLflowTracking
from ssda_model.errors import SSDAInputError

TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})
NAME = model_name("gefitinib", "jhu006_gefitinib")
TINY = {"epochs": 1, "repetitions": 1}


def train(platform):
    result = platform.materialize(
        ["trained_model"], partition_key=TASK, run_config={"ops": {"trained_model": {"config": TINY}}}
    )
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def with_policy(platform, keep: int, mode: str) -> None:
    current = platform.mlflow
    platform.mlflow = MLflowTracking(
        tracking_uri=current.tracking_uri,
        artifact_root=current.artifact_root,
        keep_versions=keep,
        retention=mode,
    )


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """Version 1 made champion for good (its AUC tag raised), then four more trainings with K = 2."""
    from tests.platform_helpers import make_platform

    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(tmp_path_factory.mktemp("home"), monkeypatch)
        platform.materialize_data_assets([("gefitinib", "jhu006_gefitinib")])
        with_policy(platform, keep=2, mode="archive")
        first = train(platform)
        platform.mlflow.client().set_model_version_tag(NAME, "1", "auc", "1.0")  # nothing beats it
        later = [train(platform) for _ in range(4)]
        yield platform, [first, *later]


def files_of(client, version: int) -> dict:
    return native_files(client, NAME, version)[1]


def test_only_champion_challenger_and_last_k_keep_their_files(retrained):
    platform, runs = retrained
    client = platform.mlflow.client()
    aliases = client.get_registered_model(NAME).aliases
    assert aliases == {CHAMPION: 1, CHALLENGER: 5}  # untouched by retention
    for version in (1, 4, 5):
        assert files_of(client, version), f"v{version} lost its files"
        assert TAG not in client.get_model_version(NAME, str(version)).tags
    for version in (2, 3):
        record = client.get_model_version(NAME, str(version))  # archive: the record stays
        assert "files removed by retention" in record.tags[TAG]
        assert (
            not (platform.home / "mlartifacts" / "ssda-gefitinib" / "models" / record.source[9:])
            .joinpath("artifacts")
            .exists()
        )
        run = client.get_run(record.run_id)
        assert run.data.tags[TAG] and client.list_artifacts(record.run_id) == []
        assert run.data.metrics["mean_auc"] == pytest.approx(float(record.tags["auc"]))  # history stays
    assert "archived (files removed) v3" in runs[4]["retention"]
    with pytest.raises(SSDAInputError, match="version 2 of .*files removed by retention"):
        load_registered(f"models:/{NAME}/2", platform.mlflow.tracking_uri)
    assert "v3" in client.get_registered_model(NAME).tags[TAG]


def test_the_champion_still_loads_and_its_run_keeps_no_second_copy(retrained):
    platform, _ = retrained
    client = platform.mlflow.client()
    model, champion = champion_model(client, NAME, platform.paths.model_cache)
    assert champion.version == 1 and model.genes
    assert "ssda_model" not in {a.path for a in client.list_artifacts(champion.run_id)}


def test_delete_mode_removes_the_records_too_and_never_an_aliased_version(retrained):
    platform, _ = retrained
    with_policy(platform, keep=2, mode="delete")
    try:
        result = train(platform)  # v6: keeps champion v1, challenger v6 and v5; deletes v2-v4
    finally:
        with_policy(platform, keep=2, mode="archive")
    client = platform.mlflow.client()
    numbers = sorted(int(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))
    assert numbers == [1, 5, 6] and "deleted v2, v3, v4" in result["retention"]  # archived ones too
    deleted = client.search_runs(
        [client.get_experiment_by_name("ssda-gefitinib").experiment_id],
        "tags.ssda_retention LIKE '%version 4 deleted%'",
        run_view_type=3,
    )
    assert [r.info.lifecycle_stage for r in deleted] == ["deleted"]
    assert client.get_registered_model(NAME).aliases == {CHAMPION: 1, CHALLENGER: 6}
    assert champion_model(client, NAME, platform.paths.model_cache)[1].version == 1
