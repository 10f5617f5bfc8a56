"""A real Dagster instance, DuckDB file and raw zone in a temporary DAGSTER_HOME, on the demo data."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from ssda_assets.catalog import register_partitions
from ssda_assets.demo_raw import write_demo_raw
from ssda_assets.resources import mlflow_from_env, paths_from_env, warehouse_from_env

REPO = Path(__file__).resolve().parents[2]
TASKS = [("gefitinib", "jhu006_gefitinib"), ("bortezomib", "mcf7_bortezomib"), ("erlotinib", "pc9_erlotinib")]


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
    for name in (
        "SSDA_RAW_DIR",
        "SSDA_DATA_DIR",
        "SSDA_WAREHOUSE",
        "SSDA_REPORTS_DIR",
        "MLFLOW_TRACKING_URI",
        "SSDA_MLFLOW_ARTIFACTS",
        "SSDA_MLFLOW_UI_URL",
        "SSDA_MLFLOW_LINK_URL",
        "SSDA_TRAIN_DEFAULTS",
        "SSDA_KEEP_VERSIONS",
        "SSDA_RETENTION",
        "SSDA_MIN_FREE_MB",
    ):
        monkeypatch.delenv(name, raising=False)
    write_demo_raw(home / "data" / "raw")
    if not persistent:
        return Platform(home, dg.DagsterInstance.ephemeral())
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return Platform(home, dg.DagsterInstance.from_config(str(home)))


@pytest.fixture(scope="module")
def built_platform(tmp_path_factory) -> Platform:
    """The data assets materialized once on the demo data (shared by the read-only tests)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(tmp_path_factory.mktemp("home"), monkeypatch)
        platform.materialize_data_assets()
        yield platform


@pytest.fixture
def platform(tmp_path, monkeypatch) -> Platform:
    """A fresh platform with nothing materialized (for tests that break things)."""
    return make_platform(tmp_path, monkeypatch)
