"""Team mode: Dagster on PostgreSQL, steps on Celery workers, MLflow as a tracking server.

Its packages (dagster-postgres, dagster-celery, celery, redis) are the `team` extra: a single-user
install has none of them, so only team-mode code imports them, and a missing one is one line
saying what to install (`missing_team_package`)."""

from ssda_assets import settings

MODE, TEAM = "SSDA_MODE", "team"
INSTALL = "pip install ssda4drug[team]"  # from a checkout: pip install -e ".[team]"


def team_mode() -> bool:
    return settings.team_mode()


class TeamPackageMissing(ImportError):
    """A package of the `team` extra is not installed."""


def missing_team_package(error: ImportError) -> TeamPackageMissing:
    """The one-line error for a team-mode import that failed: which package, what to install."""
    package = error.name or "a package of the team extra"
    return TeamPackageMissing(
        f"the team mode needs {package}, which is not installed: {INSTALL}", name=error.name
    )
