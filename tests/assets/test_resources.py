"""The warehouse resource: a reader holding warehouse.duckdb open delays a materialization by a
bounded, configurable wait, then fails it with one line naming the holder and what to do."""

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ssda_assets.resources import warehouse_from_env

HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
    "print('holding', flush=True); sys.stdin.read()"
)


@pytest.fixture
def reader(platform):
    """Another process (a notebook, say) with the warehouse open read-only, until it is closed."""
    platform.materialize(["gdsc_response"])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, platform.warehouse.database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "holding"
    yield holder
    holder.stdin.close()
    holder.wait(timeout=30)


def sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_held_warehouse_fails_the_materialization_in_bounded_time_naming_the_holder(
    platform, reader, monkeypatch
):
    monkeypatch.setenv("SSDA_WAREHOUSE_LOCK_WAIT_S", "1.5")
    platform.warehouse = warehouse_from_env()
    before = sha(platform.warehouse.database)
    started = time.perf_counter()
    result = platform.materialize(["gdsc_response"], raise_on_error=False)
    assert not result.success and time.perf_counter() - started < 20
    message = result.get_step_failure_events()[0].event_specific_data.error.message.strip()
    assert "\n" not in message and "Traceback" not in message
    for part in (
        f"warehouse {platform.warehouse.database} is locked by process {reader.pid}",
        "stayed locked for 1.5 s",
        "close that connection",
        "snapshot",
        "SSDA_WAREHOUSE_LOCK_WAIT_S",
    ):
        assert part in message, part
    assert sha(platform.warehouse.database) == before


def test_a_lock_released_within_the_wait_lets_the_materialization_through(platform, reader, monkeypatch):
    monkeypatch.setenv("SSDA_WAREHOUSE_LOCK_WAIT_S", "20")
    platform.warehouse = warehouse_from_env()
    threading.Timer(1.0, reader.stdin.close).start()  # the notebook is closed a second later
    assert platform.materialize(["gdsc_response"]).success
    assert len(platform.query("SELECT * FROM gdsc_response")) > 0
