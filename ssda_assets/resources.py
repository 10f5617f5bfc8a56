"""Where the platform keeps its files, configured from environment variables with repo defaults."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
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


def paths_from_env() -> PlatformPaths:
    home = dagster_home()
    data = Path(os.environ.get("SSDA_DATA_DIR") or home / "data")
    return PlatformPaths(raw_dir=str(Path(os.environ.get("SSDA_RAW_DIR") or data / "raw").resolve()),
                         data_dir=str(data.resolve()),
                         reports_dir=str(Path(os.environ.get("SSDA_REPORTS_DIR") or home / "reports").resolve()))


def warehouse_from_env() -> DuckDBResource:
    return DuckDBResource(database=str(Path(os.environ.get("SSDA_WAREHOUSE") or dagster_home() / "warehouse.duckdb")))
