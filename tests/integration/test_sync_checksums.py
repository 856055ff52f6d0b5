"""Range-mode reruns between same-kind databases: checksums first, rows where they differ."""

from __future__ import annotations

import dataclasses
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from sqlalchemy import text

from etl.core import lines
from etl.dialects import MARIADB, POSTGRESQL
from etl.dialects.mysql import MySQLDialect
from etl.engine import checksum
from tests.helpers.support import DatabasePair, same_floats


def many(count: int, prefix: str = "S") -> list[tuple[str, str, str | None, float | None]]:
    return [(f"{prefix}{i:05d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(count)]


def state_rows(pair: DatabasePair) -> tuple[int, int]:
    """Rows in the target's checkpoint table and in its run history."""
    with pair.engine("target").connect() as connection:
        checkpoints = connection.execute(text("SELECT COUNT(*) FROM etl_checkpoints")).scalar_one()
        rows = connection.execute(text("SELECT COUNT(*) FROM etl_runs")).scalar_one()
    return int(checkpoints), int(rows)


def test_unchanged_rerun_stores_no_checkpoint(dbs: DatabasePair) -> None:
    """A rerun that changes nothing leaves no checkpoint behind and counts every row unchanged."""
    dbs.create_source(many(300))
    dbs.run(batch_size=20)
    again = dbs.run(batch_size=20)
    assert again.status == "succeeded"
    assert (again.counts.rows_read, again.counts.unchanged) == (300, 300)
    assert state_rows(dbs) == (0, 2)


def test_an_unchanged_table_costs_one_summary_per_side(
    maria: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a first load (or a run that found nothing) both whole tables are summed
    first: equal sums end the pass in one batch. After a run that found changes the
    ranges are summarised straight away. (The table's write time is left out: it has
    whole seconds, which this test's writes and runs share.)"""
    monkeypatch.setattr(MySQLDialect, "written_since", lambda *_: None)

    def rerun() -> tuple[list[bool], list[str]]:
        with structlog.testing.capture_logs() as events:
            assert maria.run(batch_size=20).status == "succeeded"
        compared = [e["equal"] for e in events if e["event"] == "tables_compared"]
        return compared, [e["via"] for e in events if e["event"] == "batch_committed"]

    maria.create_source(many(300))
    maria.run(batch_size=20)
    assert rerun() == ([True], ["checksum"])
    maria.execute("source", "UPDATE students SET score = 99 WHERE first_name = 'S00250'")
    compared, batches = rerun()
    assert compared == [False]
    assert len(batches) > 1
    compared, batches = rerun()  # the run before found a change: no whole-table sums
    assert compared == []
    assert set(batches) == {"checksum"}
    assert rerun() == ([True], ["checksum"])
    assert same_floats(maria.rows("target"), maria.rows("source"))


def test_a_mariadb_table_says_when_it_was_last_written(maria: DatabasePair) -> None:
    """InnoDB's last write time: after a moment well before a write, not after one well
    after it (whole seconds, so the moments are seconds apart)."""
    table = maria.create_source(many(5))
    now = datetime.now(UTC)
    with maria.engine("source").connect() as connection:
        assert MARIADB.written_since(connection, table, now - timedelta(seconds=30)) is True
        assert MARIADB.written_since(connection, table, now + timedelta(seconds=30)) is False


def written_on_postgresql(pair: DatabasePair, sql: str) -> None:
    """Write to the PostgreSQL source and flush the write counters at once (they are
    otherwise flushed when the backend next goes idle a second after its last flush)."""
    pair.execute("source", sql)
    pair.execute("source", "SELECT pg_stat_force_next_flush()")


def test_a_postgresql_table_has_a_write_version(pg_to_maria: DatabasePair) -> None:
    """The version moves with a write, not with reads."""
    table = pg_to_maria.create_source(many(5))
    pg_to_maria.execute("source", "SELECT pg_stat_force_next_flush()")

    def version() -> str | None:
        with pg_to_maria.engine("source").connect() as connection:
            return POSTGRESQL.write_version(connection, table)

    first = version()
    assert first is not None
    pg_to_maria.rows("source")
    assert version() == first
    written_on_postgresql(pg_to_maria, "UPDATE students SET score = 1 WHERE first_name = 'S00001'")
    assert version() not in (None, first)


def test_a_postgresql_source_written_to_skips_the_whole_table_sums(
    pg_to_maria: DatabasePair,
) -> None:
    """A PostgreSQL source keeps no write time, so each run stores its write version:
    one written to since the last run goes straight to finer summaries, an untouched
    one is summed whole first, whatever the run before found."""
    pair = pg_to_maria

    def rerun() -> list[bool]:
        with structlog.testing.capture_logs() as events:
            assert pair.run(batch_size=20).status == "succeeded"
        return [e["equal"] for e in events if e["event"] == "tables_compared"]

    pair.create_source(many(300))
    pair.run(batch_size=20)
    assert rerun() == [True]
    written_on_postgresql(pair, "UPDATE students SET score = 99 WHERE first_name = 'S00250'")
    assert rerun() == []  # written since: no whole-table sums, which could only differ
    assert same_floats(pair.rows("target"), pair.rows("source"))
    assert rerun() == [True]  # untouched since, though the run before found a change
    with pair.engine("target").connect() as connection:
        stored = connection.execute(text("SELECT COUNT(*) FROM etl_source_versions")).scalar()
    assert stored == 1


def test_a_dry_run_against_a_target_without_state_tables(maria: DatabasePair) -> None:
    """A dry run creates no state tables, so it asks no previous run of them."""
    maria.create_source(many(30))
    maria.students_table().create(maria.engine("target"))
    maria.insert("target", many(30))
    result = maria.run(batch_size=10, dry_run=True)
    assert result.status == "succeeded", result.error
    assert result.counts.unchanged == 30


def test_scattered_changes_in_grown_ranges_are_exact(dbs: DatabasePair) -> None:
    """Changes, inserts, deletes and NULLs after a long unchanged stretch are all found."""
    dbs.create_source(many(600))
    dbs.run(batch_size=20)
    dbs.execute("source", "UPDATE students SET score = NULL WHERE first_name = 'S00450'")
    dbs.execute("source", "UPDATE students SET course = NULL WHERE first_name = 'S00451'")
    dbs.execute("source", "UPDATE students SET course = 'Course 1x' WHERE first_name = 'S00452'")
    dbs.execute("source", "DELETE FROM students WHERE first_name IN ('S00500', 'S00599')")
    dbs.insert("source", [("S00450a", "L0", None, None), ("S00600", "L0", "X", 1.0)])
    result = dbs.run(batch_size=20)
    counts = result.counts
    assert (counts.inserted, counts.updated, counts.deleted) == (2, 3, 2)
    assert counts.unchanged == 600 - 2 - 3
    assert same_floats(dbs.rows("target"), dbs.rows("source"))


@pytest.mark.parametrize("spelling", ["s00100", "S00100 "])
def test_key_respelled_within_a_collation_is_rewritten(maria: DatabasePair, spelling: str) -> None:
    """'S00100' becoming 's00100' (or gaining a trailing space) is a change the checksums see."""
    maria.create_source(many(200))
    maria.run(batch_size=20)
    maria.execute(
        "source", f"UPDATE students SET first_name = '{spelling}' WHERE first_name = 'S00100'"
    )
    result = maria.run(batch_size=20)
    assert (result.counts.inserted, result.counts.deleted) == (1, 1)
    assert maria.rows("target") == maria.rows("source")


def test_a_float_changed_below_its_sixth_digit_is_seen(maria: DatabasePair) -> None:
    """0.1234567 and 0.1234568 are different 4-byte floats that MySQL prints alike
    (0.123457): the checksums hold each FLOAT as its exact double, so the change is
    found (the plain second check sees only the printed text)."""
    maria.create_source(many(200))
    maria.execute("source", "UPDATE students SET score = 0.1234567 WHERE first_name = 'S00100'")
    maria.run(batch_size=20)
    maria.execute("source", "UPDATE students SET score = 0.1234568 WHERE first_name = 'S00100'")
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=20)
    vias = [e["via"] for e in events if e["event"] == "batch_committed"]
    # Ranges before it agreed by their checksums; its range (and the next, read by
    # tokens straight away after a change) went by rows: the summaries saw the change.
    assert vias[0] == "checksum"
    assert set(vias) == {"checksum", "rows"}
    assert (result.counts.updated, result.counts.unchanged) == (1, 199)
    with maria.engine("target").connect() as connection:
        stored = connection.execute(
            text("SELECT score + 0e0 FROM students WHERE first_name = 'S00100'")
        ).scalar_one()
    assert stored == single(0.1234568) != single(0.1234567)


def single(value: float) -> float:
    """``value`` as the 4-byte float a FLOAT column stores."""
    found: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return found


AWKWARD = ["a#b", "3:x", "line\nbreak", "back\\slash", "\\n", "Zoë 😀", "N", "#", "tab\there"]


def awkward_rows() -> list[tuple[str, str, str | None, float | None]]:
    """Keys holding the lines' separators, escapes and length marks, among plain ones."""
    rows = many(400)
    for i, text_ in enumerate(AWKWARD):
        rows.append((f"K{text_}", text_, f"C{text_}", float(i)))
    return rows


@pytest.fixture
def compared_by(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often a side read a range as row lines, and how often as row tokens."""
    calls = {"lines": 0, "tokens": 0}
    for name, counted in (("row_lines", "lines"), ("row_tokens", "tokens")):
        original = getattr(checksum, name)

        def spy(*args: Any, _original: Any = original, _counted: str = counted) -> Any:
            calls[_counted] += 1
            return _original(*args)

        monkeypatch.setattr(checksum, name, spy)
    return calls


def dense_rerun(pair: DatabasePair) -> tuple[Any, list[dict[str, Any]]]:
    """Load :func:`awkward_rows`, change them everywhere, rerun: its result and log."""
    pair.create_source(awkward_rows())
    pair.run(batch_size=20)
    change_everywhere(pair)
    with structlog.testing.capture_logs() as events:
        result = pair.run(batch_size=20)
    assert result.status == "succeeded", result.error
    return result, events


def change_everywhere(pair: DatabasePair) -> None:
    """Dense changes: every few rows updated, some deleted, some inserted, the
    awkward keys among them."""
    pair.execute("source", "UPDATE students SET score = score + 1 WHERE last_name IN ('L1', 'L4')")
    pair.execute("source", "UPDATE students SET course = 'new' WHERE last_name = 'line\nbreak'")
    pair.execute("source", "DELETE FROM students WHERE last_name IN ('L6', 'a#b', '3:x')")
    pair.insert("source", [(f"New{t}", t, None, None) for t in AWKWARD])


def test_dense_changes_by_row_lines_are_exact(
    maria: DatabasePair, compared_by: dict[str, int]
) -> None:
    """Changes in every range are found from both servers' row lines, keys read off
    them, awkward characters and all: no row tokens, no key hashes."""
    result, _ = dense_rerun(maria)
    assert compared_by["lines"] > 0
    assert compared_by["tokens"] == 0
    counts = result.counts
    assert (counts.inserted, counts.deleted) == (len(AWKWARD), 400 // 7 + 2)
    assert same_floats(maria.rows("target"), maria.rows("source"))


def test_dense_changes_on_every_pairing_are_exact(
    dbs: DatabasePair, compared_by: dict[str, int]
) -> None:
    """The same on every pairing, whichever way each compares its ranges."""
    dense_rerun(dbs)
    assert same_floats(dbs.rows("target"), dbs.rows("source"))
    # Lines where both sides print them and order keys alike (range mode): MariaDB as
    # the target of either kind here. PostgreSQL to PostgreSQL keeps its tokens; the
    # other pairings compare by buckets or rows.
    if (dbs.source_backend, dbs.target_backend) in {
        ("mariadb", "mariadb"),
        ("postgresql", "mariadb"),
    }:
        assert compared_by["lines"] > 0
        assert compared_by["tokens"] == 0


@pytest.mark.parametrize("sides", ["maria", "pg_to_maria"])
def test_lines_past_their_limit_fall_back_to_tokens(
    request: pytest.FixtureRequest,
    sides: str,
    compared_by: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A range whose lines would be too long for the client (PostgreSQL's NULL, MariaDB's
    cut aggregate) is compared by tokens, and so is every range after it."""
    pair: DatabasePair = request.getfixturevalue(sides)
    monkeypatch.setattr(checksum, "LINES_LIMIT", 100)
    _, events = dense_rerun(pair)
    assert same_floats(pair.rows("target"), pair.rows("source"))
    # That range, both sides; perhaps the next too, read ahead while that one was written.
    assert compared_by["lines"] in (2, 4)
    assert compared_by["tokens"] > 0
    assert [e["event"] for e in events].count("row_lines_unusable") == 1


def test_a_key_misread_off_a_line_falls_back_to_tokens(
    maria: DatabasePair, compared_by: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key that names no row on its own side (as a misread would) stops the range
    before it writes anything; tokens then compare it, and every range after it."""
    original = lines.key_of

    def misread(line: bytes, parts: Any) -> Any:
        key = original(line, parts)
        return (key[0] + "?", *key[1:])

    monkeypatch.setattr(lines, "key_of", misread)
    result, events = dense_rerun(maria)
    assert [e["event"] for e in events].count("row_lines_unusable") == 1
    # That range, both sides; perhaps the next too, read ahead while that one was written.
    assert compared_by["lines"] in (2, 4)
    assert compared_by["tokens"] > 0
    counts = result.counts
    assert (counts.inserted, counts.deleted) == (len(AWKWARD), 400 // 7 + 2)
    assert same_floats(maria.rows("target"), maria.rows("source"))


def table_summaries(pair: DatabasePair, job: Any = None) -> tuple[Any, Any]:
    """Both sides' whole-table summaries, as a run's first look takes them."""
    from etl.engine.db import make_databases
    from etl.engine.plan import make_plan
    from jobs.students import JOB

    job = job or JOB
    dbs = make_databases(pair.settings())
    try:
        plan = make_plan(
            job,
            dbs.source_engine,
            dbs.target_engine,
            source_name=None,
            target_name=None,
            create=False,
        )
        source, target = checksum.scopes(plan, job.columns, job.key)
        with dbs.Source() as theirs, dbs.Target() as ours:
            route = checksum.checksum_route(theirs, ours, (source, target))
            return (
                checksum.table_summary(theirs, source, route),
                checksum.table_summary(ours, target, route),
            )
    finally:
        dbs.dispose()


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE students SET score = 0.1234568 WHERE first_name = 'S00100'",  # below 6 digits
        "UPDATE students SET first_name = 's00101' WHERE first_name = 'S00101'",  # case only
        "UPDATE students SET course = '' WHERE first_name = 'S00103'",  # NULL to ''
        "DELETE FROM students WHERE first_name = 'S00104'",
    ],
)
def test_mariadb_tables_compare_whole_by_the_table_checksum(
    maria: DatabasePair, change: str
) -> None:
    """Between MariaDB tables of one definition the first look is CHECKSUM TABLE (each
    record's exact bytes) beside the CRC32C of the plain values: equal tables agree,
    and a change only one record's bytes show is seen."""
    rows = many(200)
    rows[103] = (*rows[103][:2], None, rows[103][3])
    maria.create_source(rows)
    maria.execute("source", "UPDATE students SET score = 0.1234567 WHERE first_name = 'S00100'")
    assert maria.run(batch_size=20).status == "succeeded"
    theirs, ours = table_summaries(maria)
    assert theirs == ours
    assert theirs[:2] == (200, checksum.TABLE_CHECKSUM)
    maria.execute("source", change)
    theirs, ours = table_summaries(maria)
    assert theirs[1] == ours[1] == checksum.TABLE_CHECKSUM
    assert theirs != ours
    result = maria.run(batch_size=20)
    assert result.status == "succeeded", result.error
    assert same_floats(maria.rows("target"), maria.rows("source"))


@pytest.mark.parametrize(
    "definition",
    [
        "score DOUBLE",  # another type: other record bytes
        "score FLOAT, extra INT NOT NULL DEFAULT 7",  # a column the job does not sync
        "score FLOAT, UNIQUE KEY (course, score)",  # same columns, another index: alike
    ],
)
def test_tables_defined_otherwise_compare_by_row_hashes(
    maria: DatabasePair, definition: str
) -> None:
    """CHECKSUM TABLE holds whole records: only where both tables have exactly the
    job's columns, defined alike, does the first look take it. Otherwise both sides
    sum the job's row hashes, and an unchanged table still ends the pass at once."""
    maria.create_source(many(100))
    maria.execute(
        "target",
        "CREATE TABLE students (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) "
        f"NOT NULL, course VARCHAR(50), {definition}, PRIMARY KEY (first_name, last_name))",
    )
    assert maria.run(batch_size=20).status == "succeeded"
    theirs, ours = table_summaries(maria)
    assert theirs == ours
    assert (theirs[1] == checksum.TABLE_CHECKSUM) == ("UNIQUE" in definition)
    with structlog.testing.capture_logs() as events:
        again = maria.run(batch_size=20)
    assert (again.status, again.counts.unchanged) == ("succeeded", 100)
    assert [e["equal"] for e in events if e["event"] == "tables_compared"] == [True]


def test_a_filtered_job_compares_by_row_hashes(maria: DatabasePair) -> None:
    """A job's ``where`` covers part of the source table, which CHECKSUM TABLE cannot."""
    from sqlalchemy import text as sql

    from jobs.students import JOB

    maria.create_source(many(100))
    assert maria.run(batch_size=20).status == "succeeded"
    filtered = dataclasses.replace(JOB, source_filter=sql("score >= 0"))
    theirs, ours = table_summaries(maria, filtered)
    assert checksum.TABLE_CHECKSUM not in (theirs[1], ours[1])


def lines_length(pair: DatabasePair, role: str) -> int:
    """Bytes of a side's whole table as one aggregate of row lines."""
    from sqlalchemy import text as sql

    serialized = (
        "CONCAT_WS('#,', REPLACE(first_name, '#', '##'), REPLACE(last_name, '#', '##'), "
        "IFNULL(REPLACE(course, '#', '##'), '#0'), IFNULL(CAST(score + 0e0 AS BINARY), '#0'))"
    )
    with pair.engine(role).connect() as connection:
        connection.execute(sql("SET SESSION group_concat_max_len = 1000000"))
        found = connection.execute(
            sql(f"SELECT LENGTH(GROUP_CONCAT({serialized} SEPARATOR x'0a')) FROM students")
        ).scalar_one()
    return int(found)


def test_lines_cut_inside_the_last_line_are_not_taken_for_whole(
    maria: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GROUP_CONCAT cuts silently, even inside the last line, where the line count
    still matches: a change past the cut must not pass for unchanged. An aggregate as
    long as the cut is taken as cut short, and the range goes by tokens."""
    maria.create_source(many(5))
    assert maria.run(batch_size=20).status == "succeeded"
    monkeypatch.setattr(checksum, "LINES_LIMIT", lines_length(maria, "source") - 2)
    monkeypatch.setattr(MySQLDialect, "written_since", lambda *_: None)
    maria.execute("source", "UPDATE students SET score = 0.625 WHERE first_name = 'S00004'")
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=20)
    assert result.status == "succeeded", result.error
    assert result.counts.updated == 1
    assert "row_lines_unusable" in [e["event"] for e in events]
    assert same_floats(maria.rows("target"), maria.rows("source"))
