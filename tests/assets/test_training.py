"""trained_model on the demo data with a real MLflow sqlite store: runs, versions, aliases, pyfunc."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import sysconfig

import anndata as ad
import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster._core import errors as dagster_errors
from dagster._utils.interrupts import pop_captured_interrupt

from ssda_assets.operations.interrupts import PipelineInterrupted, StopSignals
from ssda_assets.registry.training_run import LiveMetrics
from ssda_assets.registry.uri import load_registered
from ssda_assets.registry.versions import model_name
from ssda_assets.resources import MLflowTracking

TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})
NAME = model_name("gefitinib", "jhu006_gefitinib")


def train(platform, raise_on_error=True, **config):
    config = {"epochs": 3, "repetitions": 2, **config}
    return platform.materialize(
        ["trained_model"],
        partition_key=TASK,
        raise_on_error=raise_on_error,
        run_config={"ops": {"trained_model": {"config": config}}},
    )


def metadata_of(result) -> dict:
    return {
        k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()
    }


@pytest.fixture(scope="module")
def trained(built_platform):
    """Four trainings in a row: a fair one, a deliberately poor one, a better one, the same again."""
    results = [
        train(built_platform, epochs=1),
        train(built_platform, method="target_only", epochs=1, lr=1e-7),
        train(built_platform, epochs=6),
        train(built_platform, epochs=6),
    ]
    return built_platform, [metadata_of(r) for r in results]


def test_mlflow_run_has_params_epoch_metrics_and_artifacts(trained):
    platform, runs = trained
    client = platform.mlflow.client()
    run_id = runs[0]["mlflow_run"].rsplit("/", 1)[1]
    run = client.get_run(run_id)
    assert run.data.params["method"] == "ssda_blend"  # the default
    assert 0.0 <= run.data.metrics["mean_bulk_weight"] <= 0.1  # what it chose, in the run and the metadata
    assert "over repetitions" in runs[0]["bulk_weight"]
    for member in ("ssda_auto", "target_only"):  # each of the blend's two networks alone
        assert run.data.metrics[f"mean_auc_{member}"] == pytest.approx(
            float(runs[0][f"auc_{member}"]), abs=1e-3
        )
    assert run.data.params["protocol"] == "strict"
    assert (
        run.data.tags["dagster_partition"] == str(TASK) and run.data.tags["data_hash"] == runs[0]["data_hash"]
    )
    history = client.get_metric_history(run_id, "rep2/val_auc")
    assert [m.step for m in history] == [1]
    assert [m.step for m in client.get_metric_history(run_id, "rep2/target_only.val_auc")] == [1]
    assert {m.key for m in [*client.get_metric_history(run_id, "rep1/loss_cls")]} == {"rep1/loss_cls"}
    assert run.data.metrics["mean_auc"] == pytest.approx(runs[0]["mean_auc"])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"metrics.json", "repetitions.json"} <= artifacts
    assert "ssda_model" not in artifacts  # the weights are stored once, in the logged model
    logged = json.loads(open(client.download_artifacts(run_id, "metrics.json", str(platform.home))).read())
    assert logged["protocol"] == "strict" and len(logged["repetitions"]) == 2
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"source", "target"}  # MLflow's Inputs: the harmonized tables, by data hash
    assert inputs["target"].digest == runs[0]["data_hash"][:16]
    assert "target.parquet" in inputs["target"].source


def test_champion_moves_only_for_a_model_at_least_as_good(trained):
    platform, runs = trained
    client = platform.mlflow.client()
    aucs = [r["mean_auc"] for r in runs]
    assert aucs[1] < aucs[0] <= aucs[2], aucs  # the three trainings are as intended
    assert runs[0]["aliases"] == "challenger, champion"
    assert runs[1]["aliases"] == "challenger" and "champion stays v1" in runs[1]["alias_audit"]
    assert runs[2]["aliases"] == "challenger, champion" and "champion: v1 → v3" in runs[2]["alias_audit"]
    assert aucs[3] == aucs[2] and "champion: v3 → v4" in runs[3]["alias_audit"]  # a tie is "at least as good"
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]  # nothing deleted or overwritten
    assert float(client.get_model_version(NAME, "2").tags["auc"]) == pytest.approx(aucs[1], abs=1e-6)


def test_champion_pyfunc_scores_like_ssda_model(trained):
    platform, _ = trained
    mlflow.set_tracking_uri(platform.mlflow.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    genes = pyfunc.unwrap_python_model().model.genes  # no input schema: any gene IDs, half may lack
    target = pd.read_parquet(
        platform.paths.data / "harmonized" / "gefitinib" / "jhu006_gefitinib" / "target.parquet"
    )
    frame = target.set_index("cell_id")[genes].iloc[:50]
    scores = pyfunc.predict(frame)
    assert len(scores) == 50 and scores["ssda_score"].between(0, 1).all()

    native, _ = load_registered(f"models:/{NAME}@champion", platform.mlflow.tracking_uri)
    cells = ad.AnnData(
        X=frame.to_numpy(np.float32), obs=pd.DataFrame(index=frame.index), var=pd.DataFrame(index=genes)
    )
    expected = native.predict(cells).obs["ssda_score"].to_numpy()
    np.testing.assert_allclose(scores["ssda_score"].to_numpy(), expected, rtol=1e-6)


def test_registered_model_loads_where_the_package_is_not_installed(trained, tmp_path):
    """A virtual environment with torch, mlflow and the rest but not ssda4drug: the champion loads
    from the code shipped inside it and scores like the platform."""
    platform, _ = trained
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    # our site-packages as a plain path: its .pth files (the editable install of ssda4drug) are not run
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    target_file = platform.paths.data / "harmonized" / "gefitinib" / "jhu006_gefitinib" / "target.parquet"
    script = f"""
import importlib.util, sys
import mlflow, pandas as pd
assert importlib.util.find_spec("ssda_model") is None, "ssda_model is importable before loading"
mlflow.set_tracking_uri({platform.mlflow.tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/{NAME}@champion")
genes = model.unwrap_python_model().model.genes
cells = pd.read_parquet({str(target_file)!r})
print(model.predict(cells.set_index("cell_id")[genes].iloc[:20])["ssda_score"].round(6).tolist())
"""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    mlflow.set_tracking_uri(platform.mlflow.tracking_uri)
    here = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    target = pd.read_parquet(
        platform.paths.data / "harmonized" / "gefitinib" / "jhu006_gefitinib" / "target.parquet"
    )
    genes = here.unwrap_python_model().model.genes
    expected = here.predict(target.set_index("cell_id")[genes].iloc[:20])["ssda_score"].round(6).tolist()
    assert len(scores) == 20 and scores == pytest.approx(expected, abs=2e-6)


def test_unreachable_tracking_server_fails_clearly_then_recovers(built_platform):
    good = built_platform.mlflow
    built_platform.mlflow = MLflowTracking(
        tracking_uri="http://127.0.0.1:9", artifact_root=good.artifact_root
    )
    try:
        result = train(built_platform, raise_on_error=False)
        message = result.get_step_failure_events()[0].event_specific_data.error.message
        assert "http://127.0.0.1:9 cannot be reached" in message and "MLFLOW_TRACKING_URI" in message
    finally:
        built_platform.mlflow = good
    assert train(built_platform).success


def test_benchmark_asset_stores_results_and_one_mlflow_run_per_method(built_platform):
    config = {"methods": ["ssda", "source_only", "scad"], "shots": [3], "repetitions": 2, "epochs": 2}
    result = built_platform.materialize(
        ["benchmark"], partition_key=TASK, run_config={"ops": {"benchmark": {"config": config}}}
    )
    metadata = metadata_of(result)
    assert metadata["dagster/row_count"] == 6 and "wilcoxon_p_vs_ssda" in metadata["summary"]
    assert metadata["plots"].count("data:image/png;base64,") == 3
    rows = built_platform.query(
        "SELECT method, count(*) AS n FROM benchmark_results WHERE drug = ? AND dataset = ? "
        "GROUP BY method ORDER BY method",
        ["gefitinib", "jhu006_gefitinib"],
    )
    assert rows.to_dict("records") == [{"method": m, "n": 2} for m in ("scad", "source_only", "ssda")]
    client = built_platform.mlflow.client()
    experiment = client.get_experiment_by_name("ssda-gefitinib-benchmark")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["method"] for r in runs) == ["scad", "source_only", "ssda"]
    for run in runs:  # each run shows the comparison's figures
        figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
        assert figures == {"figures/auc.png", "figures/aupr.png", "figures/fewshot.png"}


def test_shots_all_is_compared_on_source_validation_and_says_so(built_platform):
    key = dg.MultiPartitionKey({"drug": "bortezomib", "dataset": "mcf7_bortezomib"})
    name = model_name("bortezomib", "mcf7_bortezomib")

    def run(shots):
        return metadata_of(
            built_platform.materialize(
                ["trained_model"],
                partition_key=key,
                run_config={
                    "ops": {"trained_model": {"config": {"epochs": 2, "repetitions": 2, "shots": shots}}}
                },
            )
        )

    first = run("all")
    assert first["evaluation"] == "source_validation" and "champion" in first["aliases"]
    tags = built_platform.mlflow.client().get_model_version(name, str(first["model_version"])).tags
    assert tags["evaluation"] == "source_validation" and tags["basis"] == "strict/source_validation"
    second = run("3")  # scored on target cells: not comparable with the source-validation champion
    assert second["aliases"] == "challenger" and "not comparable" in second["alias_audit"]


# No other test here trains this task.
ERLOTINIB = dg.MultiPartitionKey({"drug": "erlotinib", "dataset": "pc9_erlotinib"})


def assert_stopped_early(platform, result, drug: str, dataset: str) -> None:
    """The run failed, the training's MLflow run says why, and no version was registered."""
    assert not result.success
    client = platform.mlflow.client()
    assert client.search_model_versions(f"name = '{model_name(drug, dataset)}'") == []
    experiment = client.get_experiment_by_name(f"ssda-{drug}")
    (run,) = client.search_runs([experiment.experiment_id], f"tags.dagster_run_id = '{result.run_id}'")
    assert (run.info.status, run.data.tags["error"]) == ("FAILED", "interrupted by SIGINT")


@contextlib.contextmanager
def a_sigint_no_handler_raised():
    """As `make demo` runs its steps (inside `StopSignals`), after a SIGINT that no handler turned
    into an interruption, as when Dagster's is swallowed in a garbage-collector callback."""
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stop_signal_the_step_missed_stops_the_training_at_its_next_epoch(built_platform):
    """Such a signal stops the training at the end of its first epoch instead of letting it run
    on and register."""
    with a_sigint_no_handler_raised() as stop:
        result = built_platform.materialize(
            ["trained_model"],
            partition_key=ERLOTINIB,
            raise_on_error=False,
            run_config={"ops": {"trained_model": {"config": {"epochs": 200, "repetitions": 1}}}},
        )
        with pytest.raises(PipelineInterrupted, match="SIGINT during the training"):
            stop.check("the training")  # the pipeline still stops after the run
    assert_stopped_early(built_platform, result, "erlotinib", "pc9_erlotinib")


def test_a_terminate_whose_interruption_was_lost_stops_the_training_at_its_next_epoch(
    built_platform, monkeypatch
):
    """The Dagster UI's Terminate makes the run worker send itself a SIGINT, which Dagster's
    handler raises wherever the step is; where that raise is lost (here: Dagster only records the
    signal, as outside a step), the training still stops at its next epoch."""
    monkeypatch.setattr(dagster_errors, "raise_interrupts_as", lambda error_cls: contextlib.nullcontext())
    live = LiveMetrics.__call__

    def terminate_at_epoch_2(self, repetition, record):
        live(self, repetition, record)
        if record["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what dagster_shared.ipc.send_interrupt does

    monkeypatch.setattr(LiveMetrics, "__call__", terminate_at_epoch_2)
    try:
        result = built_platform.materialize(
            ["trained_model"],
            partition_key=ERLOTINIB,
            raise_on_error=False,
            run_config={"ops": {"trained_model": {"config": {"epochs": 200, "repetitions": 1}}}},
        )
    finally:
        pop_captured_interrupt()  # Dagster's record of the signal, for later runs in this process
    assert_stopped_early(built_platform, result, "erlotinib", "pc9_erlotinib")


def test_a_stop_signal_stops_a_benchmark_after_the_method_it_lands_in(built_platform):
    """The benchmark asset checks between methods: stopped there, it stores and logs nothing."""
    config = {"methods": ["ssda", "source_only"], "shots": [3], "repetitions": 2}
    with a_sigint_no_handler_raised():
        result = built_platform.materialize(
            ["benchmark"],
            partition_key=ERLOTINIB,
            raise_on_error=False,
            run_config={"ops": {"benchmark": {"config": config}}},
        )
    (failure,) = result.get_step_failure_events()
    assert failure.event_specific_data.error.cls_name == "DagsterExecutionInterruptedError"
    client = built_platform.mlflow.client()
    experiment = client.get_experiment_by_name("ssda-erlotinib-benchmark")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []
