"""Incremental runs on every pairing: only changed rows, keyset on (cursor, key), look-back."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Float,
    MetaData,
    String,
    Table,
    TypeDecorator,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import mysql, postgresql

from etl.engine import watermarks
from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import BatchDone, IncrementalOptions, RunResult, SyncOptions
from etl.engine.strategies.incremental import later
from etl.job import Job
from tests.helpers.support import DatabasePair, python_m_etl

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class UTCTimestamp(TypeDecorator[datetime]):
    """Aware UTC in Python; DATETIME(6) naive UTC on MySQL, timestamptz on PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name == "postgresql":
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def changes_table() -> Table:
    """The Students variant with a change-tracking column."""
    return Table(
        "students_changes",
        MetaData(),
        Column("first_name", String(50), primary_key=True),
        Column("last_name", String(50), primary_key=True),
        Column("course", String(50)),
        Column("score", Float),
        Column("updated_at", UTCTimestamp(), nullable=False),
    )


JOB = Job(
    name="students_changes",
    table=changes_table(),
    description="Students with updated_at, synced incrementally",
    cursor_column="updated_at",
    lookback=60,
)


def student(i: int, at: datetime, course: str = "C") -> tuple[Any, ...]:
    """A row whose score is exact in a 4-byte float, stamped ``at``."""
    return (f"F{i:04d}", f"L{i % 3}", course, i + 0.5, at)


def fill(pair: DatabasePair, rows: list[tuple[Any, ...]], create: bool = True) -> None:
    table = JOB.table
    if create:
        table.create(pair.engine("source"))
    with pair.engine("source").begin() as connection:
        connection.execute(insert(table), [dict(zip(JOB.columns, r, strict=True)) for r in rows])


def rows(pair: DatabasePair, role: str) -> list[tuple[Any, ...]]:
    table = JOB.table
    with pair.engine(role).connect() as connection:
        found = [tuple(r) for r in connection.execute(select(*[table.c[c] for c in JOB.columns]))]
    return sorted(found)


def incremental(
    pair: DatabasePair,
    *,
    batch_size: int = 10,
    lookback: float = 0,
    stop: threading.Event | None = None,
    on_batch: Any = None,
) -> RunResult:
    dbs = make_databases(pair.settings())
    try:
        return run_job(
            JOB,
            dbs,
            SyncOptions(batch_size=batch_size),
            incremental=IncrementalOptions(lookback=lookback),
            stop=stop,
            on_batch=on_batch,
        )
    finally:
        dbs.dispose()


def full(pair: DatabasePair, batch_size: int = 10) -> RunResult:
    dbs = make_databases(pair.settings())
    try:
        return run_job(JOB, dbs, SyncOptions(batch_size=batch_size))
    finally:
        dbs.dispose()


def watermark(pair: DatabasePair) -> tuple[Any, ...] | None:
    dbs = make_databases(pair.settings())
    try:
        with dbs.Target() as session:
            return watermarks.load(session, JOB.name)
    finally:
        dbs.dispose()


def touch(pair: DatabasePair, i: int, at: datetime, **values: Any) -> None:
    """Change one source row and stamp it ``at``."""
    table = JOB.table
    with pair.engine("source").begin() as connection:
        connection.execute(
            table.update().where(table.c.first_name == f"F{i:04d}").values(updated_at=at, **values)
        )


def test_first_run_loads_every_row_and_stores_the_watermark(dbs: DatabasePair) -> None:
    """With no watermark every row is read in (cursor, key) pages and inserted."""
    source = [student(i, T0 + timedelta(seconds=i)) for i in range(25)]
    fill(dbs, source)
    result = incremental(dbs, batch_size=10)
    assert result.status == "succeeded", result.error
    assert result.mode == "incremental"
    assert (result.counts.rows_read, result.counts.inserted) == (25, 25)
    assert rows(dbs, "target") == sorted(source)
    assert watermark(dbs) == (T0 + timedelta(seconds=24), "F0024", "L0")
    assert dbs.runs()[0]["mode"] == "incremental"
    assert dbs.runs()[0]["inserted"] == 25


def test_next_run_reads_and_writes_only_changed_rows(dbs: DatabasePair) -> None:
    """After the first load, only rows stamped past the watermark are read and written."""
    fill(dbs, [student(i, T0 + timedelta(seconds=i)) for i in range(30)])
    assert incremental(dbs).status == "succeeded"
    later = T0 + timedelta(hours=1)
    for i in (3, 14, 27):
        touch(dbs, i, later, score=100.5)
    fill(dbs, [student(99, later)], create=False)
    result = incremental(dbs)
    counts = result.counts
    assert (counts.rows_read, counts.updated, counts.inserted, counts.unchanged) == (4, 3, 1, 0)
    assert rows(dbs, "target") == rows(dbs, "source")
    again = incremental(dbs)
    assert again.counts.rows_read == 0


def test_equal_timestamps_across_batch_boundaries_lose_nothing(dbs: DatabasePair) -> None:
    """25 rows share one timestamp, pages hold 7: the key breaks the tie, none is lost."""
    source = [student(i, T0) for i in range(25)]
    source += [student(i, T0 + timedelta(seconds=1)) for i in range(25, 30)]
    fill(dbs, source)
    result = incremental(dbs, batch_size=7)
    assert (result.counts.rows_read, result.counts.inserted) == (30, 30)
    assert rows(dbs, "target") == sorted(source)


def test_stop_mid_run_keeps_the_committed_watermark_and_rerun_converges(
    dbs: DatabasePair,
) -> None:
    """The watermark commits with its page: a stopped run resumes inside a tie, no duplicates."""
    source = [student(i, T0) for i in range(20)]
    fill(dbs, source)
    stop = threading.Event()

    def after_first(done: BatchDone) -> None:
        stop.set()

    stopped = incremental(dbs, batch_size=7, stop=stop, on_batch=after_first)
    assert stopped.status == "interrupted"
    assert stopped.counts.inserted == 7
    mark = watermark(dbs)
    assert mark is not None
    assert mark[0] == T0
    assert rows(dbs, "target") == sorted(source)[:7]
    assert mark[1:] == sorted(source)[6][:2]
    rerun = incremental(dbs, batch_size=7)
    assert (rerun.counts.rows_read, rerun.counts.inserted) == (13, 13)  # nothing read twice
    assert rows(dbs, "target") == sorted(source)


def test_late_row_within_the_lookback_is_picked_up_older_waits_for_full_run(
    dbs: DatabasePair,
) -> None:
    """A row committed late but stamped within the look-back is synced; an older one is not."""
    fill(dbs, [student(i, T0 + timedelta(seconds=i)) for i in range(10)])
    assert incremental(dbs, lookback=60).counts.inserted == 10
    late = student(50, T0 + timedelta(seconds=9) - timedelta(seconds=30))
    fill(dbs, [late], create=False)
    result = incremental(dbs, lookback=60)
    # The look-back re-reads the last minute: ten unchanged rows and the late one.
    assert (result.counts.rows_read, result.counts.inserted, result.counts.unchanged) == (
        11,
        1,
        10,
    )
    assert late in rows(dbs, "target")
    ancient = student(51, T0 - timedelta(hours=1))
    fill(dbs, [ancient], create=False)
    assert incremental(dbs, lookback=60).counts.inserted == 0
    assert ancient not in rows(dbs, "target")
    repaired = full(dbs)
    assert repaired.status == "succeeded"
    assert repaired.counts.inserted == 1
    assert rows(dbs, "target") == rows(dbs, "source")


def test_deletes_wait_for_the_full_run_which_keeps_the_watermark(dbs: DatabasePair) -> None:
    """Incremental runs never delete; the full run does, and leaves the watermark alone."""
    source = [student(i, T0 + timedelta(seconds=i)) for i in range(10)]
    fill(dbs, source)
    assert incremental(dbs).status == "succeeded"
    dbs.execute("source", "DELETE FROM students_changes WHERE first_name IN ('F0002', 'F0007')")
    kept = incremental(dbs)
    assert kept.counts.deleted == 0
    assert len(rows(dbs, "target")) == 10
    mark = watermark(dbs)
    swept = full(dbs)
    assert swept.status == "succeeded", swept.error
    assert swept.counts.deleted == 2
    assert rows(dbs, "target") == rows(dbs, "source")
    assert watermark(dbs) == mark
    assert incremental(dbs).counts.rows_read == 0


def test_bad_rows_are_set_aside_like_a_full_run(lite: DatabasePair) -> None:
    """A value the target cannot hold is rejected; the rest of the page commits."""
    source = [student(i, T0 + timedelta(seconds=i)) for i in range(5)]
    source.append(student(5, T0 + timedelta(seconds=5), course="x" * 60))
    fill(lite, source)
    result = incremental(lite)
    assert (result.counts.inserted, result.counts.rejected) == (5, 1)
    with lite.engine("target").connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM etl_rejects")).scalar_one() == 1


def test_old_run_history_table_is_widened_for_the_incremental_mode(maria: DatabasePair) -> None:
    """etl_runs.mode was VARCHAR(10): the first incremental run widens it, then records."""
    fill(maria, [student(1, T0)])
    assert full(maria).status == "succeeded"
    maria.execute("target", "ALTER TABLE etl_runs MODIFY mode VARCHAR(10)")
    result = incremental(maria)
    assert result.status == "succeeded", result.error
    assert maria.runs()[0]["mode"] == "incremental"


@pytest.mark.slow
def test_cli_incremental_needs_a_cursor_column(lite: DatabasePair) -> None:
    """``run --incremental students``: the job has no cursor column, exit 2, one line."""
    done = subprocess.run(
        python_m_etl("run", "--incremental", "students"),
        env=lite.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "has no cursor column" in done.stderr


def test_a_float_cursor_column_is_refused() -> None:
    """A 4-byte float never equals itself as a bound: keyset paging on it would loop."""
    from sqlalchemy import Column, Float, Integer, MetaData, Table

    from etl.engine.cursors import cursor_of
    from etl.errors import ConfigError

    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", Float))
    job = Job(name="floaty", table=table, cursor_column="v")
    with pytest.raises(ConfigError, match="cursor column 'v' is a float"):
        cursor_of(job)


def test_the_watermark_never_moves_back_within_an_equal_cursor() -> None:
    """A page ending at the same cursor but a smaller key keeps the larger watermark."""
    mark = (T0, "Zed", "Z")
    assert later(mark, (T0, "Ada", "A")) == mark
    assert later(mark, (T0 - timedelta(seconds=1), "Zz", "Z")) == mark
    assert later(mark, (T0, "Zed", "Zz")) == (T0, "Zed", "Zz")
    assert later(mark, (T0 + timedelta(seconds=1), "A", "A")) == (
        T0 + timedelta(seconds=1),
        "A",
        "A",
    )
    assert later(None, (T0, "A", "A")) == (T0, "A", "A")
    assert later(mark, None) == mark
