"""A real Dagster instance, DuckDB file and raw zone in a temporary DAGSTER_HOME, on the demo data."""

import pytest

from tests.platform_helpers import Platform, make_platform


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
