"""A full disk said in one line: checked before a training or an ingest writes, and translated when
a write runs out of space anyway (ENOSPC, or sqlite's "disk I/O error" on a full volume).

Everything the platform stores is written atomically (files under a temporary name, DuckDB and the
sqlite stores in transactions), so a write that fails for space leaves what was stored before
intact, and the same materialization completes once space is freed.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

MB = 2**20
_FULL = ("no space left on device", "database or disk is full", "disk quota exceeded")
_MAYBE_FULL = ("disk i/o error",)  # sqlite's word for a failed write, a full disk among the causes


def _existing(folder: Path) -> Path:
    """`folder`, or its nearest ancestor that exists (a store not written yet goes there)."""
    folder = folder.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_space(folders: Iterable[Path]) -> list[tuple[Path, int]]:
    """(folder, free bytes) of each distinct filesystem among `folders`, the fullest first."""
    seen: dict[int, tuple[Path, int]] = {}
    for folder in folders:
        found = _existing(Path(folder))
        seen.setdefault(found.stat().st_dev, (Path(folder), shutil.disk_usage(found).free))
    return sorted(seen.values(), key=lambda pair: pair[1])


def disk_full_message(what: str, folder: Path, needed: int, free: int) -> str:
    return (
        f"not enough disk space for {what}: {folder} has {free / MB:.0f} MB free, {needed / MB:.0f} MB "
        "needed; free space there (SSDA_KEEP_VERSIONS bounds the model versions kept) and run it again"
    )


def is_disk_full(exc: BaseException, folders: Iterable[Path] = (), needed: int = 0) -> bool:
    """Whether `exc` (or an error it was raised from) is a write that ran out of space. sqlite's
    generic "disk I/O error" counts only when one of `folders` has less than `needed` bytes free."""
    folders = list(folders)
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(error).lower()
        if any(word in text for word in _FULL):
            return True
        if any(word in text for word in _MAYBE_FULL):
            fullest = free_space(folders)
            if fullest and fullest[0][1] < needed:
                return True
        error = error.__cause__ or error.__context__
    return False


@dataclass(frozen=True)
class SpaceNeeded:
    """What a write (`what`, e.g. "training gefitinib/jhu006") needs: `needed` bytes free in each
    of `folders` (the filesystems it writes)."""

    what: str
    folders: tuple[Path, ...]
    needed: int

    def check(self) -> None:
        """Raise a one-line `dg.Failure` when a folder has less than `needed` bytes free."""
        folder, free = free_space(self.folders)[0]
        if free < self.needed:
            raise dg.Failure(
                description=disk_full_message(self.what, folder, self.needed, free), allow_retries=False
            )

    def line_for(self, exc: BaseException) -> str | None:
        """The one line for an `exc` that ran out of space (naming the fullest folder), else None."""
        if not is_disk_full(exc, self.folders, self.needed):
            return None
        folder, free = free_space(self.folders)[0]
        return disk_full_message(self.what, folder, self.needed, free)

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn a write that runs out of space inside the block into a one-line `dg.Failure`."""
        try:
            yield
        except dg.Failure:
            raise
        except Exception as exc:
            line = self.line_for(exc)
            if line is None:
                raise
            raise dg.Failure(description=line, allow_retries=False) from None
