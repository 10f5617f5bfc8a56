"""The Celery executor of the team mode: dagster-celery's, plus two things a team needs.

- Steps in the pool `gpu` (trained_model) go to the Celery queue `gpu`, every other step to the
  default queue `dagster`: the pool that limits trainings also names where they run.
- A step whose Celery worker dies (`kill -9`, out of memory, a lost machine) is failed. Stock
  dagster-celery waits for its result for ever: the worker had taken the task off the queue, so
  nothing else will run it, and the run worker that waits is alive, so run monitoring sees nothing
  wrong. We ask the worker holding a started step whether it still answers, and fail the step when
  it stops; the run fails, its pool slot is freed and run_retries runs it again on a live worker.
"""

from __future__ import annotations

import time

import dagster as dg

from ssda_assets import settings
from ssda_assets.dagster_private import ExecutionPlan, ExecutionStep, RetryMode
from ssda_assets.team import missing_team_package

try:
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task
    from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG
except ImportError as error:  # a single-user install: the team extra is not there
    raise missing_team_package(error) from None

BROKER, BACKEND = "SSDA_CELERY_BROKER", "SSDA_CELERY_BACKEND"
GPU = "gpu"  # the pool of trained_model, and the Celery queue of the GPU workers
SETTINGS = {
    "task_track_started": True,  # a started task records the worker that runs it (the watch needs it)
    "worker_prefetch_multiplier": 1,
    # A busy worker reserves nothing more: even a prefetch of 1 let one worker hold a second training
    # back while the other worker sat idle (Redis brokers only, Celery >= 5.6).
    "worker_disable_prefetch": True,
    "broker_connection_retry_on_startup": True,
}


class StepWorkerLost(Exception):
    """The Celery worker that was running a step stopped answering."""


class WatchedResult:
    """A step's Celery result that is also over when the worker running the step stops answering
    pings for `lost_after` seconds (asked every `every` seconds while the step runs)."""

    def __init__(self, result, app, step_key: str, every: float = 3.0, lost_after: float = 9.0) -> None:
        self.result, self.app, self.step_key = result, app, step_key
        self.every, self.lost_after = every, lost_after
        self.next_check, self.silent_since, self.worker = 0.0, None, None

    def _silent(self) -> bool:
        now = time.monotonic()
        if now >= self.next_check:
            self.next_check = now + self.every
            info = self.result.info if self.result.state == "STARTED" else None
            self.worker = info.get("hostname") if isinstance(info, dict) else None
            answered = self.worker is None or self.app.control.ping(destination=[self.worker], timeout=1.0)
            self.silent_since = None if answered else self.silent_since or now
        return self.silent_since is not None and now - self.silent_since >= self.lost_after

    def ready(self) -> bool:
        return self.result.ready() or self._silent()

    def get(self):
        if not self.result.ready():
            raise StepWorkerLost(
                f"Celery worker {self.worker} stopped answering while it ran step {self.step_key} "
                "(killed or crashed): the step is failed so that the run can be retried"
            )
        return self.result.get()

    def revoke(self) -> None:
        self.result.revoke()


def _submit_watched(app, plan_context, step, queue, priority, known_state) -> WatchedResult:
    return WatchedResult(_submit_task(app, plan_context, step, queue, priority, known_state), app, step.key)


def route_gpu_steps(plan: ExecutionPlan) -> ExecutionPlan:
    """The plan with every step of the pool `gpu` tagged for the Celery queue `gpu` (an explicit
    queue tag on the asset wins)."""

    def routed(step):
        if isinstance(step, ExecutionStep) and step.pool == GPU and DAGSTER_CELERY_QUEUE_TAG not in step.tags:
            return step._replace(tags={**step.tags, DAGSTER_CELERY_QUEUE_TAG: GPU})
        return step

    steps = {handle: routed(step) for handle, step in plan.step_dict.items()}
    return plan._replace(step_dict=steps, step_dict_by_key={step.key: step for step in steps.values()})


class TeamCeleryExecutor(CeleryExecutor):
    def execute(self, plan_context, execution_plan):
        return core_celery_execution_loop(
            plan_context, route_gpu_steps(execution_plan), step_execution_fn=_submit_watched
        )


@dg.executor(
    name="celery", config_schema=CELERY_CONFIG, requirements=dg.multiple_process_executor_requirements()
)
def team_celery_executor(init_context) -> TeamCeleryExecutor:
    config = init_context.executor_config
    return TeamCeleryExecutor(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),
    )


def team_executor() -> dg.ExecutorDefinition:
    """The executor of every job in team mode: broker and result backend from the environment."""
    return team_celery_executor.configured(
        {"broker": {"env": BROKER}, "backend": {"env": BACKEND}, "config_source": SETTINGS}
    )


def worker_app_args() -> dict:
    """The Celery app of a worker, configured as the executor that sends it steps."""
    return TeamCeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED),
        broker=settings.celery_broker(),
        backend=settings.celery_backend(),
        config_source=SETTINGS,
    ).app_args()
