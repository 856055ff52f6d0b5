"""Empty target ranges filled with SQL text the source writes (MariaDB to MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from sqlalchemy import Column, MetaData, String, Table, Text, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.core.validate import ColumnSpec
from etl.dialects import MARIADB, mysql_text
from etl.dialects.mysql_text import formats_for
from etl.dialects.types import Values
from etl.engine import textcopy
from etl.engine.db import make_databases
from etl.job import Job
from tests.helpers.support import DatabasePair
from tests.helpers.type_runs import run

AWKWARD = [
    ("quote", "it's", 'say "hi"', 1.2345678),
    ("backslash", "C:\\temp\\", "ends in \\", 0.1),
    ("controls", "nul\x00 sub\x1a", "line\nfeed\rreturn\ttab", 3.4e38),
    ("unicode", "Zoë 😀", "日本語", -0.0),
    ("injection", "'), ('x', 'y', 'z', 1); --", "NULL", 1e-38),
    ("nulls", "none", None, None),
    ("spaces", "  padded  ", " ", 16777217.0),
    ("empty", "", "", 0.0),
    ("separator", "a\x01b", "\x01", 123456789.0),
]


def via_of(events: list[dict[str, Any]]) -> set[str]:
    """How the committed batches were written."""
    return {e["via"] for e in events if e["event"] == "batch_committed"}


def many(count: int) -> list[tuple[str, str, str, float]]:
    return [(f"S{i:05d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(count)]


def test_awkward_values_arrive_exactly(maria: DatabasePair) -> None:
    """Quotes, backslashes, control characters, emoji, NULLs and floats survive the text."""
    maria.create_source([*AWKWARD, *many(40)])
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=7)
    assert result.status == "succeeded"
    assert result.counts.inserted == len(AWKWARD) + 40
    assert via_of(events) == {"text"}
    assert formats_of(events) == ["load-data"]
    assert maria.rows("target") == maria.rows("source")
    again = maria.run(batch_size=7)
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 49)


def formats_of(events: list[dict[str, Any]]) -> list[str]:
    """The text format each text copy chose."""
    return [e["form"] for e in events if e["event"] == "text_copy_format"]


def test_load_data_serves_only_the_text_it_offered(maria: DatabasePair) -> None:
    """A server asking for a local file by a name this client did not offer for that
    statement gets an empty file and an error: no file on the client is ever read."""
    maria.execute("target", "CREATE TABLE found (line TEXT)")
    databases = make_databases(maria.settings())
    try:
        with databases.Target() as session, pytest.raises(DBAPIError) as raised:
            session.execute(text("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE found"))
        assert "did not offer" in str(raised.value)
        with databases.Target() as session:
            assert session.execute(text("SELECT COUNT(*) FROM found")).scalar() == 0
    finally:
        databases.dispose()


def test_a_row_refused_during_load_data_is_set_aside(maria: DatabasePair) -> None:
    """LOAD DATA LOCAL makes the server's refusal a warning (the row is skipped): the
    copy fails as a data error, the batch is redone row by row, and only the refused
    row is set aside, with the server's reason."""
    rows = many(30)
    rows[12] = ("S00012", "L5", "Course 1", -1.0)
    maria.create_source(rows)
    maria.students_table().create(maria.engine("target"))
    maria.execute("target", "ALTER TABLE students ADD CONSTRAINT ck_score CHECK (score >= 0)")
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=10)
    assert result.status == "succeeded", result.error
    assert formats_of(events) == ["load-data"]
    assert any(e["event"] == "batch_isolating_rows" for e in events)
    assert (result.counts.inserted, result.counts.rejected) == (29, 1)
    assert maria.rows("target") == [r for r in maria.rows("source") if r[0] != "S00012"]
    with maria.engine("target").connect() as connection:
        reason = connection.execute(text("SELECT reason FROM etl_rejects")).scalar_one()
    assert "ck_score" in reason


def test_load_data_only_where_the_server_allows_it() -> None:
    assert formats_for(guarded=True, local_infile=1) == ("load-data", "sql-values")
    assert formats_for(guarded=True, local_infile="ON") == ("load-data", "sql-values")
    assert formats_for(guarded=True, local_infile=0) == ("sql-values",)
    assert formats_for(guarded=False, local_infile=1) == ("sql-values",)


def test_without_local_infile_the_values_text_goes(
    maria: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that refuses LOAD DATA LOCAL (local_infile OFF; the server is shared by
    the test runs, so its answer is what is faked) takes the values text."""
    maria.create_source([*AWKWARD, *many(20)])
    monkeypatch.setattr(
        mysql_text, "formats_for", lambda **_: formats_for(guarded=True, local_infile=0)
    )
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=7)
    assert result.status == "succeeded", result.error
    assert (via_of(events), formats_of(events)) == ({"text"}, ["sql-values"])
    assert maria.rows("target") == maria.rows("source")


def batches_of(events: list[dict[str, Any]]) -> list[int]:
    """Rows read by each committed batch."""
    return [e["rows_read"] for e in events if e["event"] == "batch_committed"]


def test_copies_into_an_empty_target_grow_past_a_batch(maria: DatabasePair) -> None:
    """Each copy into a target empty at the start reads twice the rows of the one before:
    fewer transactions, the same rows."""
    maria.create_source(many(100))
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=7)
    assert via_of(events) == {"text"}
    assert batches_of(events) == [7, 14, 28, 51]
    assert result.counts.inserted == 100
    assert maria.rows("target") == maria.rows("source")


def test_a_copy_too_long_for_one_statement_is_made_shorter_not_given_up(
    maria: DatabasePair,
) -> None:
    """Rows of long text: once a growing copy's text is too long, that copy and the rest
    read a quarter of its rows (never under a batch), still as text."""
    key = Column("k", String(20), primary_key=True)
    table = Table("wide", MetaData(), key, Column("t", Text))
    table.create(maria.engine("source"))
    with maria.engine("source").begin() as connection:
        packet = connection.execute(text("SELECT @@max_allowed_packet")).scalar_one()
        # 2-byte characters: 900 rows fill a statement (a quarter of the packet).
        value = "é" * ((int(packet) // 4 - 1024) // 900 // 2)
        connection.execute(insert(table), [{"k": f"W{i:05d}", "t": value} for i in range(2400)])
    with structlog.testing.capture_logs() as events:
        result = run(maria, Job(name="wide", table=table), batch_size=200)
    assert via_of(events) == {"text"}
    read = batches_of(events)
    # 800 rows fit in one statement, the 1000 left do not: then 400 rows a copy.
    assert read == [200, 400, 800, 400, 400, 200]
    assert result.counts.inserted == 2400
    with maria.engine("target").connect() as connection:
        assert connection.execute(text("SELECT COUNT(*), MIN(t) = MAX(t) FROM wide")).one() == (
            2400,
            1,
        )


def test_ranges_the_target_already_has_rows_in_go_row_by_row(maria: DatabasePair) -> None:
    """Only empty target ranges are copied as text; the others are compared, stale rows go."""
    maria.create_source(many(100))
    maria.run(batch_size=10)
    maria.execute("target", "DELETE FROM students WHERE first_name < 'S00050'")
    maria.execute("target", "UPDATE students SET score = -1 WHERE first_name = 'S00070'")
    maria.execute("target", "INSERT INTO students VALUES ('S00075x', 'L0', 'stale', 1)")
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=10)
    assert via_of(events) == {"text", "rows", "checksum"}  # empty, changed, equal ranges
    assert (result.counts.inserted, result.counts.updated, result.counts.deleted) == (50, 1, 1)
    assert maria.rows("target") == maria.rows("source")


def test_a_target_reading_backslashes_literally_gets_rows(maria: DatabasePair) -> None:
    """Under NO_BACKSLASH_ESCAPES QUOTE's text would be misread: the rows go one by one."""
    maria.create_source(AWKWARD)
    maria.target_url += "&sql_mode=NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES"
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=4)
    assert result.status == "succeeded"
    assert via_of(events) == {"rows"}
    assert maria.rows("target") == maria.rows("source")


def test_columns_the_target_may_not_hold_are_checked_row_by_row(maria: DatabasePair) -> None:
    """A wider source column (here DOUBLE into the job's FLOAT) needs the row checks."""
    maria.execute(
        "source",
        "CREATE TABLE students (first_name VARCHAR(50), last_name VARCHAR(50), "
        "course VARCHAR(50), score DOUBLE, PRIMARY KEY (first_name, last_name))",
    )
    maria.insert("source", [("Big", "Score", "x", 1e300), *many(20)])
    with structlog.testing.capture_logs() as events:
        result = maria.run(batch_size=8)
    assert via_of(events) == {"rows"}
    assert result.counts.rejected == 1
    assert len(maria.rows("target")) == 20


def test_values_text_longer_than_the_limit_is_refused(maria: DatabasePair) -> None:
    """The caller is told (None) instead of getting text the target could not take whole."""
    table = maria.create_source(many(50))
    columns, key = ("first_name", "last_name", "course", "score"), ("first_name", "last_name")
    with Session(maria.engine("source")) as session:
        whole = MARIADB.values_text(
            session, table, columns, key, None, None, 1_000_000, form="sql-values"
        )
        assert whole is not None
        assert whole.rows == 50
        assert whole.text.startswith("('S00000','L0','Course 0','0'),")
        assert (
            MARIADB.values_text(session, table, columns, key, None, None, 200, form="sql-values")
            is None
        )
        empty = MARIADB.values_text(
            session, table, columns, key, ("T", ""), None, 1_000_000, form="sql-values"
        )
        assert empty == Values(0, "")
        length = session.execute(text("SELECT @@SESSION.group_concat_max_len")).scalar_one()
        assert int(length) == 1_000_004  # just past the limit: a cut text is too long


def test_values_text_writes_a_nul_in_a_value_escaped(maria: DatabasePair) -> None:
    """A raw NUL in the text marks a row the server could not write; a NUL in a value
    is written escaped by QUOTE, so such a row still travels as text."""
    table = maria.create_source([("a\0b", "x", "c\0", 1.0)])
    columns, key = ("first_name", "last_name", "course", "score"), ("first_name", "last_name")
    with Session(maria.engine("source")) as session:
        found = MARIADB.values_text(
            session, table, columns, key, None, None, 1_000_000, form="sql-values"
        )
    assert found is not None
    assert found.rows == 1
    assert "\0" not in found.text
    assert found.text.startswith("('a\\0b','x','c\\0',")


def test_only_text_safe_column_kinds_of_the_same_kind_are_copied() -> None:
    string = ColumnSpec("a", "string", nullable=False, length=5)
    integer, other = ColumnSpec("b", "integer", True), ColumnSpec("b", "other", True)
    real = ColumnSpec("b", "float", True)
    assert textcopy.copyable([string, integer], [string, integer], same_kind=True)
    binary = ColumnSpec("b", "bytes", True, 16)
    assert textcopy.copyable([string, binary], [string, binary], same_kind=True)  # as hex literals
    assert not textcopy.copyable([string, other], [string, other], same_kind=True)  # e.g. BIT, YEAR
    assert not textcopy.copyable(
        [string, integer], [string, other], same_kind=True
    )  # e.g. into BIT or YEAR
    assert not textcopy.copyable(
        [string, real], [string, integer], same_kind=True
    )  # '2.5' rounds, 2.5e0 not
    assert not textcopy.copyable(None, [string], same_kind=True)  # SQLite promises nothing


def test_across_kinds_only_strings_integers_and_floats_are_copied() -> None:
    """Dates and decimals print differently on MySQL and PostgreSQL (DateStyle, BC dates,
    NaN): across kinds they go row by row."""
    string = ColumnSpec("a", "string", nullable=False, length=5)
    number = [ColumnSpec("b", kind, True) for kind in ("integer", "float")]
    assert textcopy.copyable([string, *number], [string, *number], same_kind=False)
    for kind in ("decimal", "date", "datetime", "bytes", "boolean"):
        other = ColumnSpec("b", kind, True)
        assert not textcopy.copyable([string, other], [string, other], same_kind=False)


def test_only_columns_declared_as_stored_are_copied() -> None:
    """The text writers escape, hex and check floats by the job's declared types: a type
    of the job's own (it may convert values) or one that says otherwise turns copies off;
    the dialects' own read types and a BOOLEAN over a TINYINT do not."""
    from sqlalchemy import Boolean, LargeBinary, String, TypeDecorator

    from etl.dialects.mysql_types import ExactFloat

    class Trimmed(TypeDecorator[str]):
        impl = String
        cache_ok = True

    text_spec, number = ColumnSpec("a", "string", True), ColumnSpec("b", "integer", True)
    binary, real = ColumnSpec("c", "bytes", True), ColumnSpec("d", "float", True)
    assert textcopy.declared_as_stored([String()], [text_spec], [text_spec])
    assert textcopy.declared_as_stored([ExactFloat()], [ColumnSpec("d", "other", True)], [real])
    assert textcopy.declared_as_stored([Boolean()], [ColumnSpec("b", "boolean", True)], [number])
    assert not textcopy.declared_as_stored([Trimmed()], [text_spec], [text_spec])
    assert not textcopy.declared_as_stored([LargeBinary()], [binary], [text_spec])
    assert not textcopy.declared_as_stored([String()], [text_spec], None)
