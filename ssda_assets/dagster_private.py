"""The private Dagster names the platform relies on, imported here and nowhere else.

Dagster keeps these under `dagster._core`, so an upgrade may move or change them without notice;
the project pins `dagster==1.13.27`. `tests/assets/test_dagster_private.py` imports this module and
checks the signatures and members the platform calls (and dagster-celery's `_submit_task`, which
the team executor wraps), so an upgrade that breaks one fails a test instead of a run. Public
names (`dg.DefaultRunLauncher`, `dg.DagsterRunStatus`, `dg.RunsFilter`) are imported from `dagster`.
"""

from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES

__all__ = [
    "FINISHED_STATUSES",
    "CheckRunHealthResult",
    "ExecutionPlan",
    "ExecutionStep",
    "RetryMode",
    "WorkerStatus",
]
