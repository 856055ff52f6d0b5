"""Real faults between the engine and a real MariaDB: cut, frozen and locked connections.

Each test puts a TCP proxy (``tests.helpers.proxy``) in front of the shared server for the
side it attacks; the test's own checks read both databases directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, make_url, text
from structlog.testing import capture_logs

from etl.config import DatabaseSettings, RetrySettings, Settings
from etl.engine.db import Databases, make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import BatchDone, RunResult, SyncOptions
from jobs.students import JOB
from tests.helpers.proxy import Proxy
from tests.helpers.support import DatabasePair

PATIENT = RetrySettings(attempts=20, initial_backoff=0.1, max_backoff=0.5, total_seconds=30)


def students(count: int) -> list[tuple[str, str, str, float]]:
    return [(f"S{i:04d}", f"L{i % 3}", f"Course {i % 5}", i / 4) for i in range(count)]


def through(proxy: Proxy | None, url: str) -> str:
    """``url`` sent through ``proxy`` (unchanged when None)."""
    if proxy is None:
        return url
    parsed = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def proxies(dbs: DatabasePair, *sides: str) -> Iterator[dict[str, Proxy]]:
    """One proxy per attacked side, closed afterwards whatever happens."""
    made: dict[str, Proxy] = {}
    try:
        for side in sides:
            url = make_url(dbs.source_url if side == "source" else dbs.target_url)
            made[side] = Proxy(url.host or "127.0.0.1", url.port or 3306)
        yield made
    finally:
        for proxy in made.values():
            proxy.close()


def databases(dbs: DatabasePair, made: dict[str, Proxy], read_timeout: int = 600) -> Databases:
    settings = Settings(
        source=DatabaseSettings(
            url=through(made.get("source"), dbs.source_url),
            connect_timeout=2,
            read_timeout=read_timeout,
        ),
        target=DatabaseSettings(
            url=through(made.get("target"), dbs.target_url),
            connect_timeout=2,
            read_timeout=read_timeout,
        ),
    )
    return make_databases(settings)


def run(
    databases: Databases,
    on_batch: Callable[[BatchDone], None] | None = None,
    retry: RetrySettings = PATIENT,
    batch_size: int = 20,
) -> RunResult:
    try:
        return run_job(
            JOB, databases, SyncOptions(batch_size=batch_size, retry=retry), on_batch=on_batch
        )
    finally:
        databases.dispose()


def after_batches(count: int, action: Callable[[], None]) -> Callable[[BatchDone], None]:
    """An ``on_batch`` hook that performs ``action`` once, after ``count`` batches."""
    seen = [0]

    def hook(_: BatchDone) -> None:
        seen[0] += 1
        if seen[0] == count:
            action()

    return hook


def later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


CUTS = [(side, after) for side in ("source", "target", "both") for after in (1, 4, 9)]


@pytest.mark.parametrize(("side", "after"), CUTS, ids=[f"{s}-after-{a}" for s, a in CUTS])
def test_a_connection_cut_mid_run_is_retried_and_the_run_completes(
    maria: DatabasePair, side: str, after: int
) -> None:
    """Cut mid-run, restored a second later: the batch is retried and nothing is lost or doubled.

    Copies into an empty target grow (twice the rows each): 4000 rows in batches of 2
    make 11 of them, so every cut falls inside the run."""
    maria.create_source(students(4000))
    sides = ("source", "target") if side == "both" else (side,)
    with proxies(maria, *sides) as made:

        def cut() -> None:
            for proxy in made.values():
                proxy.cut()
            later(1.0, lambda: [proxy.restore() for proxy in made.values()])

        with capture_logs() as logs:
            result = run(databases(maria, made), after_batches(after, cut), batch_size=2)

    assert result.status == "succeeded", result.error
    assert any(entry["event"] == "batch_retry" for entry in logs)
    assert result.counts.inserted == 4000  # a retried batch is counted once
    assert maria.rows("target") == maria.rows("source")


def test_a_server_gone_for_good_fails_the_run_in_bounded_time(maria: DatabasePair) -> None:
    """The source vanishes mid-run: the run fails within its retry budget, recorded as failed."""
    maria.create_source(students(200))
    budget = RetrySettings(attempts=50, initial_backoff=0.2, max_backoff=1, total_seconds=3)
    with proxies(maria, "source") as made:
        started = time.monotonic()
        result = run(databases(maria, made), after_batches(2, made["source"].cut), budget)
        elapsed = time.monotonic() - started

        assert result.status == "failed"
        assert elapsed < 15
        assert "Lost connection" in (result.error or "") or "2013" in (result.error or "")
        assert "\n" not in (result.error or "")
        latest = maria.runs()[0]
        assert (latest["status"], latest["error"]) == ("failed", result.error)

        made["source"].restore()
        again = run(databases(maria, made))
    assert again.status == "succeeded"
    assert maria.rows("target") == maria.rows("source")


def test_a_frozen_server_fails_the_run_after_the_read_timeout(maria: DatabasePair) -> None:
    """A server that stops answering without closing the socket cannot hang a run."""
    maria.create_source(students(100))
    budget = RetrySettings(attempts=2, initial_backoff=0.1, max_backoff=0.1, total_seconds=5)
    with proxies(maria, "target") as made:
        started = time.monotonic()
        result = run(
            databases(maria, made, read_timeout=2), after_batches(2, made["target"].freeze), budget
        )
        elapsed = time.monotonic() - started
        made["target"].restore()
    assert result.status == "failed"
    assert elapsed < 20
    assert run(databases(maria, {})).status == "succeeded"
    assert maria.rows("target") == maria.rows("source")


def test_a_lock_held_on_the_target_is_waited_out_by_retrying(maria: DatabasePair) -> None:
    """Another session holds a row lock past the lock wait timeout: the batch is retried."""
    maria.create_source(students(60))
    assert run(databases(maria, {})).status == "succeeded"
    maria.execute("source", "UPDATE students SET course = 'Changed'")
    holder = maria.engine("target").connect()
    holder.execute(text("SELECT * FROM students WHERE first_name = 'S0030' FOR UPDATE"))
    engines = databases(maria, {})

    @event.listens_for(engines.target_engine, "connect")
    def short_lock_wait(dbapi_connection: object, _: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        cursor.close()

    timer = later(2.5, holder.rollback)
    try:
        with capture_logs() as logs:
            result = run(engines)
    finally:
        timer.join(timeout=10)
        holder.close()
    assert result.status == "succeeded", [e for e in logs if e["log_level"] != "info"]
    retries = [entry for entry in logs if entry["event"] == "batch_retry"]
    assert retries
    assert "1205" in retries[0]["error"]
    assert result.counts.updated == 60
    assert maria.rows("target") == maria.rows("source")
