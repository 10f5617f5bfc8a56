"""The private Dagster names the platform uses (ssda_assets/dagster_private.py, and dagster-celery's
`_submit_task` in the team executor) still exist with the shape the code calls: a Dagster upgrade
that moves one fails here, not in a run."""

import inspect
import re
from pathlib import Path

import pytest

from ssda_assets import dagster_private as private

PACKAGE = Path(__file__).resolve().parents[2] / "ssda_assets"


def test_private_names_have_the_shape_the_platform_calls():
    assert {"RUNNING", "FAILED", "UNKNOWN"} <= set(private.WorkerStatus.__members__)
    assert list(inspect.signature(private.CheckRunHealthResult).parameters)[:2] == ["status", "msg"]
    assert callable(private.RetryMode.from_config) and private.RetryMode.DISABLED
    assert {"pool", "tags", "_replace"} <= set(dir(private.ExecutionStep))
    assert {"step_dict", "step_dict_by_key"} <= set(private.ExecutionPlan._fields)
    assert "SUCCESS" in {status.name for status in private.FINISHED_STATUSES}


def test_celery_submit_task_takes_the_arguments_the_team_executor_passes():
    pytest.importorskip("dagster_celery", reason="the team extra is not installed")
    from dagster_celery.executor import _submit_task

    assert list(inspect.signature(_submit_task).parameters) == [
        "app",
        "plan_context",
        "step",
        "queue",
        "priority",
        "known_state",
    ]


def test_no_other_module_imports_dagster_internals():
    """Only dagster_private.py (and the team executor, for dagster-celery's) reach private names."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "dagster_private.py"
        and re.search(r"^\s*from dagster\._|^\s*import dagster\._", path.read_text(), re.M)
    ]
    assert offenders == []
