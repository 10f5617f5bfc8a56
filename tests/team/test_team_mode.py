"""Team mode on real services: the demo data and two trainings through the Celery executor, two
trainings of one task finishing together on two workers, and a worker killed mid-training."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import dagster as dg
import psutil
import psycopg2
import pytest

from ssda_assets.operations.run_health import fail_dead_runs
from ssda_assets.operations.ui import process_tree
from ssda_assets.registry.versions import CHALLENGER, CHAMPION, model_name
from ssda_assets.resources import mlflow_from_env, warehouse_from_env
from tests.platform_helpers import make_platform
from tests.team.conftest import materialize, task_key, train, train_run_id

pytestmark = pytest.mark.team
TASKS = [("gefitinib", "jhu006_gefitinib"), ("bortezomib", "mcf7_bortezomib")]
TASK_KEYS = [task_key(*task) for task in TASKS]
NAME = model_name(*TASKS[0])
TABLES = ["gdsc_response", "gdsc_labels", "target_dataset"]


def failures(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    """The errors of the runs' events (step failures, and the executor's for a lost worker)."""
    errors = [
        getattr(event.dagster_event.event_specific_data, "error", None)
        for run_id in run_ids
        for event in instance.all_logs(run_id)
        if event.dagster_event is not None
    ]
    return [error.to_string() for error in errors if error is not None]


def succeeded(instance: dg.DagsterInstance, run_id: str) -> bool:
    return instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def celery_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key → the Celery worker that ran it, as the worker recorded it in the run's events."""
    workers = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        worker = event.event_specific_data.metadata.get("Celery worker")
        if worker is not None:
            workers[event.step_key] = worker.value
    return workers


def audit_lines(instance: dg.DagsterInstance, run_id: str) -> str:
    event = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)[0]
    return event.asset_materialization.metadata["alias_audit"].value


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.parquet")) + sorted(folder.rglob("genes.txt")):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def materialized(team):
    """The demo data of two tasks, then one tiny training of each, every step on a Celery worker."""
    runs = [materialize(["gdsc_expression", "gdsc_response"])]
    for drug, dataset in TASKS:
        runs.append(materialize(["gdsc_labels"], drug))
        runs.append(materialize(["sc_dataset"], dataset))
    runs += [materialize(["harmonized_expression", "target_dataset"], key) for key in TASK_KEYS]
    trainings = [train(drug, dataset) for drug, dataset in TASKS]
    with team.instance() as instance:
        assert all(run.success for run in runs + trainings), failures(
            instance, [r.run_id for r in runs + trainings]
        )
    return runs, trainings


def test_every_step_runs_on_a_celery_worker_and_trainings_on_the_gpu_queue(team, materialized):
    runs, trainings = materialized
    with team.instance() as instance:
        for run in runs + trainings:
            steps = {
                e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
            }
            workers = celery_workers(instance, run.run_id)
            assert steps and set(workers) == steps, run.run_id
            assert set(workers.values()) <= set(team.stack.worker_names())
            started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            assert all(
                event.dagster_event.pid != os.getpid() for event in started
            )  # not in this (orchestrating) process
        for run in trainings:
            queued = [
                e.message
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                if e.message and e.message.startswith("Submitting celery task")
            ]
            # the training on the gpu queue; its asset checks (beats_shots_alone) on the default one
            assert 'Submitting celery task for step "trained_model" to queue "gpu".' in queued
            others = [m for m in queued if 'step "trained_model" ' not in m]
            assert others and all(m.endswith('to queue "dagster".') for m in others), queued


def test_dagster_runs_are_stored_in_postgres(team, materialized):
    runs, trainings = materialized
    with (
        psycopg2.connect(team.stack.pg_url("dagster", driver="")) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT run_id, status FROM runs")
        stored = dict(cursor.fetchall())
    assert all(stored[run.run_id] == "SUCCESS" for run in runs + trainings)


def test_both_models_are_registered_in_the_mlflow_server_with_their_aliases(team, materialized):
    client = mlflow_from_env().client()
    assert client.tracking_uri == team.stack.mlflow_url
    for drug, dataset in TASKS:
        versions = client.search_model_versions(f"name = '{model_name(drug, dataset)}'")
        assert len(versions) == 1
        version = client.get_model_version(versions[0].name, versions[0].version)
        assert sorted(version.aliases) == [CHALLENGER, CHAMPION]
        run = client.get_run(version.run_id)
        assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:/")
        # Served by the server into its artifact folder: the team's stand-in for object storage. The
        # weights are stored once, in the logged model the version names (models:/m-…).
        logged = (
            team.stack.folder / "mlartifacts" / f"ssda-{drug}" / "models" / version.source[len("models:/") :]
        )
        assert (logged / "artifacts" / "artifacts" / "ssda_model" / "metrics.json").is_file()
        assert not (
            team.stack.folder / "mlartifacts" / f"ssda-{drug}" / version.run_id / "artifacts" / "ssda_model"
        ).exists()


def test_warehouse_and_data_zone_match_embedded_mode(team, materialized, tmp_path, monkeypatch):
    """Written by several workers, the DuckDB tables and the harmonized files are complete and equal
    to what the embedded mode writes from the same raw data."""
    team_warehouse, team_data = warehouse_from_env(), team.home / "data"
    embedded = make_platform(tmp_path, monkeypatch)
    embedded.materialize_data_assets(TASKS)
    for table in TABLES:
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        with team_warehouse.get_connection() as connection:
            ours = connection.execute(sql).df()
        assert len(ours) > 0 and ours.equals(embedded.query(sql)), table
    for drug, dataset in TASKS:
        folder = Path("harmonized") / drug / dataset
        assert folder_digest(team_data / folder) == folder_digest(embedded.paths.data / folder)


def test_two_trainings_of_one_task_finishing_together_leave_one_champion(team, materialized):
    client = mlflow_from_env().client()
    before = {v.version for v in client.search_model_versions(f"name = '{NAME}'")}
    with team.trainings(2) as pool:
        run_ids = list(pool.map(train_run_id, *zip(TASKS[0], TASKS[0], strict=True)))
    with team.instance() as instance:
        assert all(succeeded(instance, run_id) for run_id in run_ids), failures(instance, run_ids)
        ran_on = {celery_workers(instance, run_id)["trained_model"] for run_id in run_ids}
        audits = [audit_lines(instance, run_id) for run_id in run_ids]
    assert ran_on == set(
        team.stack.worker_names()
    )  # one on each worker, at the same time (pool gpu: 2 slots)

    versions = {
        v.version: client.get_model_version(NAME, v.version)
        for v in client.search_model_versions(f"name = '{NAME}'")
    }
    new = sorted(set(versions) - before, key=int)
    assert len(versions) == len(before) + 2 and len(new) == 2  # every version kept
    champions = [v for v in versions.values() if CHAMPION in v.aliases]
    challengers = [v for v in versions.values() if CHALLENGER in v.aliases]
    assert len(champions) == 1 and len(challengers) == 1 and challengers[0].version == new[-1]
    # Same data and config, so the same AUC: each promotion ties and wins. Taking turns, the second to
    # move the aliases saw the first one's version as champion; racing, both would have seen the old one.
    moves = [re.search(r"champion: (v\d+|none) → (v\d+)", audit) for audit in audits]
    assert all(moves), audits
    first, second = moves if moves[1][1] == moves[0][2] else moves[::-1]
    assert second[1] == first[2], audits
    assert f"v{champions[0].version}" == second[2]


def test_a_worker_killed_mid_training_fails_the_run_and_leaves_nothing_half_registered(team, materialized):
    client = mlflow_from_env().client()
    experiment = client.get_experiment_by_name(f"ssda-{TASKS[0][0]}")
    with team.trainings(1) as pool:
        training = pool.submit(train_run_id, *TASKS[0], {"epochs": 400, "repetitions": 1})
        deadline, victim = time.time() + 120, None
        while victim is None and time.time() < deadline and not training.done():
            running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
            if running and client.get_metric_history(running[0].info.run_id, "rep1/val_auc"):
                victim = running[0]
            time.sleep(0.3)
        assert victim is not None, "the training never reported an epoch"
        with team.instance() as instance:
            worker = celery_workers(instance, victim.data.tags["dagster_run_id"])["trained_model"]
        main = psutil.Process(int((team.stack.folder / "pids" / f"{worker.split('@')[0]}.pid").read_text()))
        for process in process_tree(main.pid):  # as an OOM kill or a lost machine would
            process.kill()
        run_id = training.result(timeout=120)
    with team.instance() as instance:
        assert not succeeded(instance, run_id)
        assert "stopped answering" in " ".join(failures(instance, [run_id]))
        fail_dead_runs(instance)  # what run monitoring does in the daemon: free the slots of finished runs
        assert instance.event_log_storage.get_concurrency_run_ids() == set()  # the gpu slot is free again

    retry = train(*TASKS[0])  # what run_retries launches: it lands on the surviving worker
    with team.instance() as instance:
        assert retry.success, failures(instance, [retry.run_id])
        assert celery_workers(instance, retry.run_id)["trained_model"] != worker
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "FAILED" and "ended before the run did" in killed.data.tags["error"]
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert victim.info.run_id not in {v.run_id for v in versions}
    assert all(client.get_run(v.run_id).info.status == "FINISHED" for v in versions)
