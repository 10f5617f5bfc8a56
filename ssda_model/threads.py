"""Share the CPU cores between the heavy steps that run at the same time (issue 13).

Torch gives every process one intra-op thread per core. Two processes training at once on two
cores then run four busy threads, and OpenMP's spinning idle threads make each >10× slower than
alone. So each heavy step (a fit, a scoring pass, an attribution) holds a share of the cores while
it runs: it writes a claim file named by its PID in a per-user runtime folder, counts the claims
of live processes, and sets torch's threads to cores // claimants. A long step (training)
`rebalance`s now and then, so it gives cores up when another step starts and takes them back
when that step ends. `SSDA_THREADS=N` forces N threads (the claim is still made, so others count
this process). Idle threads spin only briefly before they sleep: see `ssda_model/__init__.py`.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

THREADS_ENV = "SSDA_THREADS"
RUNTIME_ENV = "SSDA_RUNTIME_DIR"  # where the claim files live; default: the temp dir, per user
REBALANCE_EVERY_S = 1.0


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, bounded by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def claims_folder() -> Path:
    """Where heavy steps leave one claim file per live process ($SSDA_RUNTIME_DIR, else the temp folder)."""
    root = Path(os.environ.get(RUNTIME_ENV) or tempfile.gettempdir())
    return root / f"ssda4drug-heavy-steps-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def live_claimants(folder: Path) -> int:
    """Processes holding a claim now (at least this one); claims of dead processes are removed."""
    live = {os.getpid()}
    for claim in folder.glob("*.claim"):
        pid = int(claim.stem) if claim.stem.isdigit() else None
        if pid is None or not _alive(pid):
            claim.unlink(missing_ok=True)
        else:
            live.add(pid)
    return len(live)


def threads_for_share() -> int:
    """Intra-op threads for this process: `SSDA_THREADS` if set, else its share of the cores, at
    most an `OMP_NUM_THREADS` the user set."""
    forced = os.environ.get(THREADS_ENV, "").strip()
    if forced:
        return max(1, int(forced))
    share = max(1, available_cores() // live_claimants(claims_folder()))
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(share, int(limit)) if limit.isdigit() and int(limit) > 0 else share


class CoreShare:
    """The claim of this process while a heavy step runs; `rebalance` follows the other claimants."""

    def __init__(self) -> None:
        self.threads = torch.get_num_threads()
        self._checked = 0.0

    def rebalance(self) -> int:
        """Recount the claimants (at most once per `REBALANCE_EVERY_S`) and set torch's threads."""
        now = time.monotonic()
        if now - self._checked >= REBALANCE_EVERY_S:
            self._checked = now
            threads = threads_for_share()
            if threads != self.threads:
                torch.set_num_threads(threads)
                self.threads = threads
        return self.threads


_held: list[CoreShare] = []  # nested steps of one process share its one claim


@contextmanager
def share_cores() -> Iterator[CoreShare]:
    """Hold this process's share of the cores for a heavy step; torch's thread count is restored after."""
    if _held:
        yield _held[-1]
        return
    folder = claims_folder()
    folder.mkdir(parents=True, exist_ok=True)
    claim = folder / f"{os.getpid()}.claim"
    claim.touch()
    share, previous = CoreShare(), torch.get_num_threads()
    _held.append(share)
    try:
        share.rebalance()
        yield share
    finally:
        _held.pop()
        claim.unlink(missing_ok=True)
        torch.set_num_threads(previous)
