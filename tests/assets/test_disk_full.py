"""A full disk: refused before a training writes, or one line when a write runs out of space anyway;
what was stored before stays intact and the same training completes once space is freed."""

import errno
import os
import shutil
import sqlite3
import subprocess
from collections import namedtuple

import dagster as dg
import pytest

from ssda_assets.operations import pipeline
from ssda_assets.registry.versions import CHAMPION, champion_model, model_name
from ssda_assets.resources import mlflow_from_env, paths_from_env
from ssda_assets.storage import disk_space
from ssda_model.model import SSDAModel
from tests.helpers import REPO

TASK = dg.MultiPartitionKey({"drug": "gefitinib", "dataset": "jhu006_gefitinib"})
NAME = model_name("gefitinib", "jhu006_gefitinib")
TINY = {"epochs": 1, "repetitions": 1}
Usage = namedtuple("Usage", "total used free")


def train(platform):
    return platform.materialize(
        ["trained_model"],
        partition_key=TASK,
        raise_on_error=False,
        run_config={"ops": {"trained_model": {"config": TINY}}},
    )


def failure_of(result) -> str:
    """The failure's description, as the UI shows it under the error's class name."""
    message = result.get_step_failure_events()[0].event_specific_data.error.message.strip()
    return message.removeprefix("dagster._core.definitions.events.Failure: ")


def stored(platform) -> tuple:
    """What must survive a failed write: the DuckDB tables, the versions and the champion."""
    client = platform.mlflow.client()
    tables = platform.query(
        "SELECT drug, dataset, count(*) AS n FROM target_dataset GROUP BY ALL ORDER BY ALL"
    )
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))
    champion = client.get_model_version_by_alias(NAME, CHAMPION)
    return tables.to_dict("records"), versions, champion.version


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    from tests.platform_helpers import make_platform

    with pytest.MonkeyPatch.context() as monkeypatch:
        platform = make_platform(tmp_path_factory.mktemp("home"), monkeypatch)
        platform.materialize_data_assets([("gefitinib", "jhu006_gefitinib")])
        assert train(platform).success
        yield platform


def test_a_training_is_refused_before_it_writes_when_space_is_short(trained_once, monkeypatch):
    platform = trained_once
    before = stored(platform)
    runs = len(platform.mlflow.client().search_runs([platform.mlflow.experiment_id("ssda-gefitinib")]))
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda path: Usage(10 * 2**30, 0, 20 * 2**20))
    message = failure_of(train(platform))
    assert message.startswith("not enough disk space for training gefitinib/jhu006_gefitinib: ")
    assert "20 MB free" in message and "MB needed" in message and "\n" not in message
    monkeypatch.undo()
    assert stored(platform) == before
    assert (
        len(platform.mlflow.client().search_runs([platform.mlflow.experiment_id("ssda-gefitinib")])) == runs
    )


def test_a_write_that_runs_out_of_space_fails_in_one_line_and_damages_nothing(trained_once, monkeypatch):
    platform = trained_once
    before = stored(platform)

    def full(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(SSDAModel, "save", full)
    message = failure_of(train(platform))
    monkeypatch.undo()
    assert message.startswith("not enough disk space for training gefitinib/jhu006_gefitinib: ")
    assert "\n" not in message
    client = platform.mlflow.client()
    failed = client.search_runs(
        [platform.mlflow.experiment_id("ssda-gefitinib")], "attributes.status = 'FAILED'"
    )
    assert [r.data.tags["error"] for r in failed] == [message]
    assert stored(platform) == before
    assert champion_model(client, NAME, platform.paths.model_cache)[1].version == int(before[2])
    assert train(platform).success  # space freed: the same training completes
    assert stored(platform)[1] == [*before[1], before[1][-1] + 1]


def test_make_demo_says_in_one_line_that_dagster_storage_ran_out_of_space(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["pipeline"])

    def dagster_storage_full(*args, **kwargs):
        monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda path: Usage(2**30, 2**30, 3 * 2**20))
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(pipeline, "run_pipeline", dagster_storage_full)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path)
    assert pipeline.main() == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("not enough disk space for make demo: ") and "3 MB free" in err and "\n" not in err

    assert pipeline.main() == 1  # checked before anything is written, the disk being still full
    assert capsys.readouterr().err.startswith("not enough disk space for make demo: ")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root")
def test_a_real_small_filesystem_gives_the_same_line(tmp_path, monkeypatch):
    """The artifact store on a 4 MB tmpfs, no margin asked: the logged model does not fit; once the
    volume is enlarged the same training completes."""
    from tests.platform_helpers import make_platform

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)]).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        platform = make_platform(tmp_path / "home", monkeypatch)
        monkeypatch.setenv("SSDA_MIN_FREE_MB", "0")
        monkeypatch.setenv("SSDA_MLFLOW_ARTIFACTS", str(small))
        platform.paths, platform.mlflow = paths_from_env(), mlflow_from_env()
        platform.materialize_data_assets([("gefitinib", "jhu006_gefitinib")])
        message = failure_of(train(platform))
        assert message.startswith(
            f"not enough disk space for training gefitinib/jhu006_gefitinib: {small} has "
        )
        assert "\n" not in message
        assert platform.mlflow.client().search_model_versions(f"name = '{NAME}'") == []
        subprocess.run(["mount", "-o", "remount,size=200m", str(small)], check=True)
        assert train(platform).success
    finally:
        subprocess.run(["umount", str(small)])


def test_an_ingest_is_refused_before_it_writes_and_the_stored_dataset_stays(trained_once, monkeypatch):
    platform = trained_once
    h5ad = platform.paths.sc_dataset("jhu006_gefitinib")
    before = (h5ad.stat().st_mtime_ns, h5ad.stat().st_size)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda path: Usage(10 * 2**30, 0, 5 * 2**20))
    result = platform.materialize(["sc_dataset"], partition_key="jhu006_gefitinib", raise_on_error=False)
    message = failure_of(result)
    assert (
        message.startswith("not enough disk space for ingesting jhu006_gefitinib: ") and "\n" not in message
    )
    monkeypatch.undo()
    assert (h5ad.stat().st_mtime_ns, h5ad.stat().st_size) == before
    assert platform.materialize(["sc_dataset"], partition_key="jhu006_gefitinib").success
