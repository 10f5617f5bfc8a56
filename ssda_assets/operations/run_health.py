"""Runs whose process died: told apart from live ones by the run worker's PID, then failed and unblocked.

Dagster's run monitoring marks a run FAILED when its launcher reports the worker dead, and its
concurrency daemon then frees the run's pool slots. The stock `DefaultRunLauncher` cannot tell a
dead local worker from a live one, so a `kill -9` left runs STARTED and the `gpu` slot taken for
good. `LocalRunLauncher` adds that health check (the PID of the process that emitted RUN_START,
checked against its start time so a recycled PID does not pass); `fail_dead_runs` applies the same
check without the daemon, for in-process runs such as `make demo`'s.
"""

from __future__ import annotations

import dagster as dg
import psutil

from ssda_assets.dagster_private import FINISHED_STATUSES, CheckRunHealthResult, WorkerStatus

ACTIVE = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The PID of the process that started executing the run (None before it started)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def worker_alive(instance: dg.DagsterInstance, run_id: str, pid: int | None = None) -> bool | None:
    """Whether the run's worker process (`pid`, read from RUN_START when not given) still runs on
    this machine; None when not yet known."""
    pid = worker_pid(instance, run_id) if pid is None else pid
    record = instance.get_run_record_by_id(run_id)
    if pid is None or record is None or record.start_time is None:
        return None
    try:
        process = psutil.Process(pid)
        # A PID recycled by a newer process started after the run did: the worker is gone.
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= record.start_time + 1
    except psutil.Error:
        return False


class LocalRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher plus a worker health check, so run monitoring fails dead runs."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run.run_id)
        alive = worker_alive(self._instance, run.run_id, pid)
        if alive is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run worker has not started yet")
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)"
        )


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark FAILED every active run whose worker process is gone, and free the pool slots held by
    finished runs; returns the run ids it failed. What the monitoring daemons do, for a process
    that runs assets without them."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=ACTIVE)):
        run = record.dagster_run
        pid = worker_pid(instance, run.run_id)
        if worker_alive(instance, run.run_id, pid) is False:
            instance.report_run_failed(
                run,
                f"run worker process {pid} is gone "
                "(killed or crashed); marked failed so later runs can proceed",
            )
            failed.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            finished = instance.get_run_records(
                dg.RunsFilter(run_ids=list(holders), statuses=FINISHED_STATUSES)
            )
            for record in finished:
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return failed
