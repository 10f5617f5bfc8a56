"""Ctrl-C and SIGTERM stop the pipeline's in-process runs (`make demo`) after the run they land in,
and a training at its next epoch, wherever it runs.

Dagster handles both signals itself while it executes a step: its handler raises an interruption
wherever the main thread is. One that lands inside a garbage-collector callback is swallowed
(printed as "Exception ignored"), and the step runs on to its end: a training registered its
model although Ctrl-C in `make demo` or Terminate in the Dagster UI (which sends the run worker a
SIGINT) asked it to stop. And `dagster.materialize` returns either way, so the pipeline went on
to the next run. When a run ends, Dagster also leaves SIGTERM with SIGINT's disposition
(`dagster._utils.interrupts`), which a background job has as ignored, so `kill` stopped working.

Both watch through the interpreter's wakeup fd, which sees every SIGINT and SIGTERM that reaches a
Python handler, whoever's handler ran. `StopSignals` wraps the pipeline: it stops after the run a
signal landed in, with one line, puts SIGTERM's disposition back after each run and keeps a
swallowed interruption from printing a traceback. `stop_signal_checks` wraps a long step: its
check, called at safe points (the training: every epoch), interrupts the step as Dagster would.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

STOPPING = (signal.SIGINT, signal.SIGTERM)


class _WakeupWatch:
    """The stop signals that reached a Python handler while this is the interpreter's wakeup fd."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        self.previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)

    def received(self, keep: bool = False) -> signal.Signals | None:
        """The first stop signal since the last read; `keep` leaves it for the next one."""
        try:
            numbers = self._read.recv(4096, socket.MSG_PEEK if keep else 0)
        except BlockingIOError:
            return None
        stops = [signal.Signals(number) for number in numbers if number in STOPPING]
        return stops[0] if stops else None

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous_fd)
        self._read.close()
        self._write.close()


_pipeline_watch: _WakeupWatch | None = None  # StopSignals', while the pipeline runs in this process


class PipelineInterrupted(Exception):
    """A stop signal arrived during a run; the runs that finished before it are kept."""

    def __init__(self, received: signal.Signals, after: str) -> None:
        super().__init__(f"{received.name} during {after}")
        self.received, self.after = received, after


class StopSignals:
    """Within `with`: `check(after)` raises PipelineInterrupted if SIGINT or SIGTERM arrived since
    the last check. Outside the main thread (where Python delivers no signal) it does nothing."""

    def __enter__(self) -> StopSignals:
        global _pipeline_watch
        self._watch = _WakeupWatch() if threading.current_thread() is threading.main_thread() else None
        if self._watch is not None:
            _pipeline_watch = self._watch
            self._sigterm = signal.getsignal(signal.SIGTERM)
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._quiet_interruptions
        return self

    def _quiet_interruptions(self, unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, (KeyboardInterrupt, dg.DagsterExecutionInterruptedError)):
            self._unraisable(unraisable)

    def _restore_sigterm(self) -> None:
        if self._sigterm is not None:  # None: a handler Python did not install, left alone
            signal.signal(signal.SIGTERM, self._sigterm)

    def check(self, after: str) -> None:
        if self._watch is None:
            return
        self._restore_sigterm()
        received = self._watch.received()
        if received is not None:
            raise PipelineInterrupted(received, after)

    def __exit__(self, *exc_info: object) -> None:
        global _pipeline_watch
        if self._watch is not None:
            _pipeline_watch = None
            self._watch.close()
            self._restore_sigterm()
            sys.unraisablehook = self._unraisable


def _interrupt_if(received: Callable[[], signal.Signals | None]) -> Callable[[], None]:
    def check() -> None:
        stop = received()
        if stop is not None:
            raise dg.DagsterExecutionInterruptedError(f"by {stop.name}")

    return check


@contextmanager
def stop_signal_checks() -> Iterator[Callable[[], None]]:
    """Within a long step: a check that interrupts the step, as Dagster's own handler would, if
    SIGINT or SIGTERM arrived since the step began (under `StopSignals`: since the pipeline's
    last run ended, and left for its check to report). It checks nothing where it cannot watch:
    outside the main thread, or where another wakeup fd (an event loop's) is in place."""
    pipeline = _pipeline_watch
    if pipeline is not None:
        yield _interrupt_if(lambda: pipeline.received(keep=True))
        return
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    watch = _WakeupWatch()
    if watch.previous_fd != -1:
        watch.close()
        yield lambda: None
        return
    try:
        yield _interrupt_if(watch.received)
    finally:
        watch.close()
