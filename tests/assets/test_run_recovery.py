"""A training killed with -9 blocks nothing; the MLflow run follows the training's life; the
registry never serves another model than the configured store's champion."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import anndata as ad
import dagster as dg
import mlflow
import pytest

from ssda_assets.operations.run_health import fail_dead_runs
from ssda_assets.registry.training_run import close_abandoned_runs
from ssda_assets.registry.versions import CHAMPION, model_name, register_version
from ssda_assets.resources import MLflowTracking
from tests.helpers import REPO
from tests.platform_helpers import make_platform

TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})
NAME = model_name("gefitinib", "jhu006_gefitinib")
TINY = {"epochs": 2, "repetitions": 1}
# What `make demo` does for one task, in a process of its own that the test can kill.
TRAIN_SCRIPT = """
import json, sys
import dagster as dg
from ssda_assets.definitions import defs
from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env
with dg.DagsterInstance.get() as instance:
    dg.materialize([defs().get_assets_def("trained_model")], instance=instance,
                   partition_key=dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"}),
                   resources={"paths": paths_from_env(), "warehouse": warehouse_from_env(),
                              "mlflow_tracking": mlflow_from_env()},
                   run_config={"ops": {"trained_model": {"config": json.loads(sys.argv[1])}}})
"""


@pytest.fixture
def gefitinib(tmp_path, monkeypatch):
    """A platform with a real sqlite instance (the repository's dagster.yaml: pools, monitoring)
    and the gefitinib task's data materialized."""
    platform = make_platform(tmp_path, monkeypatch, persistent=True)
    platform.materialize_data_assets([("gefitinib", "jhu006_gefitinib")])
    return platform


def train(platform, raise_on_error=True, **config):
    return platform.materialize(
        ["trained_model"],
        partition_key=TASK,
        raise_on_error=raise_on_error,
        run_config={"ops": {"trained_model": {"config": {**TINY, **config}}}},
    )


def running_training(client, deadline: float):
    """The MLflow run of the training once it is RUNNING and has logged an epoch (or None)."""
    while time.time() < deadline:
        experiment = client.get_experiment_by_name("ssda-gefitinib")
        runs = (
            client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
            if experiment
            else []
        )
        if runs and client.get_metric_history(runs[0].info.run_id, "rep1/val_auc"):
            return runs[0]
        time.sleep(0.5)
    return None


def test_killed_training_is_failed_its_slot_freed_and_the_next_training_succeeds(gefitinib):
    platform, instance = gefitinib, gefitinib.instance
    client = platform.mlflow.client()
    worker = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, json.dumps({"epochs": 3000, "repetitions": 1})],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = running_training(client, time.time() + 180)
        assert run is not None, "the training never showed a RUNNING MLflow run with live epoch metrics"
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        epochs_seen = len(client.get_metric_history(run.info.run_id, "rep1/val_auc"))
        assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    (stale,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert epochs_seen >= 1 and stale.run_id == run.data.tags["dagster_run_id"]

    assert fail_dead_runs(instance) == [stale.run_id]
    assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    assert fail_dead_runs(instance) == []  # idempotent: nothing else is dead

    result = train(platform)  # would wait for the slot for ever before the fix
    assert result.success
    killed = client.get_run(run.info.run_id)
    assert killed.info.status == "FAILED" and "killed or crashed" in killed.data.tags["error"]
    (version,) = client.search_model_versions(f"name = '{NAME}'")
    assert version.run_id != run.info.run_id  # the killed training registered nothing
    assert client.get_model_version(NAME, version.version).aliases


def test_mlflow_run_fails_with_the_error_when_training_raises(gefitinib):
    client = gefitinib.mlflow.client()
    result = train(gefitinib, raise_on_error=False, shots="500")
    assert not result.success
    (run,) = client.search_runs([client.get_experiment_by_name("ssda-gefitinib").experiment_id])
    assert run.info.status == "FAILED" and "500" in run.data.tags["error"]
    assert (
        client.search_registered_models(f"name = '{NAME}'") == []
        or client.search_model_versions(f"name = '{NAME}'") == []
    )


def test_a_registration_cut_short_leaves_no_version(gefitinib, monkeypatch):
    client = gefitinib.mlflow.client()
    assert train(gefitinib).success
    (first,) = client.search_model_versions(f"name = '{NAME}'")

    def broken(*args, **kwargs):
        raise RuntimeError("tracking server went away")

    monkeypatch.setattr("ssda_assets.registry.versions.apply_aliases", broken)
    mlflow.set_tracking_uri(gefitinib.mlflow.tracking_uri)
    with pytest.raises(RuntimeError):
        register_version(client, f"runs:/{first.run_id}/model", NAME, 0.9, "strict/target", {"task": "x"})
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == [first.version]


def test_abandoned_run_is_closed_and_its_unaliased_version_removed(gefitinib):
    client = gefitinib.mlflow.client()
    experiment = gefitinib.mlflow.experiment_id("ssda-gefitinib")
    task = "gefitinib/jhu006_gefitinib"
    dead = client.create_run(experiment, tags={"task": task, "dagster_run_id": "no-such-dagster-run"})
    client.create_registered_model(NAME)
    orphan = client.create_model_version(NAME, f"runs:/{dead.info.run_id}/model", run_id=dead.info.run_id)
    assert close_abandoned_runs(client, experiment, task, gefitinib.instance) == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.status == "FAILED"
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == []
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    assert orphan.run_id == dead.info.run_id


def champion_of(platform) -> tuple[dict, ad.AnnData]:
    result = platform.materialize(["cell_predictions"], partition_key=TASK)
    event = result.get_asset_materialization_events()[0]
    scored = ad.read_h5ad(
        platform.paths.data / "predictions" / "gefitinib" / "jhu006_gefitinib" / "scored.h5ad"
    )
    return {k: v.value for k, v in event.materialization.metadata.items()}, scored


def test_after_a_registry_reset_cells_are_scored_by_the_new_champion(gefitinib):
    platform = gefitinib
    platform.materialize(["sc_dataset"], partition_key="jhu006_gefitinib")
    assert train(platform).success
    before, _ = champion_of(platform)
    old_run = before["champion_run_id"]

    # Another store (a reset one, or MLFLOW_TRACKING_URI pointing elsewhere): versions restart at 1,
    # and the cache under data/models, which both stores share, must not serve the old model.
    platform.mlflow = MLflowTracking(
        tracking_uri=f"sqlite:///{platform.home / 'other.db'}",
        artifact_root=str(platform.home / "other-artifacts"),
    )
    assert train(platform).success
    client = platform.mlflow.client()
    new_run = client.get_model_version_by_alias(NAME, CHAMPION).run_id
    after, scored = champion_of(platform)
    assert after["champion_version"] == before["champion_version"] == 1  # same number, another model
    assert after["champion_run_id"] == new_run != old_run
    assert scored.uns["ssda"]["model_run_id"] == new_run


def test_damaged_cache_is_fetched_again_and_lost_artifacts_name_the_training(gefitinib):
    platform = gefitinib
    platform.materialize(["sc_dataset"], partition_key="jhu006_gefitinib")
    assert train(platform).success
    meta, _ = champion_of(platform)
    cached = platform.paths.data / "models" / NAME / meta["champion_run_id"]
    weights = next(p for p in cached.rglob("*.pt"))
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])  # an interrupted copy
    again, _ = champion_of(platform)
    assert again["champion_run_id"] == meta["champion_run_id"] and weights.stat().st_size == size

    shutil.rmtree(platform.home / "mlartifacts")
    shutil.rmtree(platform.paths.data / "models")
    result = platform.materialize(["cell_predictions"], partition_key=TASK, raise_on_error=False)
    (failure,) = result.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert NAME in message and "v1" in message and "materialize trained_model" in message
