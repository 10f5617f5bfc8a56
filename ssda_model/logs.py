"""Where the library's log lines go. Library modules log through `logging.getLogger(__name__)` and
print nothing; a command line (`ssda`, the demo pipeline) calls `log_to_stderr` to show them."""

from __future__ import annotations

import logging
import sys

_MARK = "_ssda_stderr"  # the handler this module added, so a second call adds no second one


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged (a test's capture, a redirect)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def log_to_stderr(*packages: str, level: int = logging.INFO) -> None:
    """Show the log lines of `packages` (e.g. "ssda_model") at `level` and above as plain lines on
    stderr, without touching the root logger (so Dagster's and MLflow's own logging stay as set)."""
    for package in packages:
        logger = logging.getLogger(package)
        logger.setLevel(level)
        if not any(getattr(handler, _MARK, False) for handler in logger.handlers):
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("%(message)s"))
            setattr(handler, _MARK, True)
            logger.addHandler(handler)
        logger.propagate = False
