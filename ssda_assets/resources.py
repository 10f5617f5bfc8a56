"""The platform's resources: where it keeps its files, the DuckDB warehouse and the MLflow store,
each built from the settings (`ssda_assets.settings`, environment variables with repo defaults)."""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ssda_assets import settings
from ssda_assets.registry.training_run import training_run as open_training_run
from ssda_assets.settings import dagster_home
from ssda_assets.storage.disk_space import SpaceNeeded


class PlatformPaths(dg.ConfigurableResource):
    """The raw zone (inputs users drop in), the processed zone (parquet, h5ad) and the reports."""

    raw_dir: str
    data_dir: str
    reports_dir: str
    min_free_mb: int = 256  # free space a training or an ingest needs beyond its own estimate

    def space_needed(self, what: str, folders: tuple[Path | None, ...] = (), estimate: int = 0):
        """What `what` needs free before it writes: `estimate` bytes plus SSDA_MIN_FREE_MB in
        DAGSTER_HOME, the data zone and `folders` (`ssda_assets.storage.disk_space.SpaceNeeded`)."""
        writes = (dagster_home(), self.data, *(f for f in folders if f is not None))
        return SpaceNeeded(what, writes, self.min_free_mb * 2**20 + estimate)

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def data(self) -> Path:
        return Path(self.data_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)

    # The layout of the processed zone, in one place.
    @property
    def gdsc_expression(self) -> Path:
        return self.data / "gdsc_expression.parquet"

    def sc_dataset(self, dataset: str) -> Path:
        return self.data / "single_cell" / f"{dataset}.h5ad"

    def harmonized(self, drug: str, dataset: str) -> Path:
        return self.data / "harmonized" / drug / dataset

    def predictions(self, drug: str, dataset: str) -> Path:
        return self.data / "predictions" / drug / dataset

    @property
    def model_cache(self) -> Path:
        return self.data / "models"


def paths_from_env() -> PlatformPaths:
    return PlatformPaths(
        raw_dir=str(settings.raw_dir()),
        data_dir=str(settings.data_dir()),
        reports_dir=str(settings.reports_dir()),
        min_free_mb=settings.min_free_mb(),
    )


class Warehouse(DuckDBResource):
    """The DuckDB warehouse, opened for writing. DuckDB lets one process hold the file at a time, and
    any other process's connection (a notebook, the duckdb CLI, even read-only) blocks writers: we
    retry with doubling back-off for `lock_wait_s` seconds, then fail saying who holds it."""

    lock_wait_s: float = 30.0

    @contextmanager
    def get_connection(self):
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline, delay = time.monotonic() + self.lock_wait_s, 0.05
        while True:
            try:
                return duckdb.connect(
                    self.database,
                    read_only=False,
                    config={"custom_user_agent": "dagster", **self.connection_config},
                )
            except duckdb.IOException as exc:
                if "lock" not in str(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise dg.Failure(description=self._locked(exc), allow_retries=True) from None
                time.sleep(delay)
                delay = min(2 * delay, 2.0)

    def _locked(self, exc: duckdb.IOException) -> str:
        holder = re.search(r"held in (\S+) \(PID (\d+)\)", str(exc))
        who = f"process {holder[2]} ({holder[1]})" if holder else "another process"
        return (
            f"warehouse {self.database} is locked by {who} and stayed locked for {self.lock_wait_s:g} s: "
            "close "
            "that connection and materialize again; to read the warehouse while the platform runs, query a "
            "snapshot copy instead (docs/platform.md: Reading the warehouse); SSDA_WAREHOUSE_LOCK_WAIT_S "
            "sets the wait"
        )


def warehouse_from_env() -> Warehouse:
    return Warehouse(database=str(settings.warehouse()), lock_wait_s=settings.warehouse_lock_wait_s())


class MLflowTracking(dg.ConfigurableResource):
    """A real MLflow tracking store and model registry (sqlite by default, a team's server via
    MLFLOW_TRACKING_URI). Our own resource: the old dagster-mlflow one is not a ConfigurableResource."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"  # where the MLflow UI is now (`make ui` serves it)
    # The stable address Dagster's links to MLflow name: the tracking server's, or for a local store
    # `make ui`'s redirect to wherever the MLflow UI runs now (ssda_assets/operations/links.py).
    link_url: str = ""
    keep_versions: int = 5  # per model, besides champion and challenger (ssda_assets/registry/retention.py)
    retention: str = "archive"  # archive: remove the files, keep the records; delete: both

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def check_reachable(self) -> None:
        """Fail fast, before any training, when the tracking store cannot be used."""
        if self.tracking_uri.startswith(("http://", "https://")):
            import requests

            try:
                requests.get(self.tracking_uri.rstrip("/") + "/health", timeout=5).raise_for_status()
            except requests.RequestException as exc:
                raise dg.Failure(
                    description=f"MLflow tracking server {self.tracking_uri} cannot be reached "
                    f"({type(exc).__name__}); start it or set MLFLOW_TRACKING_URI",
                    allow_retries=True,
                ) from None
        elif (folder := self.local_store) is not None:
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise dg.Failure(
                    description=f"MLflow tracking store {self.tracking_uri}: folder {folder} "
                    "does not exist or is not writable; set MLFLOW_TRACKING_URI",
                    allow_retries=False,
                )

    def experiment_id(self, name: str) -> str:
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = (
            f"{self.artifact_root.rstrip('/')}/{name}"
            if "://" in self.artifact_root
            else Path(self.artifact_root, name).resolve().as_uri()
        )
        return client.create_experiment(name, artifact_location=location)

    def training_run(
        self,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        params: dict,
        instance: dg.DagsterInstance,
        space: SpaceNeeded | None = None,
    ):
        """The MLflow run of one training in `experiment` (created when new): see
        `ssda_assets.registry.training_run.training_run`."""
        return open_training_run(
            self.client(),
            self.tracking_uri,
            self.experiment_id(experiment),
            run_name,
            tags,
            params,
            instance,
            space,
        )

    def experiment_url(self, experiment_id: str) -> str:
        return f"{(self.link_url or self.ui_url).rstrip('/')}/#/experiments/{experiment_id}"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.experiment_url(experiment_id)}/runs/{run_id}"

    @property
    def local_store(self) -> Path | None:
        """The folder of a sqlite tracking store (None for a server)."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]).parent
        return None

    @property
    def local_artifacts(self) -> Path | None:
        """The artifact store's folder when it is on this machine (a path or file: URI)."""
        if "://" not in self.artifact_root:
            return Path(self.artifact_root)
        if self.artifact_root.startswith("file://"):
            return Path(self.artifact_root.removeprefix("file://"))
        return None


def mlflow_from_env() -> MLflowTracking:
    return MLflowTracking(
        tracking_uri=settings.tracking_uri(),
        artifact_root=settings.mlflow_artifacts(),
        ui_url=settings.mlflow_ui_url(),
        link_url=settings.mlflow_link_url(),
        keep_versions=settings.keep_versions(),
        retention=settings.retention(),
    )
