"""One writer at a time on a registered model's aliases.

The champion rule reads the champion, compares and moves the alias. Two trainings of one task that
finish together (two Celery workers, or two runs on one machine) would both read the same champion,
and the later write would win whatever its score. The lock serialises that compare-and-set:

- a PostgreSQL advisory lock when SSDA_REGISTRY_LOCK (or the tracking URI itself) is a
  `postgresql://` URL: the team mode points it at the database behind its MLflow server, which every
  machine reaches;
- otherwise an exclusive file lock in the folder SSDA_REGISTRY_LOCK names, or next to a sqlite
  store, or under $DAGSTER_HOME (writers on one machine).

Both kinds are released by the server or the kernel when their holder dies, so a killed training
never leaves a model locked.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ssda_assets.settings import dagster_home
from ssda_assets.settings import registry_lock as configured_lock
from ssda_assets.team import missing_team_package

LOCK_ENV = "SSDA_REGISTRY_LOCK"
WAIT_S = 120.0  # far longer than an alias move takes; a holder this slow is stuck


class RegistryBusy(TimeoutError):
    """Another writer held the model's aliases for longer than the wait."""


def lock_target(tracking_uri: str) -> str:
    """A postgresql:// URL or a folder: where the locks of this tracking store live."""
    configured = configured_lock()
    if configured:
        return configured
    if tracking_uri.startswith("postgresql"):
        return tracking_uri
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).parent / "registry-locks")
    return str(dagster_home() / "registry-locks")


@contextmanager
def _advisory_lock(url: str, name: str, wait_s: float) -> Iterator[None]:
    try:
        import psycopg2  # the team extra (dagster-postgres): only a postgresql:// store gets here
    except ImportError as error:
        raise missing_team_package(error) from None

    key = int.from_bytes(hashlib.sha256(f"ssda-registry:{name}".encode()).digest()[:8], "big", signed=True)
    connection = psycopg2.connect(url.replace("postgresql+psycopg2:", "postgresql:"))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{int(wait_s * 1000)}ms",))
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable:
                raise RegistryBusy(f"the aliases of {name} stayed locked for {wait_s:g} s") from None
            yield  # the lock ends with the session: unlocked below, or by the server if we die
            cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


@contextmanager
def _file_lock(folder: Path, name: str, wait_s: float) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with (folder / f"{name}.lock").open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryBusy(
                        f"the aliases of {name} stayed locked ({handle.name}) for {wait_s:g} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def registry_lock(tracking_uri: str, name: str, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the lock of registered model `name` of the store at `tracking_uri`."""
    target = lock_target(tracking_uri)
    lock = (
        _advisory_lock(target, name, wait_s)
        if target.startswith("postgresql")
        else _file_lock(Path(target), name, wait_s)
    )
    with lock:
        yield
