"""Ctrl-C or SIGTERM stops `make demo`'s pipeline after the run it lands in, in one line, and keeps
what finished before: from a terminal, and as a background job (SIGINT ignored). A training it
lands in stops at its next epoch, even when Dagster's own interruption was swallowed."""

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from tests.helpers import REPO, default_signals
from tests.platform_helpers import make_platform


def start_as(background: bool):
    """A terminal's dispositions, or a background job's: SIGINT ignored, which Dagster's in-process
    runs used to copy onto SIGTERM, so that `kill` did nothing."""

    def setup() -> None:
        default_signals()
        if background:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return setup


@pytest.mark.parametrize(("stop", "background"), [(signal.SIGINT, False), (signal.SIGTERM, True)])
def test_a_stop_signal_during_training_ends_the_pipeline_and_keeps_earlier_runs(
    tmp_path, monkeypatch, stop, background
):
    platform = make_platform(tmp_path, monkeypatch, persistent=True)
    pipeline = subprocess.Popen(
        [sys.executable, "-m", "ssda_assets.operations.pipeline", "--epochs", "60", "--repetitions", "1"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=start_as(background),
    )
    lines = []
    for line in pipeline.stdout:
        lines.append(line.rstrip())
        if " stage 4/5" in line:  # the first task's run has begun: harmonisation, then training
            time.sleep(1)
            pipeline.send_signal(stop)
            break
    out, _ = pipeline.communicate(timeout=300)
    lines += out.splitlines()
    assert pipeline.returncode == 128 + stop, "\n".join(lines[-20:])
    assert lines[-1].startswith(f"stopped by {stop.name} during harmonisation and training, ")
    assert "run the command again" in lines[-1]
    assert not any("Traceback" in line or " stage 5/5" in line for line in lines)
    ingested = platform.instance.fetch_materializations(dg.AssetKey("sc_dataset"), limit=10).records
    assert len(ingested) == 3  # stage 3 finished before the signal and stays
    runs = platform.instance.get_runs()
    assert runs and all(run.is_finished for run in runs)  # the interrupted run is not left running
    client = platform.mlflow.client()
    assert client.search_model_versions() == []  # the training stopped before it could register
    experiments = [e.experiment_id for e in client.search_experiments()]
    trainings = client.search_runs(experiments) if experiments else []
    assert [(r.info.status, r.data.tags.get("error")) for r in trainings] in (
        [],  # the signal landed in the harmonisation and the run stopped there
        [("FAILED", f"interrupted by {stop.name}")],  # it stopped the training at an epoch's end
        [("FAILED", "interrupted")],  # Dagster's own handler interrupted the training
    )
