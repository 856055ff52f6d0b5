"""Timing, peak-RSS and write-counter capture for one measured run.

Child processes are reaped with os.wait4 (in bench.launch) so ru_maxrss is that child's
own peak, not the harness's, and not the maximum over all children so far
(RUSAGE_CHILDREN would be).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.mysqlserver import Server


class RunFailed(RuntimeError):
    """A measured child exited non-zero or timed out; the message carries its log tail."""


class RunTimedOut(RunFailed):
    """A measured child was killed at its time limit (`--timeout`)."""

    def __init__(self, message: str, timeout_s: float):
        super().__init__(message)
        self.timeout_s = timeout_s


@dataclass
class Result:
    """One measured run of one runner on one scenario."""

    scenario: str
    runner: str
    rows: int
    wall_s: float
    peak_mb: float | None
    rows_written: int | None  # userstat ROWS_CHANGED on the target's students table
    state_rows_written: int | None  # same, summed over the target's other tables (etl_*)
    handler: dict[str, int] = field(default_factory=dict)  # global Handler_* deltas
    check: str = ""
    note: str = ""
    self_reported_s: float | None = None  # the sync's own run_finished "seconds", if logged
    pairing: str = "mariadb-mariadb"  # source-target kinds of database
    timed_out: bool = False  # killed at --timeout: wall_s is the limit, a lower bound
    mode: str | None = None  # the sync's plan mode (range / lookup), from its run_started
    batches: dict[str, list[float]] = field(default_factory=dict)  # phase/via -> [n, seconds]

    @property
    def rows_per_s(self) -> float:
        """Source rows processed per second."""
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0  # 0: run failed

    def to_json(self) -> dict[str, Any]:
        """Plain dict, with the derived rate included."""
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}


@dataclass(frozen=True)
class Child:
    """Outcome of one child process."""

    wall_s: float
    peak_mb: float
    returncode: int


LAUNCHER = Path(__file__).with_name("launch.py")

_current: subprocess.Popen[bytes] | None = None


def kill_current_child() -> None:
    """Terminate the running measured child, if any (used by the cleanup path)."""
    proc = _current
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_child(
    cmd: Sequence[str], env: Mapping[str, str], log: Path, timeout_s: float, cwd: Path
) -> Child:
    """Run cmd via bench.launch (see there why), output to `log`, in its own process group.

    Wall time and peak RSS are the launcher's measurements of cmd alone.
    """
    global _current
    log.parent.mkdir(parents=True, exist_ok=True)
    stats = log.with_suffix(".rusage")
    stats.unlink(missing_ok=True)
    # By path, not `-m bench.launch`: the sync may run from an exported ref (--sync-ref)
    # where the bench package is not importable; launch.py imports nothing of ours.
    launcher = [sys.executable, str(LAUNCHER), str(stats), *cmd]
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        kill_current_child()

    with log.open("wb") as out:
        proc = subprocess.Popen(
            launcher, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
        _current = proc
        timer = threading.Timer(timeout_s, on_timeout)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            _current = None
    if timed_out.is_set():
        raise RunTimedOut(
            f"{cmd[0]} timed out after {timeout_s:.0f}s; log: {log}\n{tail(log)}", timeout_s
        )
    if not stats.exists():
        raise RunFailed(f"{cmd[0]}: launcher died (exit {proc.returncode}); log: {log}")
    wall, peak_kib = stats.read_text(encoding="ascii").split()
    return Child(float(wall), int(peak_kib) / 1024, proc.returncode)


def tail(log: Path, lines: int = 25) -> str:
    """Last lines of a child's log, for failure messages."""
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Counters:
    """Server-side write counters captured around a run."""

    server: Server
    target_db: str
    handler: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        """Snapshot counters before the run."""
        self.handler = self.server.handler_counters()
        self.tables = self.server.table_changes(self.target_db)

    def stop(self, userstat: bool) -> tuple[dict[str, int], int | None, int | None]:
        """Deltas: (Handler_* dict, students ROWS_CHANGED, other tables' ROWS_CHANGED)."""
        after = self.server.handler_counters()
        handler = {k.removeprefix("Handler_"): after[k] - self.handler.get(k, 0) for k in after}
        if not userstat:
            return handler, None, None
        tables = self.server.table_changes(self.target_db)
        delta = {t: n - self.tables.get(t, 0) for t, n in tables.items()}
        students = delta.pop("students", 0)
        return handler, students, sum(delta.values())


def measure(
    server: Server,
    target_db: str,
    userstat: bool,
    body: Callable[[], tuple[float, float | None]],
) -> tuple[float, float | None, dict[str, int], int | None, int | None]:
    """Run body() (returning wall s and peak MB) between counter snapshots."""
    counters = Counters(server, target_db)
    counters.start()
    wall, peak = body()
    handler, written, state_written = counters.stop(userstat)
    return wall, peak, handler, written, state_written
