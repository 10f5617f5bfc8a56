"""A single-user install has none of the team extra's packages: the definitions still load, and
the team mode says in one line what to install."""

import subprocess
import sys

TEAM_PACKAGES = ("dagster_postgres", "dagster_celery", "celery", "redis", "psycopg2")

BLOCKER = f"""
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TEAM_PACKAGES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def run(code: str, **env) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


def test_definitions_load_without_the_team_packages():
    done = run(
        "from ssda_assets.definitions import defs\n"
        "d = defs()\n"
        "assert d.resolve_asset_graph().get_all_asset_keys()\n"
        f"assert not any(m.split('.')[0] in {TEAM_PACKAGES!r} for m in sys.modules)\n"
        "print('loaded')",
        SSDA_MODE="",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"


def test_team_mode_names_the_extra_to_install():
    done = run(
        "from ssda_assets.team import TeamPackageMissing\n"
        "from ssda_assets.definitions import defs\n"
        "try:\n"
        "    defs()\n"
        "except Exception as exc:\n"  # Dagster wraps it: the error of the module that failed to load
        "    while not isinstance(exc, TeamPackageMissing):\n"
        "        exc = exc.__cause__\n"
        "    print(exc)\n",
        SSDA_MODE="team",
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    assert line == "the team mode needs dagster_celery, which is not installed: pip install ssda4drug[team]"
