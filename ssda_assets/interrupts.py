"""Ctrl-C and SIGTERM stop the pipeline's in-process runs (`make demo`) after the run they land in.

Dagster's in-process execution handles both signals itself. One that lands inside a step
interrupts the step, but one that lands elsewhere can be swallowed (raised inside a garbage
collector callback), and either way `dagster.materialize` returns and the pipeline went on to the
next run. When a run ends, Dagster also leaves SIGTERM with SIGINT's disposition
(`dagster._utils.interrupts`), which a background job has as ignored, so `kill` stopped working.
`StopSignals` sees every SIGINT and SIGTERM that reaches a Python handler through the
interpreter's wakeup fd, whoever's handler ran, and puts SIGTERM's disposition back after each run.
An interruption that Python could not raise (the swallowed case) is not printed as a traceback:
the stop that follows the run says what happened in one line. Long steps call
`interrupt_if_stopping` at safe points (the training: every epoch), so that a swallowed signal
still stops the step there instead of letting it run to its end.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

import dagster as dg

STOPPING = (signal.SIGINT, signal.SIGTERM)
_watching: StopSignals | None = None  # the pipeline's, while its runs execute in this process


class PipelineInterrupted(Exception):
    """A stop signal arrived during a run; the runs that finished before it are kept."""

    def __init__(self, received: signal.Signals, after: str) -> None:
        super().__init__(f"{received.name} during {after}")
        self.received, self.after = received, after


class StopSignals:
    """Within `with`: `check(after)` raises PipelineInterrupted if SIGINT or SIGTERM arrived since
    the last check. Outside the main thread (where Python delivers no signal) it does nothing."""

    def __enter__(self) -> StopSignals:
        global _watching
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            _watching = self
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
        received = self._received(0)
        if received is not None:
            raise PipelineInterrupted(received, after)

    def pending(self) -> signal.Signals | None:
        """The first stop signal since the last `check`, left for that check to report."""
        return self._received(socket.MSG_PEEK) if self._active else None

    def _received(self, flags: int) -> signal.Signals | None:
        try:
            received = self._read.recv(4096, flags)
        except BlockingIOError:
            return None
        stops = [signal.Signals(number) for number in received if number in STOPPING]
        return stops[0] if stops else None

    def __exit__(self, *exc_info: object) -> None:
        global _watching
        if self._active:
            _watching = None
            signal.set_wakeup_fd(self._previous_fd)
            self._restore_sigterm()
            sys.unraisablehook = self._unraisable
            self._read.close()
            self._write.close()


def interrupt_if_stopping() -> None:
    """Interrupt the running step, as Dagster's own handler would, if a stop signal reached the
    pipeline since its last run ended; nothing outside the pipeline (runs launched by the daemon,
    tests)."""
    received = _watching.pending() if _watching is not None else None
    if received is not None:
        raise dg.DagsterExecutionInterruptedError(f"by {received.name}")
