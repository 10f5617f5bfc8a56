"""Ctrl-C and SIGTERM stop the pipeline's in-process runs (`make demo`) after the run they land in.

Dagster's in-process execution handles both signals itself. One that lands inside a step
interrupts the step, but one that lands elsewhere can be swallowed (raised inside a garbage
collector callback), and either way `dagster.materialize` returns and the pipeline went on to the
next run. When a run ends, Dagster also leaves SIGTERM with SIGINT's disposition
(`dagster._utils.interrupts`), which a background job has as ignored, so `kill` stopped working.
`StopSignals` sees every SIGINT and SIGTERM that reaches a Python handler through the
interpreter's wakeup fd, whoever's handler ran, and puts SIGTERM's disposition back after each run.
An interruption that Python could not raise (the swallowed case) is not printed as a traceback:
the stop that follows the run says what happened in one line.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

import dagster as dg

STOPPING = (signal.SIGINT, signal.SIGTERM)


class PipelineInterrupted(Exception):
    """A stop signal arrived during a run; the runs that finished before it are kept."""

    def __init__(self, received: signal.Signals, after: str) -> None:
        super().__init__(f"{received.name} during {after}")
        self.received, self.after = received, after


class StopSignals:
    """Within `with`: `check(after)` raises PipelineInterrupted if SIGINT or SIGTERM arrived since
    the last check. Outside the main thread (where Python delivers no signal) it does nothing."""

    def __enter__(self) -> StopSignals:
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._read, self._write = socket.socketpair()
            for end in (self._read, self._write):
                end.setblocking(False)
            self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
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
        if not self._active:
            return
        self._restore_sigterm()
        try:
            received = self._read.recv(4096)
        except BlockingIOError:
            return
        stops = [signal.Signals(number) for number in received if number in STOPPING]
        if stops:
            raise PipelineInterrupted(stops[0], after)

    def __exit__(self, *exc_info: object) -> None:
        if self._active:
            signal.set_wakeup_fd(self._previous_fd)
            self._restore_sigterm()
            sys.unraisablehook = self._unraisable
            self._read.close()
            self._write.close()
