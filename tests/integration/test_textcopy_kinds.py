"""Text copies across kinds: MariaDB writes PostgreSQL COPY text, PostgreSQL MySQL values.

Each first load goes as text the source server writes, and the target then holds
exactly the source's values (read back by the test as exact doubles); a rerun writes
nothing and verify is clean. Values the target cannot hold (NUL in PostgreSQL text,
NaN and infinities in MariaDB) send their batch row by row, where they are set aside
with their reason, and every other row still arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.dialects import POSTGRESQL
from etl.job import Job
from jobs.students import JOB
from tests.helpers.support import DatabasePair
from tests.helpers.type_runs import engines_of, run, verify

STRINGS = [
    ("quote", "it's", "say \"hi\" 'twice'"),
    ("backslash", "C:\\temp\\", "ends in \\"),
    ("escapes", "\\N", "\\."),  # COPY's NULL and end-of-data, as text
    ("controls", "tab\there", "line\nfeed\rreturn\r\n"),
    ("more", "form\ffeed\vtab", "sub\x1a \x01 \x7f"),
    ("unicode", "Zoë 😀", "日本語 𝄞"),
    ("injection", "'), ('x', 'y', 'z', 1); --", "NULL"),
    ("nulls", "none", None),
    ("spaces", "  padded", " "),
    ("empty", "", ""),
]
FLOATS = [1.2345678, 0.1, 3.4e38, -0.0, 1e-38, 1.4e-45, 16777217.0, -123456789.0, None, 0.0]
"""Scores: exact 4-byte floats once stored, a subnormal one and the smallest among them."""


def students(floats: list[float | None]) -> list[tuple[Any, ...]]:
    rows = [
        (f"{name} {i}", last, course, floats[i % len(floats)])
        for i, (name, last, course) in enumerate(STRINGS)
    ]
    return rows + [(f"S{i:05d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(40)]


def via_of(events: list[dict[str, Any]]) -> set[str]:
    return {e["via"] for e in events if e["event"] == "batch_committed"}


def mode_of(events: list[dict[str, Any]]) -> str:
    return str(next(e["mode"] for e in events if e["event"] == "run_started"))


def exact_key(dbs: DatabasePair) -> str:
    return "utf8mb4_nopad_bin" if dbs.source_backend == "mariadb" else "C"


@pytest.mark.parametrize("keys", ["default", "exact"])
def test_a_first_load_across_kinds_goes_as_text_and_arrives_exactly(
    cross: DatabasePair, keys: str
) -> None:
    """Quotes, backslashes, COPY's own markers, control characters, emoji, '' and NULL,
    float edges: in lookup mode (a case-insensitive MariaDB key) and in range mode."""
    wide = [1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, 0.30000000000000004]
    floats = FLOATS + (wide if cross.source_backend == "postgresql" else [])
    cross.create_source(students(floats), exact_key(cross) if keys == "exact" else None)
    with structlog.testing.capture_logs() as events:
        first = cross.run(batch_size=7)
    assert first.status == "succeeded", first.error
    assert via_of(events) == {"text"}
    formats = [e["form"] for e in events if e["event"] == "text_copy_format"]
    assert formats == ["copy-text" if cross.target_backend == "postgresql" else "load-data"]
    if cross.source_backend == "mariadb":
        assert mode_of(events) == ("range" if keys == "exact" else "lookup")
    assert first.counts.inserted == len(STRINGS) + 40
    assert cross.rows("target") == cross.rows("source")
    with cross.engine("target").connect() as connection:  # the pass completed
        assert connection.execute(text("SELECT COUNT(*) FROM etl_checkpoints")).scalar() == 0
    again = cross.run(batch_size=7)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    assert verify(cross, Job(name="students", table=cross.students_table())).drift == 0


@pytest.mark.parametrize("cross", [("mariadb", "postgresql")], indirect=True)
def test_a_nul_sends_its_batch_row_by_row_where_it_is_set_aside(cross: DatabasePair) -> None:
    """PostgreSQL text holds no NUL: MariaDB's COPY text finds one and that batch goes
    row by row, which rejects the row with its reason."""
    cross.create_source([("nul\x00here", "x", "c", 1.0), *students(FLOATS)])
    with structlog.testing.capture_logs() as events:
        result = cross.run(batch_size=7)
    assert result.status == "succeeded", result.error
    assert via_of(events) == {"text", "rows"}
    assert result.counts.rejected == 1
    assert result.counts.inserted == len(STRINGS) + 40
    assert cross.rows("target") == [r for r in cross.rows("source") if "\x00" not in r[0]]
    with cross.engine("target").connect() as connection:
        reason = connection.execute(text("SELECT reason FROM etl_rejects")).scalar_one()
    assert "NUL" in reason


@pytest.mark.parametrize("cross", [("postgresql", "mariadb")], indirect=True)
def test_non_finite_floats_send_their_batch_row_by_row(cross: DatabasePair) -> None:
    """MariaDB's floats hold no NaN or infinities: PostgreSQL's text finds them and that
    batch goes row by row, which rejects those rows with their reason."""
    odd = [("nan", "x", "c", float("nan")), ("inf", "x", "c", float("inf"))]
    cross.create_source([*odd, ("minus inf", "x", "c", float("-inf")), *students(FLOATS)])
    with structlog.testing.capture_logs() as events:
        result = cross.run(batch_size=7)
    assert result.status == "succeeded", result.error
    assert via_of(events) == {"text", "rows"}
    assert result.counts.rejected == 3
    assert result.counts.inserted == len(STRINGS) + 40
    kept = [r for r in cross.rows("source") if r[0] not in ("nan", "inf", "minus inf")]
    assert cross.rows("target") == kept


@pytest.mark.parametrize("cross", [("mariadb", "postgresql")], indirect=True)
def test_a_copy_into_postgresql_refuses_a_nul_as_a_data_error(cross: DatabasePair) -> None:
    """Should NUL ever reach COPY text, PostgreSQL refuses the whole COPY (the batch is
    then redone row by row), never stores something else."""
    table = cross.students_table()
    table.create(cross.engine("target"))
    with Session(cross.engine("target")) as session, pytest.raises(DBAPIError) as raised:
        POSTGRESQL.write_text(
            session, table, JOB.columns, JOB.key, "a\x00b\tx\tc\t1\n", form="copy-text"
        )
    assert POSTGRESQL.classify(raised.value.orig) == "data"


INTEGERS = {
    "i16": (SmallInteger(), -(2**15), 2**15 - 1),
    "i32": (Integer(), -(2**31), 2**31 - 1),
    "i64": (BigInteger(), -(2**63), 2**63 - 1),
}
SINGLES = [3.4028234663852886e38, 1.401298464324817e-45, -1.1754943508222875e-38, 0.1, -0.0]
DOUBLES = [1.7976931348623157e308, 5e-324, -2.2250738585072014e-308, 0.30000000000000004, 1e22]


def limits_table() -> Table:
    """Integers of three widths, a 4-byte and an 8-byte float, unbounded text."""
    return Table(
        "limits",
        MetaData(),
        Column("k", String(20), primary_key=True),
        *[Column(name, kind) for name, (kind, _, _) in INTEGERS.items()],
        Column("f32", Float(precision=24)),
        Column("f64", Double()),
        Column("t", Text()),
    )


def limits_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(12):
        row: dict[str, Any] = {"k": f"k{i:02d}"}
        for name, (_, low, high) in INTEGERS.items():
            row[name] = (low, high, 0, -1, None)[i % 5]
        row["f32"] = [*SINGLES, None][i % 6]
        row["f64"] = [*DOUBLES, None][i % 6]
        row["t"] = ["", None, "x" * 3000, "a\\b\tc\nd\re'f", "😀" * 100][i % 5]
        rows.append(row)
    return rows


@pytest.fixture
def engines(cross: DatabasePair) -> Iterator[dict[str, Engine]]:
    yield from engines_of(cross)


def read_limits(engines: dict[str, Engine], role: str) -> list[tuple[Any, ...]]:
    """Every row as the test reads it: floats as exact doubles on either kind."""
    table = limits_table()
    engine = engines[role]
    widen = "0e0" if engine.dialect.name in ("mysql", "mariadb") else "0::float8"
    selected = [
        (type_coerce(c, Double()) + literal_column(widen)).label(c.name)
        if c.name in ("f32", "f64")
        else c
        for c in table.columns
    ]
    with engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(select(*selected)))


def test_integers_at_their_limits_and_float_edges_arrive_exactly(
    cross: DatabasePair, engines: dict[str, Engine]
) -> None:
    """Each integer width at both ends, a 4-byte float's largest, smallest subnormal and
    smallest normal values, a double's, long text: as text, value by value the same."""
    table = limits_table()
    table.create(engines["source"])
    with engines["source"].begin() as connection:
        connection.execute(insert(table), limits_rows())
    job = Job(name="limits", table=table)
    with structlog.testing.capture_logs() as events:
        first = run(cross, job, batch_size=5)
    assert first.status == "succeeded", first.error
    assert via_of(events) == {"text"}
    assert first.counts.inserted == 12
    assert read_limits(engines, "target") == read_limits(engines, "source")
    again = run(cross, job)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    report = verify(cross, job)
    assert report.counts == {"missing": 0, "extra": 0, "changed": 0}, json.dumps(
        [str(d) for d in report.differences]
    )
