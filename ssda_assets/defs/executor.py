"""With SSDA_MODE=team every step runs on a Celery worker (docs/team.md); otherwise a run
executes its steps one after another in its own run worker process (Dagster's in-process
executor). Dagster's default, a fresh process per step, spent about 5 s per step starting Python,
Dagster and torch on a 2-core machine: some 35 s of a new dataset's 8-step task run."""

import dagster as dg

from ssda_assets.team import team_mode


@dg.definitions
def executor() -> dg.Definitions:
    if not team_mode():
        return dg.Definitions(executor=dg.in_process_executor)
    from ssda_assets.team.executor import team_executor  # the team extra's packages: team mode only

    return dg.Definitions(executor=team_executor())
