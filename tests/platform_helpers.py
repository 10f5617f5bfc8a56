"""What several test modules share of the platform: a platform on the demo raw data in a temporary
DAGSTER_HOME, the demo's tasks, and an MLflow registry. The method's own helpers are in
`tests/helpers.py`.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import dagster as dg
import mlflow
import pytest

from ssda_assets.raw.catalog import register_partitions
from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_assets.registry.versions import Registration, register_version
from ssda_assets.resources import MLflowTracking, mlflow_from_env, paths_from_env, warehouse_from_env
from ssda_assets.settings import per_instance
from ssda_model.model import SSDAModel
from tests.helpers import REPO

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
