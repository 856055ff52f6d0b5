"""Helpers for the daemon tests: processes, deadlines, the run history, free ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.helpers.support import REPO, DatabasePair, Student, python_m_etl

T = TypeVar("T")


def students(count: int) -> list[Student]:
    """ASCII keys that sort the same in every collation, so batches are predictable."""
    return [(f"s{i:05d}", "x", "math", float(i % 100)) for i in range(count)]


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def runs(pair: DatabasePair) -> list[dict[str, Any]]:
    """The target's run history, oldest first; empty before the first run made the table."""
    try:
        with pair.engine("target").connect() as connection:
            rows = connection.execute(text("SELECT * FROM etl_runs ORDER BY started_at, run_id"))
            return [dict(row._mapping) for row in rows]
    except DBAPIError:
        return []


def target_count(pair: DatabasePair) -> int:
    try:
        with pair.engine("target").connect() as connection:
            return int(connection.execute(text("SELECT COUNT(*) FROM students")).scalar_one())
    except DBAPIError:
        return 0


def http_get(port: int, path: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET on the daemon's endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@dataclass
class Process:
    """One ``python -m etl`` process, its output in a file (a pipe could fill and block it)."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called ``name`` so far."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == name:
                    found.append(event)
        return found

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"process {self.pid} still running after {timeout}s:\n{self.output()[-3000:]}"
            ) from None


@dataclass
class Launcher:
    """Starts processes for a test and makes sure none outlives it."""

    folder: Path
    started: list[Process] = field(default_factory=list)

    def start(self, *args: str, env: dict[str, str]) -> Process:
        path = self.folder / f"etl-{len(self.started)}.log"
        with path.open("wb") as log:
            popen = subprocess.Popen(
                python_m_etl(*args), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        process = Process(popen, path)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        """SIGKILL whatever is still running (a failed test must not leave daemons behind)."""
        for process in self.started:
            if process.alive():
                process.signal(signal.SIGKILL)
                process.popen.wait(30)
