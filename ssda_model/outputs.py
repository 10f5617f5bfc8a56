"""Output locations: checked before any work starts, replaced whole, never a folder the user made.

Every folder written here carries MARKER, and only such a folder (or an empty one) is ever
replaced: `--out .` or a folder holding the user's files is refused, not emptied. The swap of the
old output for the new one holds an exclusive lock on the parent folder, so concurrent writers of
one output take turns and the last one wins. A writer killed between its two renames leaves the
old output in its staging folder; the next check or write of that output puts it back.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ssda_model.errors import SSDAInputError

MARKER = ".ssda-output"
_STAGING = "ssda-staging-"
_RETIRED = "retired"


def _absolute(path: str | Path) -> Path:
    """`.`, `..` and relative names resolved against the working directory (symlinks kept)."""
    return Path(os.path.abspath(path))


@contextmanager
def _swap_lock(parent: Path) -> Iterator[None]:
    """Exclusive among ssda processes writing into `parent`; the OS releases it if the process dies."""
    descriptor = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _restore_retired(path: Path) -> None:
    """With the lock held, a staging folder holding a retired output belongs to a dead writer:
    put its output back when `path` is missing, and remove the staging folder."""
    dead = [s for s in path.parent.glob(f".{glob.escape(path.name)}.{_STAGING}*") if (s / _RETIRED).exists()]
    if dead and not os.path.lexists(path):
        os.replace(max(dead, key=lambda s: s.stat().st_mtime) / _RETIRED, path)
    for staging in dead:
        shutil.rmtree(staging, ignore_errors=True)


def _refuse_foreign(path: Path, folder: bool) -> None:
    """A folder output may only replace an empty folder or one written here; a file output no folder."""
    if not os.path.lexists(path):
        return
    if not folder:
        if path.is_dir():
            raise SSDAInputError(str(path), "is a folder; expected the name of a file to write")
        return
    if path.is_symlink() or not path.is_dir():
        raise SSDAInputError(
            str(path), "is a file or a link, not a folder; refusing to replace it (choose another --out)"
        )
    if any(path.iterdir()) and not (path / MARKER).is_file():
        raise SSDAInputError(
            str(path),
            f"is a folder ssda did not write (no {MARKER} inside); refusing to replace "
            "its contents: choose a new or empty folder",
        )


def check_output(path: str | Path, folder: bool) -> None:
    """Refuse, before any data is read or trained on, an output that will not be written: a file in
    the way, a folder of the user's, or a parent folder that cannot be created or written."""
    path = _absolute(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _swap_lock(path.parent):
            _restore_retired(path)
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.{_STAGING}", dir=path.parent))
    except OSError as exc:
        raise SSDAInputError(str(path), f"cannot write here ({exc.strerror})") from None
    _refuse_foreign(path, folder)


def replace_folder(path: str | Path, write: Callable[[Path], None], *, owned: bool = False) -> Path:
    """Call `write(tmp)` for a temporary sibling path of the same name (a file or a folder), then
    swap it in for `path`: an output is never half-written, a failed write keeps the old one, and
    a folder that ssda did not write is never replaced, unless the caller `owned` the location
    (the platform's data zone, whose folders may predate the marker)."""
    path = _absolute(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_STAGING}", dir=path.parent))
    except OSError as exc:
        raise SSDAInputError(str(path), f"cannot write here ({exc.strerror})") from None
    try:
        new = staging / path.name
        write(new)
        if new.is_dir():
            (new / MARKER).write_text(
                "written by ssda; the next write to this output replaces the whole folder\n"
            )
        with _swap_lock(path.parent):
            _restore_retired(path)
            if not owned:
                _refuse_foreign(path, new.is_dir())
            if new.is_dir() and os.path.lexists(path):
                os.replace(path, staging / _RETIRED)
            os.replace(new, path)
    except OSError as exc:
        raise SSDAInputError(str(path), f"cannot write it ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
