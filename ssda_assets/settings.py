"""Every environment variable the platform reads, read here and nowhere else.

`VARIABLES` lists them, each with its default and what it sets (docs/platform.md, Settings, shows
the same table; `tests/assets/test_settings.py` holds the two together). The functions below read
them, so a default lives in one place and a variable is read when it is used: the tests and the
team stack point one process at several platforms by changing the environment.

The resources (`ssda_assets.resources`) are built from these functions rather than configured with
`dg.EnvVar`: most defaults are derived (the warehouse, the MLflow store and the data zone sit under
$DAGSTER_HOME unless named), which an `EnvVar` cannot express, and the pipeline, the sensors and the
tests use the resources outside a `Definitions`, where an `EnvVar` stays unresolved. The Celery
executor, a Dagster executor config, takes its broker and backend as `{"env": ...}` (the same
convention) from the names below.

This module imports nothing from either package, so any module may import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LINK_URL = "http://127.0.0.1:5050"  # `make ui` redirects it to the MLflow UI's current port


@dataclass(frozen=True)
class Variable:
    """One environment variable: its default as a person reads it and what it sets."""

    default: str
    description: str
    scope: str  # home; instance: points at or tunes one platform (a test clears these); ui; team; threads


VARIABLES: dict[str, Variable] = {
    # Where one platform keeps its state.
    "DAGSTER_HOME": Variable(
        "dagster_home/ of the checkout", "the Dagster instance; the other stores default to below it", "home"
    ),
    "SSDA_DATA_DIR": Variable(
        "$DAGSTER_HOME/data", "the processed zone (parquet, h5ad, model cache)", "instance"
    ),
    "SSDA_RAW_DIR": Variable(
        "$SSDA_DATA_DIR/raw", "the raw zone: the inputs and manifests users drop in", "instance"
    ),
    "SSDA_REPORTS_DIR": Variable("$DAGSTER_HOME/reports", "the HTML attribution reports", "instance"),
    "SSDA_WAREHOUSE": Variable("$DAGSTER_HOME/warehouse.duckdb", "the DuckDB warehouse file", "instance"),
    "MLFLOW_TRACKING_URI": Variable(
        "sqlite:///$DAGSTER_HOME/mlflow.db", "the MLflow tracking store and model registry", "instance"
    ),
    "SSDA_MLFLOW_ARTIFACTS": Variable(
        "$DAGSTER_HOME/mlartifacts", "the artifact root of new MLflow experiments (a path or URI)", "instance"
    ),
    "SSDA_REGISTRY_LOCK": Variable(
        "next to a sqlite store, else $DAGSTER_HOME/registry-locks",
        "a postgresql:// URL or a folder: where the locks on model aliases live",
        "instance",
    ),
    # How it behaves.
    "SSDA_MIN_FREE_MB": Variable(
        "256", "free space (MiB) a training or an ingest needs beyond its estimate", "instance"
    ),
    "SSDA_WAREHOUSE_LOCK_WAIT_S": Variable(
        "30", "seconds a writer waits for another process's hold on the warehouse", "instance"
    ),
    "SSDA_KEEP_VERSIONS": Variable(
        "5", "versions whose files are kept per model besides champion and challenger (0: all)", "instance"
    ),
    "SSDA_RETENTION": Variable(
        "archive", "archive: remove an old version's files, keep its records; delete: both", "instance"
    ),
    "SSDA_TRAIN_DEFAULTS": Variable(
        "(none)", "a JSON object of training hyper-parameters replacing the platform's defaults", "instance"
    ),
    "SSDA_SENSOR_INTERVAL": Variable("30", "seconds between two looks of the automation sensors", "instance"),
    "SSDA_RETRAIN_CRON": Variable(
        "0 3 * * 1", "cron (UTC) of the scheduled retraining of every task", "instance"
    ),
    # Where its UIs are.
    "SSDA_MLFLOW_UI_URL": Variable(
        "the tracking server, else http://127.0.0.1:$MLFLOW_PORT", "where the MLflow UI is now", "instance"
    ),
    "SSDA_MLFLOW_LINK_URL": Variable(
        f"the tracking server, else {DEFAULT_LINK_URL}",
        "the stable address Dagster's links to MLflow name (`make ui` redirects it)",
        "instance",
    ),
    "DAGSTER_PORT": Variable("3000", "port of the Dagster UI (`make ui`)", "ui"),
    "MLFLOW_PORT": Variable("5000", "port of the MLflow UI (`make ui`)", "ui"),
    # The team mode.
    "SSDA_MODE": Variable("(single user)", "team: steps on Celery workers, Dagster on PostgreSQL", "team"),
    "SSDA_TEAM_DIR": Variable("/tmp/ssda4drug-team", "state of the team stack (`make team-up`)", "team"),
    "SSDA_CELERY_BROKER": Variable("(none; required in team mode)", "the Celery broker URL (Redis)", "team"),
    "SSDA_CELERY_BACKEND": Variable("(none; required in team mode)", "the Celery result backend URL", "team"),
    # Read by ssda_model itself (ssda_model.threads, train/device.py), which never imports the
    # platform: listed so that the table is complete.
    "SSDA_THREADS": Variable(
        "a share of the cores", "forces the threads of each heavy step (ssda_model.threads)", "threads"
    ),
    "SSDA_RUNTIME_DIR": Variable(
        "the temporary folder", "where the processes sharing the cores leave their claims", "threads"
    ),
    "OMP_NUM_THREADS": Variable("(unset)", "caps the share of the cores a heavy step takes", "threads"),
    "ONEDNN_MAX_CPU_ISA": Variable(
        "(unset)", "the widest CPU kernels oneDNN may use (AVX2 for the second numerics run)", "threads"
    ),
}


def per_instance() -> tuple[str, ...]:
    """The variables that point at or tune one platform, besides DAGSTER_HOME: what a test clears
    to run a platform of its own under a fresh DAGSTER_HOME."""
    return tuple(name for name, variable in VARIABLES.items() if variable.scope == "instance")


def _read(name: str) -> str:
    """The variable's value, stripped; "" when unset or blank (then the caller's default holds)."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a declared setting (ssda_assets.settings.VARIABLES)")
    return os.environ.get(name, "").strip()


def dagster_home() -> Path:
    """$DAGSTER_HOME, else the repository's dagster_home/ (never relative to the working directory)."""
    return Path(_read("DAGSTER_HOME") or PROJECT_ROOT / "dagster_home").resolve()


def data_dir() -> Path:
    return Path(_read("SSDA_DATA_DIR") or dagster_home() / "data").resolve()


def raw_dir() -> Path:
    return Path(_read("SSDA_RAW_DIR") or data_dir() / "raw").resolve()


def reports_dir() -> Path:
    return Path(_read("SSDA_REPORTS_DIR") or dagster_home() / "reports").resolve()


def warehouse() -> Path:
    return Path(_read("SSDA_WAREHOUSE") or dagster_home() / "warehouse.duckdb")


def min_free_mb() -> int:
    return int(_read("SSDA_MIN_FREE_MB") or 256)


def warehouse_lock_wait_s() -> float:
    return float(_read("SSDA_WAREHOUSE_LOCK_WAIT_S") or 30)


def tracking_uri() -> str:
    return _read("MLFLOW_TRACKING_URI") or f"sqlite:///{dagster_home() / 'mlflow.db'}"


def mlflow_artifacts() -> str:
    return _read("SSDA_MLFLOW_ARTIFACTS") or str(dagster_home() / "mlartifacts")


def mlflow_ui_url() -> str:
    """Where the MLflow UI is now: as set, else the tracking server, else the local UI's port."""
    server = tracking_uri() if tracking_uri().startswith("http") else None
    return _read("SSDA_MLFLOW_UI_URL") or server or f"http://127.0.0.1:{mlflow_port()}"


def mlflow_link_url() -> str:
    server = tracking_uri() if tracking_uri().startswith("http") else None
    return _read("SSDA_MLFLOW_LINK_URL") or server or DEFAULT_LINK_URL


def keep_versions() -> int:
    return int(_read("SSDA_KEEP_VERSIONS") or 5)


def retention() -> str:
    return _read("SSDA_RETENTION") or "archive"


def registry_lock() -> str:
    """The value when set, else empty: `ssda_assets.registry.lock` then derives the place itself."""
    return _read("SSDA_REGISTRY_LOCK")


def train_defaults() -> str:
    """The JSON text of SSDA_TRAIN_DEFAULTS ("" when unset), parsed by the training config."""
    return _read("SSDA_TRAIN_DEFAULTS")


def sensor_interval_s() -> int:
    return int(_read("SSDA_SENSOR_INTERVAL") or 30)


def retrain_cron() -> str:
    return _read("SSDA_RETRAIN_CRON") or "0 3 * * 1"


def dagster_port() -> int:
    return int(_read("DAGSTER_PORT") or 3000)


def mlflow_port() -> int:
    return int(_read("MLFLOW_PORT") or 5000)


def team_mode() -> bool:
    return _read("SSDA_MODE").lower() == "team"


def team_dir() -> Path:
    return Path(_read("SSDA_TEAM_DIR") or "/tmp/ssda4drug-team")


def celery_broker() -> str:
    return _read("SSDA_CELERY_BROKER")


def celery_backend() -> str:
    return _read("SSDA_CELERY_BACKEND")
