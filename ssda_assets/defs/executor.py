"""With SSDA_MODE=team every step runs on a Celery worker (README: Team set-up); otherwise Dagster's
default executor runs them in processes of this machine."""

import dagster as dg

from ssda_assets.team.executor import team_executor, team_mode


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=team_executor()) if team_mode() else dg.Definitions()
