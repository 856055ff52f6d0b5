"""Type limits and fast paths: narrower targets, text copies, text into jsonb.

A pre-existing target narrower than the source rejects exactly the rows that do not
fit, each with its reason; a MariaDB-to-MariaDB text copy is exact for every type it
takes; text PostgreSQL's jsonb cannot hold is set aside with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import structlog
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    cast,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import mysql, postgresql

from etl.job import Job
from tests.conftest import _pair
from tests.helpers.support import DatabasePair
from tests.helpers.type_runs import engines_of, reasons, run
from tests.helpers.types_table import SOURCE_COLUMNS, normalised, rows, wide_table


@pytest.fixture
def engines(dbs: DatabasePair) -> Iterator[dict[str, Engine]]:
    yield from engines_of(dbs)


def test_a_narrower_target_rejects_only_the_rows_that_do_not_fit(
    dbs: DatabasePair, engines: dict[str, Engine]
) -> None:
    """BIGINT into INT, DECIMAL(20,6) into DECIMAL(8,2), TEXT into VARCHAR(10), bytes into
    4 bytes: decided row by row, each refused row with its reason; the rest arrive."""
    source = wide_table(dbs.source_backend, ("i64", "dec", "txt", "vb"), name="narrow")
    source.create(engines["source"])
    fits = {"id": 1, "i64": 2**31 - 1, "dec": Decimal("-999999.99"), "txt": "ten chars!"}
    fits["vb"] = b"\x00\x5c\x00\x5c"
    with engines["source"].begin() as connection:
        connection.execute(insert(source), [fits])
        connection.execute(insert(source), [{"id": 2, "i64": 2**31}])
        connection.execute(insert(source), [{"id": 3, "dec": Decimal("0.001")}])
        connection.execute(insert(source), [{"id": 4, "dec": Decimal("1000000")}])
        connection.execute(insert(source), [{"id": 5, "txt": "eleven char"}])
        connection.execute(insert(source), [{"id": 6, "vb": b"\x00" * 5}])
    target = wide_table(dbs.target_backend, ("i64", "dec", "txt", "vb"), name="narrow")
    target.c.i64.type = Integer()
    target.c.dec.type = Numeric(8, 2)
    target.c.txt.type = String(10)
    if dbs.target_backend == "mariadb":
        target.c.vb.type = mysql.VARBINARY(4)
    target.create(engines["target"])
    result = run(dbs, Job(name="narrow", table=source))
    assert result.status == "succeeded", result.error
    found = reasons(engines)
    expected_reasons = {
        3: "more than the target column's 2 digits after the point",
        4: "out of the target column's range (DECIMAL(8,2))",
        5: "txt is 11 characters long; the target column holds 10",
    }
    if dbs.target_backend != "sqlite":  # every SQLite integer holds 64 bits
        expected_reasons[2] = "i64 is 2147483648, out of the target column's range"
    if dbs.target_backend == "mariadb":  # BYTEA and BLOB have no length to exceed
        expected_reasons[6] = "vb is 5 bytes long; the target column holds 4"
    assert set(found) == set(expected_reasons)
    for key, reason in expected_reasons.items():
        assert reason in found[key]
    assert result.counts.inserted == 6 - len(expected_reasons)
    with engines["target"].connect() as connection:
        row = connection.execute(
            select(target.c.i64, target.c.dec, target.c.txt).where(target.c.id == 1)
        ).one()
    assert tuple(row) == (2**31 - 1, Decimal("-999999.99"), "ten chars!")


TEXT_COPYABLE = tuple(SOURCE_COLUMNS["mariadb"])
"""Every column of the type matrix, binary ones included (written as hex)."""


@pytest.fixture
def maria_engines(maria: DatabasePair) -> Iterator[dict[str, Engine]]:
    yield from engines_of(maria)


def test_text_copies_are_exact_for_every_type_they_take(
    maria: DatabasePair, maria_engines: dict[str, Engine]
) -> None:
    """MariaDB to MariaDB, every type: the first load goes as SQL text the source writes
    (QUOTE; bytes as hex), FLOAT as its exact double, TIME as signed durations, and the
    target holds exactly the source's values; checksums then find nothing to do."""
    table = wide_table("mariadb", TEXT_COPYABLE)
    table.create(maria_engines["source"])
    values = [{n: row[n] for n in ("id", *TEXT_COPYABLE)} for row in rows("mariadb")]
    with maria_engines["source"].begin() as connection:
        connection.execute(insert(table), values)
    job = Job(name="types", table=table)
    with structlog.testing.capture_logs() as events:
        first = run(maria, job)
    assert first.status == "succeeded", first.error
    assert {e["via"] for e in events if e["event"] == "batch_committed"} == {"text"}
    source, target = read_columns(maria_engines, TEXT_COPYABLE)
    assert target == source
    with structlog.testing.capture_logs() as events:
        again = run(maria, job)
    assert (again.counts.inserted, again.counts.updated) == (0, 0)
    assert {e["via"] for e in events if e["event"] == "batch_committed"} == {"checksum"}


def read_columns(
    engines: dict[str, Engine], columns: tuple[str, ...]
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Both MariaDB sides' rows of these columns, read and normalised as :func:`read` does."""
    found = []
    for role in ("source", "target"):
        table = wide_table("mariadb", columns)
        selected: list[Any] = [table.c.id]
        for name in columns:
            column: Any = table.c[name]
            if name == "f32":
                column = (type_coerce(column, Float()) + literal_column("0e0")).label(name)
            elif name == "t":
                column = type_coerce(column, String()).label(name)
            elif name == "j":
                column = cast(column, Text()).label(name)
            elif name == "f64":
                column = type_coerce(column, mysql.DOUBLE(asdecimal=False)).label(name)
            selected.append(column)
        with engines[role].connect() as connection:
            rows_found = connection.execute(select(*selected)).mappings().all()
        found.append({int(r["id"]): {n: normalised(n, r[n]) for n in columns} for r in rows_found})
    return found[0], found[1]


@pytest.fixture
def maria_to_pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    yield from _pair(request, tmp_path_factory, "mariadb", "postgresql")


def test_text_that_jsonb_cannot_hold_is_rejected_with_the_reason(
    maria_to_pg: DatabasePair,
) -> None:
    """MariaDB text (plain, and JSON with a \\u0000) into PostgreSQL jsonb: not valid JSON,
    or a NUL jsonb cannot store, each row set aside with that reason; the rest arrive."""
    dbs = maria_to_pg
    source = Table(
        "docs",
        MetaData(),
        Column("id", Integer(), primary_key=True, autoincrement=False),
        Column("plain", mysql.LONGTEXT()),
        Column("doc", mysql.JSON(none_as_null=True)),
    )
    source.create(dbs.engine("source"))
    with dbs.engine("source").begin() as connection:
        connection.execute(
            insert(source),
            [
                {"id": 1, "plain": '{"ok": [1, 2]}', "doc": {"ok": True}},
                {"id": 2, "plain": "{not json", "doc": None},
                {"id": 3, "plain": None, "doc": {"nul": "a\x00b"}},
                {"id": 4, "plain": '"a JSON string"', "doc": "a JSON string"},
            ],
        )
    target = Table(
        "docs",
        MetaData(),
        Column("id", Integer(), primary_key=True, autoincrement=False),
        Column("plain", postgresql.JSONB()),
        Column("doc", postgresql.JSONB()),
    )
    target.create(dbs.engine("target"))
    job = Job(name="docs", table=source)
    result = run(dbs, job)
    assert result.status == "succeeded", result.error
    with dbs.engine("target").connect() as connection:
        found = dict(connection.execute(text("SELECT row_key, reason FROM etl_rejects")).all())
        stored = connection.execute(text("SELECT id, plain, doc FROM docs ORDER BY id")).all()
    assert {json.loads(k)[0]: r for k, r in found.items()} == {
        2: "plain is not valid JSON",
        3: "doc contains a NUL character, which the target cannot store in JSON",
    }
    assert [tuple(r) for r in stored] == [
        (1, {"ok": [1, 2]}, {"ok": True}),
        (4, "a JSON string", "a JSON string"),
    ]
    again = run(dbs, job)
    assert (again.counts.inserted, again.counts.updated) == (0, 0)


@pytest.fixture
def pg_to_pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    yield from _pair(request, tmp_path_factory, "postgresql", "postgresql")


@pytest.fixture
def pg_engines(pg_to_pg: DatabasePair) -> Iterator[dict[str, Engine]]:
    """Both databases default to another time zone and to six-digit floats."""
    for url in (pg_to_pg.source_url, pg_to_pg.target_url):
        name = url.rsplit("/", 1)[1]
        pg_to_pg.execute("source", f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Kolkata'")
        pg_to_pg.execute("source", f'ALTER DATABASE "{name}" SET extra_float_digits = 0')
    pg_to_pg.dispose()  # later connections take the new defaults
    yield from engines_of(pg_to_pg)


def test_session_defaults_of_the_databases_change_nothing(
    pg_to_pg: DatabasePair, pg_engines: dict[str, Engine]
) -> None:
    """The tool sets its own sessions (UTC, exact floats), whatever the databases'
    defaults: values arrive exactly and a rerun (by checksums) writes nothing."""
    columns = ("f32", "f64", "ts", "dt")
    table = wide_table("postgresql", columns, name="defaults")
    table.create(pg_engines["source"])
    values = [{n: row[n] for n in ("id", *columns)} for row in rows("postgresql")]
    with pg_engines["source"].begin() as connection:
        connection.execute(insert(table), values)
    job = Job(name="defaults", table=table)
    first = run(pg_to_pg, job)
    assert first.status == "succeeded", first.error
    with structlog.testing.capture_logs() as events:
        again = run(pg_to_pg, job)
    assert (again.counts.inserted, again.counts.updated) == (0, 0)
    assert {e["via"] for e in events if e["event"] == "batch_committed"} == {"checksum"}
    names = ("id", *columns)
    found = []
    for role in ("source", "target"):
        with pg_engines[role].connect() as connection:
            got = connection.execute(select(*table.columns).order_by(table.c.id)).all()
        found.append([tuple(normalised(n, v) for n, v in zip(names, r, strict=True)) for r in got])
    assert found[0] == found[1]
    assert len(found[0]) == len(values)


PG_SESSION = "SELECT current_setting('TimeZone') || ' ' || current_setting('extra_float_digits')"


def test_the_tools_sessions_are_in_utc(maria: DatabasePair, pg_to_pg: DatabasePair) -> None:
    """Set at connect by each dialect, never inherited from the server or the role."""
    from etl.engine.db import make_databases

    for pair, query in (
        (maria, "SELECT @@session.time_zone"),
        (pg_to_pg, PG_SESSION),
    ):
        databases = make_databases(pair.settings())
        try:
            for sessions in (databases.Source, databases.Target):
                with sessions() as session:
                    found = session.execute(text(query)).scalar_one()
                assert found in ("+00:00", "UTC 3")
        finally:
            databases.dispose()
