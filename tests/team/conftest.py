"""The team stack started for real on free loopback ports: PostgreSQL, Redis, the MLflow tracking
server and two Celery workers (no webserver: the tests are the run workers, through execute_job)."""

from __future__ import annotations

import functools
import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository

from ssda_assets.raw.demo_raw import write_demo_raw
from ssda_assets.settings import per_instance
from ssda_assets.team.stack import Ports, TeamStack, missing_servers
from tests.helpers import REPO

# Tiny trainings: a few seconds each on a 2-core machine.
TINY = {"epochs": 3, "repetitions": 1}


def task_key(drug: str, dataset: str) -> str:
    return str(dg.MultiPartitionKey({"drug": drug, "dataset": dataset}))


@functools.cache
def _repository() -> tuple[dg.RepositoryDefinition, ReconstructableRepository]:
    from ssda_assets.definitions import defs

    return defs().get_repository_def(), ReconstructableRepository.for_module(
        "ssda_assets.definitions", "defs", working_directory=str(REPO)
    )


def materialize(
    names: list[str], partition: str | None = None, run_config: dict | None = None
) -> dg.JobExecutionResult:
    """One run of the assets `names`, orchestrated by this process as a run worker would: every step
    is sent to a Celery worker. One such run at a time per process (Dagster's logging is not thread-safe)."""
    repository, recon = _repository()
    keys = [dg.AssetKey(name) for name in names]
    job = repository.get_implicit_job_def_for_assets(keys)
    tags = job.get_tags_for_partition_key(partition, selected_asset_keys=keys) if partition else {}
    with dg.DagsterInstance.get() as instance:
        return dg.execute_job(
            recon.get_reconstructable_job(job.name),
            instance,
            asset_selection=keys,
            tags=tags,
            run_config=run_config or {},
            raise_on_error=False,
        )


def train(drug: str, dataset: str, config: dict = TINY) -> dg.JobExecutionResult:
    return materialize(
        ["trained_model"], task_key(drug, dataset), {"ops": {"trained_model": {"config": config}}}
    )


def train_run_id(drug: str, dataset: str, config: dict = TINY) -> str:
    return train(drug, dataset, config).run_id


class Team:
    """The running stack, and trainings orchestrated by other processes (several at once)."""

    def __init__(self, stack: TeamStack) -> None:
        self.stack, self.home = stack, stack.home

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.get()

    @staticmethod
    def trainings(count: int) -> ProcessPoolExecutor:
        """`count` run workers for concurrent trainings (submit `train_run_id`), with this environment."""
        return ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))


@pytest.fixture(scope="package")
def team():
    """Two Celery workers on the `gpu` and `dagster` queues over a fresh Postgres, Redis, MLflow
    server and data folder; everything stopped afterwards."""
    reason = missing_servers()
    if reason:
        pytest.skip(f"team stack unavailable: {reason}")
    folder = Path(
        tempfile.mkdtemp(prefix="ssda-team-")
    )  # not under pytest's 0700 folder: Postgres runs as its user
    stack = TeamStack(folder, Ports.free(), workers=2, dagster=False)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in per_instance():  # the stack's env() sets its own below
            monkeypatch.delenv(name, raising=False)
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        stack.start()
        try:
            write_demo_raw(stack.home / "data" / "raw")
            from ssda_assets.raw.catalog import register_partitions

            with dg.DagsterInstance.get() as instance:
                register_partitions(instance, stack.home / "data" / "raw")
            yield Team(stack)
        finally:
            stack.stop()
            shutil.rmtree(folder, ignore_errors=True)
