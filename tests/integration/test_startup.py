"""What a run does before its first batch: connections, counts, statistics."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from structlog.testing import capture_logs

from etl.config import DatabaseSettings
from etl.dialects import dialect_of
from etl.dialects.mysql_driver import SharedTLSConnection
from etl.engine.db import make_databases, make_engine
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.job import Job
from jobs.students import JOB
from tests.conftest import _pair
from tests.helpers.support import DatabasePair


def _tls_context(engine, *, keep):
    connection = engine.connect()
    keep.append(connection)
    connection.execute(text("SELECT 1"))
    return connection.connection.driver_connection.ctx


def test_pymysql_connections_of_a_process_share_one_preferred_tls_context(mariadb_urls):
    """PyMySQL's default (preferred) TLS context is built once, not once per connection."""
    source, target = mariadb_urls
    engines = [make_engine(DatabaseSettings(url=url), "source") for url in (source, target)]
    held: list = []
    try:
        contexts = [_tls_context(engine, keep=held) for engine in engines for _ in range(2)]
        assert len({id(context) for context in contexts}) == 1
    finally:
        for connection in held:
            connection.close()
        for engine in engines:
            engine.dispose()


def test_configured_tls_is_left_to_pymysql():
    """Options of one's own (here: check_hostname) get PyMySQL's own context, not the shared one."""
    bare = SharedTLSConnection.__new__(SharedTLSConnection)  # no server needed to make contexts
    shared = bare._create_ssl_ctx({})
    assert bare._create_ssl_ctx({"check_hostname": False}) is not shared
    assert bare._create_ssl_ctx({}) is shared
    # As PyMySQL's own for the preferred mode: nothing verified, so no CA loaded.
    assert (shared.check_hostname, shared.verify_mode) == (False, ssl.CERT_NONE)
    assert shared.cert_store_stats()["x509_ca"] == 0
    default = ssl.create_default_context()
    same = default.options | ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
    assert (shared.minimum_version, shared.options) == (default.minimum_version, same)


def many(count: int, prefix: str = "S") -> list[tuple[str, str, str, float]]:
    return [(f"{prefix}{i:05d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(count)]


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every statement sent to any database meanwhile, lower case, on one line."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _row_counts(statements: list[str]) -> list[str]:
    """The whole-table counts among them (not the checksum summaries, which also count)."""
    return [s for s in statements if s.startswith("select count(*) as count_1 from ")]


def _run(pair: DatabasePair, job: Job = JOB, **options: Any) -> tuple[RunResult, dict[str, Any]]:
    """A run of ``job``, its ``run_started`` event, and the statements it sent."""
    databases = make_databases(pair.settings())
    try:
        with capture_logs() as logs:
            result = run_job(job, databases, SyncOptions(batch_size=10, **options))
    finally:
        databases.dispose()
    return result, next(e for e in logs if e["event"] == "run_started")


@pytest.mark.parametrize("sums_first", [True, False])
def test_a_guarded_run_counts_both_tables_before_its_first_delete(
    maria: DatabasePair, monkeypatch: pytest.MonkeyPatch, sums_first: bool
) -> None:
    """Deletes propagate under a limit: both tables are counted exactly, as the guard
    compares them, before the first delete: by the whole tables' sums where they come
    first, else by two counts once a delete needs them."""
    from etl.engine.strategies import checksums

    monkeypatch.setattr(checksums, "whole_table_first", lambda *_: sums_first)
    maria.create_source(many(30))
    maria.run(batch_size=10)
    maria.execute("source", "DELETE FROM students WHERE first_name < 'S00003'")
    with _statements() as seen:
        result, started = _run(maria, max_delete_fraction=0.05)  # 3 of 30 would be over
    assert result.status == "refused"
    assert "refused to delete 3 of 30 target rows" in (result.error or "")
    assert not [s for s in seen if s.startswith("delete from students")]
    assert len(_row_counts(seen)) == (0 if sums_first else 2)
    assert started["rows_counted"] is False  # statistics at the start
    result, _ = _run(maria, max_delete_fraction=0.5)
    assert result.status == "succeeded", result.error
    assert result.counts.deleted == 3


def test_a_guarded_run_of_an_unchanged_table_counts_nothing(dbs: DatabasePair) -> None:
    """Between servers the whole tables' sums count both sides anyway: the guard takes
    their counts. SQLite (no sums) is counted at the start."""
    dbs.create_source(many(30))
    dbs.run(batch_size=10)
    for role, backend in (("source", dbs.source_backend), ("target", dbs.target_backend)):
        if backend == "postgresql":  # statistics to estimate by (a new table has none)
            dbs.execute(role, "ANALYZE students")
    with _statements() as seen:
        result, started = _run(dbs, max_delete_fraction=0.5)
    assert result.status == "succeeded", result.error
    assert result.counts.unchanged == 30
    if "sqlite" in (dbs.source_backend, dbs.target_backend):
        assert len(_row_counts(seen)) == 2
    else:
        assert _row_counts(seen) == []
        assert started["rows_counted"] is False


def test_a_job_that_keeps_deleted_rows_counts_neither_table(maria: DatabasePair) -> None:
    """delete_policy keep: the guard can refuse nothing, so the servers' statistics size the run."""
    job = dataclasses.replace(JOB, delete_policy="keep")
    maria.create_source(many(30))
    assert _run(maria, job)[0].status == "succeeded"
    maria.execute("source", "DELETE FROM students WHERE first_name < 'S00010'")
    with _statements() as seen:
        result, started = _run(maria, job)
    assert result.status == "succeeded", result.error
    assert _row_counts(seen) == []
    assert started["rows_counted"] is False
    assert result.counts.deleted == 0
    assert len(maria.rows("target")) == 30


def test_an_empty_target_counts_neither_table(maria: DatabasePair) -> None:
    """An empty target has nothing the guard protects: no count, and every row is loaded."""
    maria.create_source(many(25))
    maria.students_table().create(maria.engine("target"))
    with _statements() as seen:
        result, started = _run(maria)
    assert result.status == "succeeded", result.error
    assert _row_counts(seen) == []
    assert started["target_rows"] == 0
    assert len(maria.rows("target")) == 25


def test_with_the_guard_lifted_deletes_still_propagate(dbs: DatabasePair) -> None:
    """allow_mass_delete sizes the tables from statistics; the target still ends equal."""
    dbs.create_source(many(30))
    dbs.run(batch_size=10)
    dbs.execute("source", "DELETE FROM students WHERE first_name >= 'S00005'")
    result, _ = _run(dbs, allow_mass_delete=True)
    assert result.status == "succeeded", result.error
    assert result.counts.deleted == 25
    assert sorted(dbs.rows("target")) == sorted(dbs.rows("source"))


def test_an_empty_source_is_still_refused_against_a_full_target(dbs: DatabasePair) -> None:
    """The guard's counts are exact: an emptied source is refused before any delete."""
    dbs.create_source(many(20))
    dbs.run(batch_size=10)
    dbs.execute("source", "DELETE FROM students")
    with _statements() as seen:
        result, _ = _run(dbs, max_delete_fraction=0.5)
    assert result.status == "refused"
    assert "refused to delete 20 of 20 target rows" in (result.error or "")
    assert not [s for s in seen if s.startswith("delete from students")]
    assert len(dbs.rows("target")) == 20


@pytest.mark.parametrize("backend", ["mariadb", "postgresql", "sqlite"])
def test_statistics_estimate_rows_where_the_server_keeps_them(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """After ANALYZE MariaDB and PostgreSQL estimate a table's rows; SQLite says it cannot."""
    for pair in _pair(request, tmp_path_factory, backend, backend):
        pair.create_source(many(400))
        analyse = {"mariadb": "ANALYZE TABLE students", "postgresql": "ANALYZE students"}
        if backend in analyse:
            pair.execute("source", analyse[backend])
        with pair.engine("source").connect() as connection:
            dialect = dialect_of(connection)
            estimate = dialect.estimated_rows(connection, "students")
            missing = dialect.estimated_rows(connection, "no_such_table")
        if backend == "sqlite":
            assert estimate is None
        else:
            assert estimate is not None
            assert 200 <= estimate <= 600
        assert missing is None
