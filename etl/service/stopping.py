"""SIGTERM and SIGINT: the first asks for a graceful stop, a second one exits at once.

The graceful stop sets an event the sync engine checks after each committed batch, so
the batch in flight commits, the run is recorded ``interrupted`` and its lock released.
A watchdog bounds the wait: past the timeout the process exits anyway. Exiting hard
(the watchdog, a second signal) loses nothing either: the database server rolls back
the open batch transaction and releases the lock when the connection drops, and the
next run resumes from the last committed checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

import structlog

from etl.errors import EXIT_FAILURE

log = structlog.get_logger("etl.service.stopping")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Turns the first stop signal into ``event`` and bounds how long stopping may take."""

    def __init__(self, timeout: float, hard_exit: Callable[[int], NoReturn] = os._exit) -> None:
        self.event = threading.Event()
        self._timeout = timeout
        self._hard_exit = hard_exit
        self._stopped = threading.Event()

    @contextmanager
    def installed(self) -> Iterator[threading.Event]:
        """Handle the signals for the block (main thread only); yield the stop event."""
        previous = {number: signal.signal(number, self._on_signal) for number in SIGNALS}
        try:
            yield self.event
        finally:
            self._stopped.set()  # a clean finish disarms the watchdog
            for number, handler in previous.items():
                signal.signal(number, handler)

    def request(self, reason: str) -> None:
        """Start a graceful stop, as a first signal would (idempotent)."""
        if self.event.is_set():
            return
        self.event.set()
        # Logging happens on the watchdog's thread: a signal handler that wrote to the
        # log stream while the interrupted code was writing to it would corrupt the line.
        threading.Thread(
            target=self._watch, args=(reason,), name="stop-watchdog", daemon=True
        ).start()

    def _on_signal(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.event.is_set():
            os.write(
                2, f"etl: second {name}: exiting now, without waiting for the batch\n".encode()
            )
            self._hard_exit(128 + number)
        self.request(name)

    def _watch(self, reason: str) -> None:
        log.warning("stop_requested", reason=reason, timeout_seconds=self._timeout)
        if self._stopped.wait(self._timeout):
            return
        log.error("stop_timeout_exceeded", timeout_seconds=self._timeout)
        self._hard_exit(EXIT_FAILURE)
