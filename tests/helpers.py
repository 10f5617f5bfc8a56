"""What several test modules share: paths, the tiny training configuration, a platform in a temporary
DAGSTER_HOME, an MLflow registry, local servers, the `ssda` command's arguments and errors, and
batched-vs-alone runs.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import dagster as dg
import mlflow
import numpy as np
import pytest
import torch

from ssda_assets.raw.catalog import register_partitions
from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_assets.registry.versions import Registration, register_version
from ssda_assets.resources import MLflowTracking, mlflow_from_env, paths_from_env, warehouse_from_env
from ssda_assets.settings import per_instance
from ssda_model.cli import main
from ssda_model.config import SSDAConfig
from ssda_model.data.prepare import prepare_domains
from ssda_model.data.splits import RepetitionSplit, repetition_split
from ssda_model.model import SSDAModel
from ssda_model.train.competitors import competitor_scores
from ssda_model.train.loop import DomainTensors

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small enough to train in about a second per repetition on 2 CPU cores.
FAST = SSDAConfig(encoder_dims=(64, 32, 16), predictor_dim=8, epochs=4, repetitions=2)

# The demo's (drug, dataset) tasks.
TASKS = [("gefitinib", "jhu006_gefitinib"), ("bortezomib", "mcf7_bortezomib"), ("erlotinib", "pc9_erlotinib")]


# ---- a platform in a temporary DAGSTER_HOME ---------------------------------------------------
class Platform:
    """Handles on one temporary platform: its instance, resources and asset definitions."""

    def __init__(self, home: Path, instance: dg.DagsterInstance) -> None:
        from ssda_assets.definitions import defs

        self.home, self.instance = home, instance
        self.paths, self.warehouse, self.mlflow = paths_from_env(), warehouse_from_env(), mlflow_from_env()
        self.truth = json.loads((self.paths.raw / "demo_truth.json").read_text())
        self.defs = defs()
        register_partitions(instance, self.paths.raw)

    def asset(self, name: str) -> dg.AssetsDefinition:
        return self.defs.get_assets_def(name)

    def materialize(self, names: list[str], partition_key=None, raise_on_error: bool = True, run_config=None):
        return dg.materialize(
            [self.asset(n) for n in names],
            instance=self.instance,
            partition_key=partition_key,
            resources={"paths": self.paths, "warehouse": self.warehouse, "mlflow_tracking": self.mlflow},
            raise_on_error=raise_on_error,
            run_config=run_config,
        )

    def materialize_data_assets(self, tasks: list[tuple[str, str]] = TASKS) -> None:
        self.materialize(["gdsc_expression", "gdsc_response"])
        for drug, dataset in tasks:
            self.materialize(["gdsc_labels"], partition_key=drug)
            self.materialize(["sc_dataset"], partition_key=dataset)
            self.materialize(
                ["harmonized_expression", "target_dataset"],
                partition_key=dg.MultiPartitionKey({"drug": drug, "dataset": dataset}),
            )

    def query(self, sql: str, params=None):
        with self.warehouse.get_connection() as connection:
            return connection.execute(sql, params or []).df()


def make_platform(home: Path, monkeypatch, persistent: bool = False) -> Platform:
    """A platform on the demo raw data; `persistent` gives it the repository's dagster.yaml (sqlite
    storage, the `gpu` pool, run monitoring) instead of an in-memory instance."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in per_instance():  # a developer's own settings never leak into a test
        monkeypatch.delenv(name, raising=False)
    write_demo_raw(home / "data" / "raw")
    if not persistent:
        return Platform(home, dg.DagsterInstance.ephemeral())
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return Platform(home, dg.DagsterInstance.from_config(str(home)))


# ---- an MLflow registry ------------------------------------------------------------------------
@contextmanager
def fresh_mlflow() -> Iterator[None]:
    """MLflow's process-wide URIs unset, as in a new `ssda` process, and unset again after:
    `training_run` sets them, and with them MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            monkeypatch.delenv(name, raising=False)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


@contextmanager
def platform_store(root: Path) -> Iterator[MLflowTracking]:
    """A sqlite tracking store and registry under `root`, configured as the platform's resource is."""
    with fresh_mlflow():
        yield MLflowTracking(
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "mlartifacts")
        )


def register(tracking: MLflowTracking, model: SSDAModel, name: str, cells: ad.AnnData) -> Registration:
    """One training's logging and registration as `trained_model` does them: the run, the pyfunc
    with the native folder inside, a new version and the champion rule."""
    tags = {"task": name}
    with tracking.training_run("ssda-test", name, tags, {}, dg.DagsterInstance.ephemeral()) as run:
        model_uri = run.log_model(model, cells.to_df().iloc[:5], wall_seconds=0.0)
        basis = f"{model.metrics['protocol']}/{model.metrics['evaluation']}"
        return register_version(
            tracking.client(),
            model_uri,
            name,
            model.metrics["mean_auc"],
            basis,
            tags={**tags, "basis": basis, "mlflow_run_id": run.run_id},
        )


# ---- local servers -------------------------------------------------------------------------
def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 90) -> None:
    """Return once `url` answers; TimeoutError after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def default_signals() -> None:
    """Start `make ui` with the signal dispositions a terminal or a service manager gives it. An
    ignored or blocked signal is inherited across exec, and GNU make keeps an inherited SIG_IGN.
    When the tests run as a background job (SIGINT ignored), Dagster's in-process execution
    leaves SIGTERM ignored too: its interrupt handling sets SIGTERM to SIGINT's disposition
    (dagster._utils.interrupts.setup_interrupt_handlers), so make would ignore the SIGTERM."""
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for number in stopping:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)


# ---- the `ssda` command ----------------------------------------------------------------------
FAST_ARGS = ["--epochs", "3", "--repetitions", "2", "--quiet"]


def fit_args(source, target, out, *extra) -> list[str]:
    """`ssda fit` of a tiny model."""
    return ["fit", "--source", str(source), "--target", str(target), "--out", str(out), *FAST_ARGS, *extra]


def bench_args(source, target, out, methods="ssda", shots="1", repetitions=1) -> list[str]:
    """`ssda benchmark` of tiny repetitions (by default one method, one shot, one repetition)."""
    return [
        "benchmark",
        "--source",
        str(source),
        "--target",
        str(target),
        "--out",
        str(out),
        "--methods",
        methods,
        "--shots",
        shots,
        "--repetitions",
        str(repetitions),
        "--epochs",
        "2",
        "--quiet",
    ]


def run_error(capsys, argv) -> str:
    """The one `error:` line (exit code 2, no traceback) that `ssda argv` prints."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---- batched repetitions against one at a time -----------------------------------------------
def assert_members_train_alike(pair, config: SSDAConfig, per_repetition=0.05, on_average=0.02) -> None:
    """Batched and one-at-a-time AUCs close per repetition and on average, where rounding differs."""
    source, target = pair
    batched = [r["auc"] for r in SSDAModel.fit(source, target, config).metrics["repetitions"]]
    alone = [
        r["auc"]
        for r in SSDAModel.fit(source, target, config.replace(batch_repetitions=False)).metrics["repetitions"]
    ]
    assert np.allclose(batched, alone, atol=per_repetition), (batched, alone)
    assert abs(np.mean(batched) - np.mean(alone)) < on_average


def three_repetitions(pair, device: torch.device) -> tuple[DomainTensors, list[RepetitionSplit]]:
    """The pair as device tensors and the splits of repetitions 1–3 (3 shots, paper protocol)."""
    source, target = pair
    domains = prepare_domains(
        source, target, label_key="response", shots=3, val_fraction=0.2, scaling="per_domain"
    )
    splits = [
        repetition_split(domains.source_y, domains.target_y, 3, "paper", 0.2, seed=r) for r in (1, 2, 3)
    ]
    return DomainTensors.on_device(domains, device), splits


def competitor_scores_both_ways(pair, method: str, device: torch.device, config: SSDAConfig):
    """Three repetitions' target scores, batched and one at a time, with their splits."""
    data, splits = three_repetitions(pair, device)
    batched = competitor_scores(method, data, splits, [1, 2, 3], config)
    alone = competitor_scores(method, data, splits, [1, 2, 3], config.replace(batch_repetitions=False))
    return splits, batched, alone
