"""Unattended operation on the real stack: `make ui` (dagster dev: webserver, daemon, code server;
the MLflow UI) over a platform that `make demo` filled. A dataset folder dropped into the raw zone
becomes a champion model and scored cells with no other action, through a training whose process
is killed with -9 on the way; Terminate in the UI stops a training and registers nothing; then
Ctrl-C stops every process the stack started."""

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime

import dagster as dg
import psutil
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from ssda_assets.operations.pipeline import run_pipeline
from ssda_assets.operations.run_health import worker_pid
from ssda_assets.operations.ui import GRACE_SECONDS, process_tree
from ssda_assets.registry.versions import CHAMPION, model_name
from tests.helpers import REPO, default_signals, free_port, wait_for
from tests.platform_helpers import make_platform

pytestmark = pytest.mark.e2e
NEW = "jhu006_copy"
TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": NEW})
NAME = model_name("gefitinib", NEW)
# Trainings that automation launches (no run config): long enough to be caught in the act.
AUTOMATIC = {"epochs": 80, "repetitions": 1}
WAIT = 480  # seconds for the whole chain, kill and retry included
STOPPED_WITHIN = GRACE_SECONDS + 14  # the supervisor's grace, its kill and slack for a loaded machine


def kill_everything(pid: int, seen: list[psutil.Process]) -> None:
    """After a failed check: kill make's tree and every process seen in it before. The UIs run in
    their own sessions, so killing make's group alone would leave them running into later tests."""
    leftovers = {*seen, *process_tree(pid)}
    for process in leftovers:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(leftovers), timeout=5)


def poll(what: str, check, seconds: float = WAIT, every: float = 1.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} within {seconds:.0f} s")


def materializations(instance, asset: str, partition: str) -> list:
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=10
    ).records


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("unattended")
    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(home, monkeypatch, persistent=True)
        summary, failures = run_pipeline(platform.instance, {"epochs": 2, "repetitions": 1})  # `make demo`
        assert failures == [] and len(summary) == 3
        dagster_port, mlflow_port = free_port(), free_port()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "SSDA_TRAIN_DEFAULTS": json.dumps(AUTOMATIC),
            "SSDA_SENSOR_INTERVAL": "5",
            "OMP_NUM_THREADS": "1",
            "SSDA_MLFLOW_LINK_URL": f"http://127.0.0.1:{free_port()}",  # make ui redirects it to MLflow
        }
        log = (home / "ui.log").open("w")
        launched = datetime.now()
        ui = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "ui",
                f"DAGSTER_PORT={dagster_port}",
                f"MLFLOW_PORT={mlflow_port}",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_signals,
        )
        seen: list[psutil.Process] = []
        try:
            wait_for(f"http://127.0.0.1:{dagster_port}/server_info", seconds=180)
            wait_for(f"http://127.0.0.1:{mlflow_port}/health", seconds=60)
            seen = process_tree(ui.pid)
            yield platform, ui, home / "ui.log", dagster_port, mlflow_port, launched
        finally:
            kill_everything(ui.pid, seen)
            log.close()


def test_a_new_dataset_folder_becomes_a_champion_and_scored_cells_despite_a_killed_training(stack):
    platform, ui, log, dagster_port, mlflow_port, launched = stack
    instance, client = platform.instance, platform.mlflow.client()
    shutil.copytree(
        platform.paths.raw / "datasets" / "jhu006_gefitinib", platform.paths.raw / "datasets" / NEW
    )

    def training_in_progress(dataset: str = NEW):
        for run in instance.get_runs(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={"dagster/partition/dataset": dataset})
        ):
            experiment = client.get_experiment_by_name("ssda-gefitinib")
            mlflow_runs = (
                client.search_runs(
                    [experiment.experiment_id],
                    f"tags.dagster_run_id = '{run.run_id}' and attributes.status = 'RUNNING'",
                )
                if experiment
                else []
            )
            if mlflow_runs and client.get_metric_history(mlflow_runs[0].info.run_id, "rep1/val_auc"):
                return run
        return None

    victim = poll("an automatic training of the new task with live metrics", training_in_progress, every=0.3)
    worker = psutil.Process(worker_pid(instance, victim.run_id))
    started = instance.all_logs(victim.run_id, of_type=dg.DagsterEventType.STEP_START)
    assert started and {e.dagster_event.pid for e in started} == {worker.pid}  # no process per step
    for process in process_tree(worker.pid):  # as an OOM kill or a reboot would
        process.kill()

    poll(
        "run monitoring to fail the killed run",
        lambda: instance.get_run_by_id(victim.run_id).status == dg.DagsterRunStatus.FAILURE,
    )
    retry = poll(
        "the retry of the killed run to succeed",
        lambda: [
            r
            for r in instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": victim.run_id}))
            if r.status == dg.DagsterRunStatus.SUCCESS
        ],
    )
    assert retry
    champion = poll(
        "a champion for the new task",
        lambda: (
            client.search_model_versions(f"name = '{NAME}'")
            and client.get_model_version_by_alias(NAME, CHAMPION)
        ),
    )
    predictions = poll(
        "cell_predictions of the new task", lambda: materializations(instance, "cell_predictions", str(TASK))
    )
    scored = predictions[0].asset_materialization.metadata
    assert scored["champion_run_id"].value == champion.run_id
    trained = materializations(instance, "trained_model", str(TASK))[0].asset_materialization.metadata
    followed = requests.get(trained["mlflow_run"].value, timeout=30)  # a stable address, redirected
    assert followed.ok and followed.url.startswith(f"http://127.0.0.1:{mlflow_port}/#/experiments/")
    killed = client.search_runs(
        [client.get_experiment_by_name("ssda-gefitinib").experiment_id],
        f"tags.dagster_run_id = '{victim.run_id}'",
    )
    assert [r.info.status for r in killed] == ["FAILED"]
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert all(client.get_model_version(NAME, v.version).aliases for v in versions)  # nothing half-registered
    assert victim.run_id not in {client.get_run(v.run_id).data.tags["dagster_run_id"] for v in versions}
    # only the pair the copied manifest declares ran: no run for the demo's other drugs × NEW
    task_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition/dataset": NEW}))
    assert {r.tags["dagster/partition/drug"] for r in task_runs} == {"gefitinib"}

    # The first start of the UI after `make demo` ingested nothing that was already there.
    ingested = [
        r
        for r in instance.get_runs(dg.RunsFilter(created_after=launched))
        if r.asset_selection and dg.AssetKey("sc_dataset") in r.asset_selection
    ]
    assert {r.tags.get("dagster/partition") for r in ingested} == {NEW}

    # Materialize, then Terminate, in the Dagster UI (the GraphQL calls its buttons send) on a
    # demo task's training: the run is canceled, its MLflow run says so, and nothing is registered.
    ui_client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_port)
    demo_task = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})
    ui_client.submit_job_execution(
        "__ASSET_JOB",
        asset_selection=["trained_model"],
        run_config={"ops": {"trained_model": {"config": {"epochs": 300, "repetitions": 1}}}},
        tags={  # as the UI tags a run of one partition of a multi-partitioned asset
            "dagster/partition": str(demo_task),
            **{f"dagster/partition/{k}": v for k, v in demo_task.keys_by_dimension.items()},
        },
    )
    doomed = poll(
        "the UI's training of a demo task", lambda: training_in_progress("jhu006_gefitinib"), every=0.3
    )
    ui_client.terminate_run(doomed.run_id)
    poll(
        "Terminate to cancel the training's run",
        lambda: instance.get_run_by_id(doomed.run_id).status == dg.DagsterRunStatus.CANCELED,
        seconds=60,
    )
    (stopped,) = client.search_runs(
        [client.get_experiment_by_name("ssda-gefitinib").experiment_id],
        f"tags.dagster_run_id = '{doomed.run_id}'",
    )
    assert stopped.info.status == "FAILED" and stopped.data.tags["error"].startswith("interrupted")
    demo_name = model_name("gefitinib", "jhu006_gefitinib")
    assert stopped.info.run_id not in {
        v.run_id for v in client.search_model_versions(f"name = '{demo_name}'")
    }

    members = process_tree(ui.pid)
    assert len(members) >= 5  # make, the supervisor, dagster dev with its webserver/daemon, mlflow
    os.killpg(ui.pid, signal.SIGINT)  # Ctrl-C in the terminal
    stopped = time.time()
    gone, alive = psutil.wait_procs(members, timeout=STOPPED_WITHIN)
    assert alive == [], f"still running {time.time() - stopped:.0f} s after Ctrl-C: {[p.pid for p in alive]}"
    assert "Segmentation fault" not in log.read_text()
    rows = platform.query("SELECT count(*) AS n FROM cell_predictions WHERE dataset = ?", [NEW])
    assert int(rows["n"].iloc[0]) == scored["dagster/row_count"].value > 0


def test_sigterm_to_make_ui_alone_stops_every_process_it_started(tmp_path):
    """A service manager's SIGTERM reaches `make` only (not its group): make passes it on, and the
    supervisor stops both UIs and their children."""
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    dagster_port, mlflow_port = free_port(), free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    ui = subprocess.Popen(
        ["make", "--no-print-directory", "ui", f"DAGSTER_PORT={dagster_port}", f"MLFLOW_PORT={mlflow_port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=default_signals,
    )
    members: list[psutil.Process] = []
    try:
        wait_for(f"http://127.0.0.1:{dagster_port}/server_info", seconds=180)
        wait_for(f"http://127.0.0.1:{mlflow_port}/health", seconds=60)
        members = process_tree(ui.pid)
        assert len(members) >= 5  # make, the supervisor, dagster dev with its webserver/daemon, mlflow
        commands = " ".join(" ".join(p.cmdline()) for p in members)
        assert "mlflow ui" in commands and "mlflow.server.jobs" not in commands  # its job runner stays off
        ui.send_signal(signal.SIGTERM)
        stopped = time.time()
        gone, alive = psutil.wait_procs(members, timeout=STOPPED_WITHIN)
        late = time.time() - stopped
        assert alive == [], f"still running {late:.0f} s after SIGTERM: {[p.pid for p in alive]}"
    finally:
        kill_everything(ui.pid, members)
