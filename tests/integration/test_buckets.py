"""Bucket summaries between servers of different kinds (issue 11).

MariaDB's default collation is case-insensitive and the target PostgreSQL table is
COLLATE "C", so no key range means the same keys on both sides (lookup mode): both
servers sum row hashes per bucket of exact keys instead, and only differing buckets
are drilled into. Between MariaDB with a binary collation and PostgreSQL the key
ranges agree (range mode) and the same cross-kind hashing serves range checksums.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from etl.core.buckets import Summaries
from etl.dialects import MARIADB
from etl.dialects.mysql import MySQLDialect
from etl.engine import checksum
from etl.engine import rows as engine_rows
from etl.engine.db import make_databases
from etl.engine.results import RunResult
from etl.engine.strategies import buckets as bucket_strategy
from etl.engine.verify import verify_job
from jobs.students import JOB
from tests.conftest import _pair
from tests.helpers.support import DatabasePair, same_floats

KEYS = [
    ("anna", "smith", "Maths", 1.0),
    ("Bob ", "Lee", "", 2.5),
    ("José", "Núñez", None, None),
    ("Zoë", "Ångström", "日本語 🎉", -3.25),
    ("Straße", "Groß", "N", 0.0),
]
FILLER = [
    (f"K{i:04d}", f"l{i % 7}", None if i % 11 == 0 else f"C{i % 5}", i / 8) for i in range(400)
]


@pytest.fixture
def across(cross: DatabasePair) -> DatabasePair:
    """A source and a target of different kinds whose key orders differ (conftest's
    ``cross``: MariaDB to PostgreSQL and back)."""
    return cross


@pytest.fixture(autouse=True)
def _write_times_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous run's counts decide whether whole tables are summed first: a MariaDB
    table's write time has whole seconds, and a test's writes and runs share seconds."""
    monkeypatch.setattr(MySQLDialect, "written_since", lambda *_: None)


def _collation(pair: DatabasePair) -> str | None:
    # PostgreSQL's test database may default to C: a linguistic collation forces lookup mode.
    return "en-x-icu" if pair.source_backend == "postgresql" else None


def _run(pair: DatabasePair, **options: Any) -> tuple[RunResult, list[dict[str, Any]]]:
    """A run that succeeds; its batch_committed and buckets_* log events."""
    with capture_logs() as logs:
        result = pair.run(**options)
    assert result.status == "succeeded", result.error
    wanted = ("batch_committed", "buckets_compared", "buckets_drilled", "tables_compared")
    return result, [e for e in logs if e["event"] in wanted]


def _tables_compared(events: list[dict[str, Any]]) -> list[bool]:
    """Whether each whole-table comparison found the tables equal."""
    return [e["equal"] for e in events if e["event"] == "tables_compared"]


def _batches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "batch_committed"]


def _writes(result: RunResult) -> tuple[int, int, int]:
    return result.counts.inserted, result.counts.updated, result.counts.deleted


def test_buckets_find_every_change_between_kinds(across: DatabasePair) -> None:
    """No-change reruns, 1% updates, inserts, deletes, NULL/'' swaps, Unicode: exact."""
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    first, loaded = _run(across, batch_size=50)
    assert first.mode == "lookup"
    assert "sweep" not in {b["phase"] for b in loaded}  # an empty target: nothing to sweep
    assert same_floats(across.rows("target"), across.rows("source"))

    again, events = _run(across, batch_size=50)
    batches = _batches(events)
    assert {b["via"] for b in batches} == {"buckets"}
    assert len(batches) == 1  # one summary query per side: the whole table's
    # The tables agreed: NULL, '', Unicode, trailing spaces and floats hash alike.
    assert _tables_compared(events) == [True]
    assert not [e for e in events if e["event"] == "buckets_compared"]
    assert not [e for e in events if e["event"] == "buckets_drilled"]
    assert _writes(again) == (0, 0, 0)
    assert again.counts.unchanged == len(KEYS) + len(FILLER)

    across.execute("source", "UPDATE students SET score = score + 1 WHERE first_name = 'K0007'")
    across.execute("source", "UPDATE students SET course = NULL WHERE first_name = 'Bob '")
    across.execute("source", "UPDATE students SET course = '' WHERE first_name = 'José'")
    across.execute("source", "UPDATE students SET course = 'ñ' WHERE first_name = 'Straße'")
    across.execute("source", "DELETE FROM students WHERE first_name IN ('K0100', 'K0200')")
    across.insert("source", [("Ärger", "Öl", "x", 9.5), ("new", "row", None, None)])
    changed, events = _run(across, batch_size=50)
    assert {b["via"] for b in _batches(events)} == {"buckets"}
    assert _writes(changed) == (2, 4, 2)
    drilled = [e for e in events if e["event"] == "buckets_drilled"]
    # Only the differing keys were read: every other row matched by its token.
    assert sum(e["upserts"] for e in drilled) == 6
    assert sum(e["deletes"] for e in drilled) == 2
    assert same_floats(across.rows("target"), across.rows("source"))

    quiet, events = _run(across, batch_size=50)
    assert _writes(quiet) == (0, 0, 0)
    if across.source_backend == "postgresql":
        # Its write version says untouched since the run before: the whole table first.
        assert _tables_compared(events) == [True]
    else:
        # After a run that found changes no whole-table check: every bucket agrees.
        assert _tables_compared(events) == []
        assert [e["differing"] for e in events if e["event"] == "buckets_compared"] == [0]
    # The whole table first again after a quiet run, unless the source's write version
    # says it was written to; either way the buckets then find the one row.
    _write_source(across, "UPDATE students SET score = score + 1 WHERE first_name = 'K0009'")
    found, events = _run(across, batch_size=50)
    assert _writes(found) == (0, 1, 0)
    assert _tables_compared(events) == ([] if across.source_backend == "postgresql" else [False])
    compared = [e for e in events if e["event"] == "buckets_compared"]
    assert [e["differing"] for e in compared] == [1]
    assert same_floats(across.rows("target"), across.rows("source"))


def _write_source(pair: DatabasePair, sql: str) -> None:
    """A write to the source that its write version shows at once (PostgreSQL flushes
    its counters otherwise when the backend next idles a second after the last flush)."""
    pair.execute("source", sql)
    if pair.source_backend == "postgresql":
        pair.execute("source", "SELECT pg_stat_force_next_flush()")


def test_a_key_respelled_under_a_case_insensitive_source(across: DatabasePair) -> None:
    """'anna' becomes 'Anna' in MariaDB (one row to it): the target's spelling follows."""
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=50)
    across.execute("source", "UPDATE students SET first_name = 'Anna' WHERE last_name = 'smith'")
    result, events = _run(across, batch_size=50)
    assert {b["via"] for b in _batches(events)} == {"buckets"}
    assert _writes(result) == (1, 0, 1)
    target = across.rows("target")
    assert same_floats(target, across.rows("source"))
    assert ("Anna", "smith", "Maths", 1.0) in target
    assert not any(row[0] == "anna" for row in target)


def test_many_changes_in_many_batches_and_a_crash_half_way(
    across: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More differing keys than a batch: several commits; a crash between them is safe."""
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=20)
    across.execute("source", "UPDATE students SET score = -1 WHERE first_name LIKE 'K01%'")
    across.execute("source", "DELETE FROM students WHERE first_name LIKE 'K02%'")
    real, calls = engine_rows.apply, []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("crash between bucket batches")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_rows, "apply", failing)
    crashed = across.run(batch_size=20)
    assert crashed.status == "failed"
    monkeypatch.setattr(engine_rows, "apply", real)
    _, events = _run(across, batch_size=20)
    batches = _batches(events)
    assert {b["via"] for b in batches} == {"buckets"}
    assert len(batches) > 1
    assert same_floats(across.rows("target"), across.rows("source"))
    assert len(across.rows("target")) == len(KEYS) + len(FILLER) - 100
    quiet, _ = _run(across, batch_size=20)
    assert _writes(quiet) == (0, 0, 0)


@pytest.fixture
def binary_maria_to_pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    yield from _pair(request, tmp_path_factory, "mariadb", "postgresql")


def test_range_checksums_between_kinds(binary_maria_to_pg: DatabasePair) -> None:
    """Binary MariaDB keys order like PostgreSQL's "C": range mode, summaries across kinds."""
    pair = binary_maria_to_pg
    pair.create_source([*KEYS, *FILLER], key_collation="utf8mb4_nopad_bin")
    first, _ = _run(pair, batch_size=50)
    assert first.mode == "range"
    again, events = _run(pair, batch_size=50)
    assert {b["via"] for b in _batches(events)} == {"checksum"}
    assert _writes(again) == (0, 0, 0)
    pair.execute("source", "UPDATE students SET course = NULL WHERE first_name = 'Bob '")
    pair.execute("source", "DELETE FROM students WHERE first_name = 'K0300'")
    changed, _ = _run(pair, batch_size=50)
    assert _writes(changed) == (0, 1, 1)
    assert same_floats(pair.rows("target"), pair.rows("source"))


def test_decimals_hash_alike_only_at_one_scale(binary_maria_to_pg: DatabasePair) -> None:
    """DECIMAL(10, 3) on both sides prints '7.000' on both: hashed. A target of another
    scale prints otherwise ('7.0000'): no hashing, the rows are compared."""
    pair = binary_maria_to_pg
    pair.execute(
        "source",
        "CREATE TABLE students (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
        " course VARCHAR(50), score DECIMAL(10, 3), PRIMARY KEY (first_name, last_name))"
        " DEFAULT CHARSET=utf8mb4",
    )
    pair.execute(
        "target",
        'CREATE TABLE students (first_name VARCHAR(50) COLLATE "C" NOT NULL,'
        ' last_name VARCHAR(50) COLLATE "C" NOT NULL, course VARCHAR(50),'
        " score DECIMAL(10, 3), PRIMARY KEY (first_name, last_name))",
    )
    pair.insert("source", FILLER)
    _run(pair, batch_size=100)
    pair.execute("source", "UPDATE students SET score = 7 WHERE first_name = 'K0001'")
    hashed, events = _run(pair, batch_size=100)
    assert {b["via"] for b in _batches(events)} & {"checksum", "buckets"}
    assert _writes(hashed) == (0, 1, 0)
    pair.execute("target", "ALTER TABLE students ALTER COLUMN score TYPE NUMERIC(12, 4)")
    pair.execute("source", "UPDATE students SET score = 8 WHERE first_name = 'K0001'")
    result, events = _run(pair, batch_size=100)
    assert not {b["via"] for b in _batches(events)} & {"checksum", "buckets"}
    assert _writes(result) == (0, 1, 0)
    assert same_floats(pair.rows("target"), pair.rows("source"))


def test_columns_of_other_character_sets_hash_alike(binary_maria_to_pg: DatabasePair) -> None:
    """A latin1 column is converted to UTF-8 before hashing (and an ascii one: the
    server stores any byte there); utf8mb3 columns are UTF-8 already and hashed as
    stored: a rerun finds every bucket equal, and a change of one accented letter in
    latin1 is found."""
    pair = binary_maria_to_pg
    pair.execute(
        "source",
        "CREATE TABLE students (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
        " course VARCHAR(50) CHARACTER SET latin1, note VARCHAR(20) CHARACTER SET utf8mb3,"
        " code VARCHAR(10) CHARACTER SET ascii, score FLOAT,"
        " PRIMARY KEY (first_name, last_name)) DEFAULT CHARSET=utf8mb4",
    )
    for i in range(60):
        pair.execute(
            "source",
            "INSERT INTO students VALUES (:f, :l, :c, :n, :code, :s)",
            f=f"Zoë{i}",
            l="Ångström",
            c=None if i % 7 == 0 else f"Café {i} Straße",
            n=f"ñ {i} 日本",
            code=f"A{i}",
            s=i / 4,
        )
    from sqlalchemy import MetaData, Table

    from etl.engine.lifecycle import run_job
    from etl.engine.results import SyncOptions
    from etl.job import Job

    job = Job(
        name="students",
        table=Table("students", MetaData(), autoload_with=pair.engine("source")),
    )
    dbs = make_databases(pair.settings())
    try:
        first = run_job(job, dbs, SyncOptions(batch_size=20))
        assert (first.status, first.mode) == ("succeeded", "lookup")
        with capture_logs() as logs:
            again = run_job(job, dbs, SyncOptions(batch_size=20))
        assert _tables_compared(logs) == [True]
        assert (again.counts.unchanged, _writes(again)) == (60, (0, 0, 0))
        pair.execute("source", "UPDATE students SET course = 'Cafè 3 Straße' WHERE code = 'A3'")
        changed = run_job(job, dbs, SyncOptions(batch_size=20))
        assert (changed.counts.updated, changed.counts.unchanged) == (1, 59)
    finally:
        dbs.dispose()
    assert pair.rows("target") == pair.rows("source")


def test_an_ascii_column_holding_other_bytes_is_not_hashed_as_utf8(
    binary_maria_to_pg: DatabasePair,
) -> None:
    """MariaDB stores any byte given as hex in an ascii column (and reads it back as
    '?'): hashed as stored, its bytes C3 A9 would match a target's 'é'. Converted, the
    rerun sees the difference and writes what the source reads."""
    pair = binary_maria_to_pg
    pair.create_source(FILLER[:30])
    pair.execute("source", "ALTER TABLE students MODIFY course VARCHAR(50) CHARACTER SET ascii")
    pair.execute("source", "UPDATE students SET course = UNHEX('C3A9') WHERE first_name = 'K0003'")
    assert pair.run(batch_size=10).status == "succeeded"
    pair.execute("target", "UPDATE students SET course = 'é' WHERE first_name = 'K0003'")
    again, _ = _run(pair, batch_size=10)
    assert _writes(again) == (0, 1, 0)
    assert pair.rows("target") == pair.rows("source")


@pytest.fixture
def by_summaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buckets compared by summaries and token drills: row lines refused at once, as
    for rows too wide for them."""

    def too_long(*_: Any) -> Any:
        raise checksum.LinesTooLong(16, 0)

    monkeypatch.setattr(checksum, "bucket_lines", too_long)


@pytest.mark.usefixtures("by_summaries")
def test_a_bucket_emptied_before_its_drill_is_drilled_once(
    binary_maria_to_pg: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A differing bucket neither side has rows in by the time it is drilled (a live
    source deleted them) is done once the streams end, not drilled again and again."""
    pair = binary_maria_to_pg
    pair.create_source(FILLER[:30])
    assert pair.run(batch_size=10).status == "succeeded"
    real = checksum.bucket_summaries

    def with_a_vanished_bucket(session: Any, scope: Any, count: int) -> Summaries:
        found = real(session, scope, count)
        if not scope.dialect.same_kind(MARIADB):
            return found
        vanished = (count, 1, 7)  # the source summarised it; no row is there now
        rows = zip(found.buckets, found.counts, found.checks, strict=True)
        return Summaries.of([*rows, vanished])

    drills: list[list[int]] = []
    drill = bucket_strategy.Buckets._drill

    def counted(self: Any, run: Any, chosen: list[int]) -> None:
        drills.append(list(chosen))
        assert len(drills) <= 3, drills
        drill(self, run, chosen)

    monkeypatch.setattr(checksum, "bucket_summaries", with_a_vanished_bucket)
    monkeypatch.setattr(bucket_strategy.checksums, "equal_tables", lambda *_: None)
    monkeypatch.setattr(bucket_strategy.Buckets, "_drill", counted)
    result, _ = _run(pair, batch_size=10)
    assert len(drills) == 1
    assert _writes(result) == (0, 0, 0)


def test_verify_across_kinds_in_lookup_mode(across: DatabasePair) -> None:
    """One summary per side proves no drift; a difference still reads rows to name keys."""
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=50)
    databases = make_databases(across.settings())
    try:
        clean = verify_job(JOB, databases, page_size=50)
        assert (clean.mode, clean.drift, clean.ranges_compared) == ("lookup", 0, 0)
        assert clean.source_rows == clean.target_rows == len(KEYS) + len(FILLER)
        across.execute("target", "UPDATE students SET course = 'edited' WHERE first_name = 'K0003'")
        drifted = verify_job(JOB, databases, page_size=50)
        assert drifted.counts == {"missing": 0, "extra": 0, "changed": 1}
        assert drifted.ranges_compared > 0
    finally:
        databases.dispose()


@pytest.mark.parametrize(
    ("by", "limit", "value"),
    [
        ("lines", "LINES_HELD_BATCHES", 1),
        ("summaries", "HELD_BATCHES", 1),
        ("summaries", "BUCKETS_PER_STREAM", 3),
    ],
)
def test_a_drill_that_stops_early_resumes_where_it_stopped(
    across: DatabasePair,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    by: str,
    limit: str,
    value: int,
) -> None:
    """The streams stop once a batch of keys differ (HELD_BATCHES, or LINES_HELD_BATCHES
    for row lines), and each drill
    names at most BUCKETS_PER_STREAM buckets: the next round goes on, no key lost or
    repeated, whether buckets go by row lines or by summaries."""
    if by == "summaries":
        request.getfixturevalue("by_summaries")
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=20)
    across.execute("source", "UPDATE students SET score = -2 WHERE first_name LIKE 'K00%'")
    across.execute("source", "DELETE FROM students WHERE first_name LIKE 'K03%'")
    monkeypatch.setattr(bucket_strategy, limit, value)
    result, events = _run(across, batch_size=20)
    drilled = [e for e in events if e["event"] == "buckets_drilled"]
    assert len(drilled) > 1
    if limit == "BUCKETS_PER_STREAM":
        assert all(e["buckets"] <= value for e in drilled)
    compared = {e["by"] for e in events if e["event"] == "buckets_compared"}
    assert compared == {by}
    assert sum(e["upserts"] for e in drilled) == 100
    assert sum(e["deletes"] for e in drilled) == 100
    assert _writes(result) == (0, 100, 100)
    assert same_floats(across.rows("target"), across.rows("source"))


@pytest.mark.parametrize("stream", ["bucket_lines", "bucket_stream"])
def test_a_source_stream_that_fails_half_way_deletes_nothing(
    across: DatabasePair,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    stream: str,
) -> None:
    """Buckets the failed source never sent must not look deleted (its lines or, by
    summaries, its drill's tokens)."""
    if stream == "bucket_stream":
        request.getfixturevalue("by_summaries")
    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=20)
    across.execute("source", "UPDATE students SET score = -3 WHERE first_name LIKE 'K01%'")
    real = getattr(checksum, stream)

    def failing(session: Any, scope: Any, buckets: int, chosen: Any) -> Any:
        rows = real(session, scope, buckets, chosen)
        if scope.dialect.family == across.source_backend.replace("mariadb", "mysql"):
            for count, row in enumerate(rows):
                if count == 3:
                    raise RuntimeError("source lost half way")
                yield row
        else:
            yield from rows

    monkeypatch.setattr(checksum, stream, failing)
    before = across.rows("target")
    failed = across.run(batch_size=20)
    assert failed.status == "failed"
    assert failed.counts.deleted == 0
    assert across.rows("target") == before


NUMBERS_DDL = {
    "mariadb": "CREATE TABLE nums (name VARCHAR(20) NOT NULL PRIMARY KEY, i INT, b BIGINT, "
    "f FLOAT, d DOUBLE, m DECIMAL(12, 2), day DATE)",
    "postgresql": 'CREATE TABLE nums (name VARCHAR(20) COLLATE "en-x-icu" PRIMARY KEY, '
    "i INTEGER, b BIGINT, f REAL, d DOUBLE PRECISION, m NUMERIC(12, 2), day DATE)",
}


def test_integer_and_float_columns_hash_alike_across_kinds(across: DatabasePair) -> None:
    """Numbers are hashed as their text alone on both kinds of server (no length prefix):
    a rerun over integers, big integers, 4-byte and 8-byte floats, decimals, dates and
    NULLs finds every bucket equal (whatever PostgreSQL's default DateStyle), and a
    change below a float's sixth digit is found."""
    from sqlalchemy import MetaData, Table

    from etl.engine.lifecycle import run_job
    from etl.engine.results import SyncOptions
    from etl.job import Job

    across.execute("source", NUMBERS_DDL[across.source_backend])
    values = [
        (f"n{i:03d}", None if i % 9 == 0 else i * -7, 2**40 + i, i / 10, None if i % 5 else 1e20)
        for i in range(120)
    ]
    for name, i, b, f, d in values:
        across.execute(
            "source",
            "INSERT INTO nums VALUES (:n, :i, :b, :f, :d, :m, :day)",
            n=name,
            i=i,
            b=b,
            f=f,
            d=d,
            m=None if i is None else Decimal(i) / 4,
            day=date(2024, 2, 29) + timedelta(days=len(name) * b % 400),
        )
    job = Job(name="nums", table=Table("nums", MetaData(), autoload_with=across.engine("source")))
    # A database whose default prints dates otherwise ('29/02/2024'): sessions set ISO.
    # (The test run's databases are shared by the tests: the default is reset after.)
    pg_role = "source" if across.source_backend == "postgresql" else "target"
    database = across.engine(pg_role).url.database
    across.execute(pg_role, f"ALTER DATABASE \"{database}\" SET DateStyle = 'SQL, DMY'")
    dbs = make_databases(across.settings())
    try:
        run_job(job, dbs, SyncOptions(batch_size=20))
        with capture_logs() as logs:
            again = run_job(job, dbs, SyncOptions(batch_size=20))
        assert (again.status, again.counts.unchanged) == ("succeeded", 120)
        assert _tables_compared(logs) == [True]
        across.execute("source", "UPDATE nums SET f = 0.1234568 WHERE name = 'n007'")
        run_job(job, dbs, SyncOptions(batch_size=20))
        across.execute("source", "UPDATE nums SET f = 0.1234567 WHERE name = 'n007'")
        changed = run_job(job, dbs, SyncOptions(batch_size=20))
        assert (changed.counts.updated, changed.counts.unchanged) == (1, 119)
    finally:
        dbs.dispose()
        across.execute(pg_role, f'ALTER DATABASE "{database}" RESET DateStyle')


def test_a_key_misread_off_a_bucket_line_falls_back_to_summaries(
    across: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys read off lines are checked before anything is queued: one that names no
    row with exactly it (as a misread would) sends the buckets to summaries instead."""
    from etl.core import lines

    across.create_source([*KEYS, *FILLER], key_collation=_collation(across))
    _run(across, batch_size=50)
    across.execute("source", "UPDATE students SET score = -4 WHERE first_name LIKE 'K02%'")
    across.execute("source", "DELETE FROM students WHERE first_name LIKE 'K03%'")
    original = lines.key_of
    monkeypatch.setattr(lines, "key_of", lambda line, parts: (original(line, parts)[0] + "?", "x"))
    with capture_logs() as logs:
        result = across.run(batch_size=50)
    assert result.status == "succeeded", result.error
    assert [e["event"] for e in logs].count("row_lines_unusable") == 1
    assert {e["by"] for e in logs if e["event"] == "buckets_compared"} == {"summaries"}
    assert _writes(result) == (0, 100, 100)
    assert result.counts.unchanged == len(KEYS) + len(FILLER) - 200
    assert same_floats(across.rows("target"), across.rows("source"))


def test_a_bucket_cut_inside_its_last_line_goes_by_summaries(
    maria: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket's GROUP_CONCAT cut inside its last line still has all its lines: taken
    as cut short all the same, so a change past the cut is found by the summaries."""
    from sqlalchemy import text as sql

    maria.create_source([("A0001", "L1", "Course 1", 0.5), ("A0002", "L2", "C", 0.5)])
    maria.execute(
        "target",
        "CREATE TABLE students (first_name VARCHAR(50) COLLATE utf8mb4_nopad_bin NOT NULL, "
        "last_name VARCHAR(50) COLLATE utf8mb4_nopad_bin NOT NULL, course VARCHAR(50), "
        "score FLOAT, PRIMARY KEY (first_name, last_name)) DEFAULT CHARSET=utf8mb4",
    )
    first, _ = _run(maria, batch_size=20)
    assert first.mode == "lookup"
    serialized = (
        "CONCAT_WS('#,', REPLACE(first_name, '#', '##'), REPLACE(last_name, '#', '##'), "
        "IFNULL(REPLACE(course, '#', '##'), '#0'), IFNULL(CAST(score + 0e0 AS BINARY), '#0'))"
    )
    with maria.engine("source").connect() as connection:  # two rows: one bucket
        joined = connection.execute(
            sql(f"SELECT LENGTH(GROUP_CONCAT({serialized} SEPARATOR x'0a')) FROM students")
        ).scalar_one()
    monkeypatch.setattr(checksum, "BUCKET_LINES_LIMIT", int(joined) - 2)
    maria.execute("source", "UPDATE students SET score = 0.625 WHERE first_name = 'A0002'")
    with capture_logs() as logs:
        result = maria.run(batch_size=20)
    assert result.status == "succeeded", result.error
    assert _writes(result) == (0, 1, 0)
    assert "row_lines_unusable" in [e["event"] for e in logs]
    assert {e["by"] for e in logs if e["event"] == "buckets_compared"} == {"summaries"}
    assert same_floats(maria.rows("target"), maria.rows("source"))
