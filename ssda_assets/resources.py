"""Where the platform keeps its files, configured from environment variables with repo defaults."""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def dagster_home() -> Path:
    """$DAGSTER_HOME, else the repository's dagster_home/ (never relative to the working directory)."""
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / "dagster_home").resolve()


class PlatformPaths(dg.ConfigurableResource):
    """The raw zone (inputs users drop in), the processed zone (parquet, h5ad) and the reports."""

    raw_dir: str
    data_dir: str
    reports_dir: str

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
    home = dagster_home()
    data = Path(os.environ.get("SSDA_DATA_DIR") or home / "data")
    return PlatformPaths(
        raw_dir=str(Path(os.environ.get("SSDA_RAW_DIR") or data / "raw").resolve()),
        data_dir=str(data.resolve()),
        reports_dir=str(Path(os.environ.get("SSDA_REPORTS_DIR") or home / "reports").resolve()),
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
            "snapshot copy instead (README: Reading the warehouse); SSDA_WAREHOUSE_LOCK_WAIT_S sets the wait"
        )


def warehouse_from_env() -> Warehouse:
    return Warehouse(
        database=str(Path(os.environ.get("SSDA_WAREHOUSE") or dagster_home() / "warehouse.duckdb")),
        lock_wait_s=float(os.environ.get("SSDA_WAREHOUSE_LOCK_WAIT_S") or 30),
    )


class MLflowTracking(dg.ConfigurableResource):
    """A real MLflow tracking store and model registry (sqlite by default, a team's server via
    MLFLOW_TRACKING_URI). Our own resource: the old dagster-mlflow one is not a ConfigurableResource."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"

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
        elif self.tracking_uri.startswith("sqlite:///"):
            folder = Path(self.tracking_uri.removeprefix("sqlite:///")).parent
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
        self, experiment: str, run_name: str, tags: dict[str, str], params: dict, instance: dg.DagsterInstance
    ):
        """The MLflow run of one training in `experiment` (created when new): see
        `ssda_assets.training_run.training_run`."""
        from ssda_assets.training_run import training_run

        return training_run(
            self.client(), self.tracking_uri, self.experiment_id(experiment), run_name, tags, params, instance
        )

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_from_env() -> MLflowTracking:
    home = dagster_home()
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    return MLflowTracking(
        tracking_uri=tracking,
        artifact_root=os.environ.get("SSDA_MLFLOW_ARTIFACTS") or str(home / "mlartifacts"),
        ui_url=os.environ.get("SSDA_MLFLOW_UI_URL")
        or (tracking if tracking.startswith("http") else None)
        or f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT') or 5000}",
    )
