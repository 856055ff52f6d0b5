"""The type matrix: every column type, edge values, every pairing, exact to the stored value.

One wide table (``tests/helpers/types_table.py``) in the source's own types: a first
load into a missing target and into one the test made, a rerun that writes nothing,
changes that propagate (a JSON reformatting is not one), ``verify`` clean, and the
test's own value-by-value comparison of both sides. Rows a target cannot hold (NUL in
PostgreSQL text, a MySQL TIME beyond a time of day, NaN in MariaDB) are rejected with
their reason and nothing else is.
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
    create_engine,
    delete,
    event,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import mysql, postgresql

from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.engine.verify import Report, verify_job
from etl.errors import ConfigError
from etl.job import Job
from tests.conftest import _pair
from tests.helpers.support import Backend, DatabasePair
from tests.helpers.types_table import (
    SOURCE_COLUMNS,
    column_type,
    normalised,
    rejected,
    rows,
    wide_table,
)


def utc_engine(url: str) -> Engine:
    """The test's own engine, its session in UTC (set here, not by the tool)."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _utc(dbapi_connection: Any, _record: Any) -> None:
        if engine.dialect.name == "sqlite":
            return
        cursor = dbapi_connection.cursor()
        cursor.execute(
            "SET time_zone = '+00:00'"
            if engine.dialect.name in ("mysql", "mariadb")
            else "SET TIME ZONE 'UTC'"
        )
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()

    return engine


@pytest.fixture
def engines(dbs: DatabasePair) -> Iterator[dict[str, Engine]]:
    found = {"source": utc_engine(dbs.source_url), "target": utc_engine(dbs.target_url)}
    yield found
    for engine in found.values():
        engine.dispose()


def backend(dbs: DatabasePair, role: str) -> Backend:
    return dbs.source_backend if role == "source" else dbs.target_backend


def run(dbs: DatabasePair, job: Job, batch_size: int = 3) -> RunResult:
    databases = make_databases(dbs.settings())
    try:
        return run_job(job, databases, SyncOptions(batch_size=batch_size))
    finally:
        databases.dispose()


def verify(dbs: DatabasePair, job: Job) -> Report:
    databases = make_databases(dbs.settings())
    try:
        return verify_job(job, databases, page_size=3, limit=1000)
    finally:
        databases.dispose()


def read(engines: dict[str, Engine], dbs: DatabasePair, role: str) -> dict[int, dict[str, Any]]:
    """Every row of one side, read by the test (not the tool), values normalised."""
    side = backend(dbs, role)
    columns = SOURCE_COLUMNS[dbs.source_backend]
    table = wide_table(side, columns)
    selected: list[Any] = [table.c.id]
    for name in columns:
        column: Any = table.c[name]
        if side == "mariadb" and name == "f32":  # the text protocol prints six digits
            column = (type_coerce(column, Float()) + literal_column("0e0")).label(name)
        elif side == "mariadb" and name == "t":  # the driver's timedelta, not wrapped
            column = type_coerce(column, String()).label(name)
        elif name == "j":  # as text, whatever the column's type
            column = cast(column, Text()).label(name)
        elif side == "mariadb" and name == "f64":
            column = type_coerce(column, mysql.DOUBLE(asdecimal=False)).label(name)
        selected.append(column)
    with engines[role].connect() as connection:
        found = connection.execute(select(*selected)).mappings().all()
    return {
        int(row["id"]): {name: normalised(name, row[name]) for name in columns} for row in found
    }


def expected(dbs: DatabasePair, source_rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Ids the target cannot hold, with the start of the reason."""
    reasons = {
        key: rejected(dbs.source_backend, dbs.target_backend, row)
        for key, row in source_rows.items()
    }
    return {key: reason for key, reason in reasons.items() if reason}


def assert_same(engines: dict[str, Engine], dbs: DatabasePair) -> dict[int, str]:
    """The target holds exactly the source's rows but the rejected ones; returns those."""
    source, target = read(engines, dbs, "source"), read(engines, dbs, "target")
    refused = expected(dbs, source)
    assert set(target) == set(source) - set(refused)
    for key, row in target.items():
        for name, value in row.items():
            assert value == source[key][name], (key, name, value, source[key][name])
    return refused


def reasons(engines: dict[str, Engine]) -> dict[int, str]:
    with engines["target"].connect() as connection:
        found = connection.execute(text("SELECT row_key, reason FROM etl_rejects")).all()
    return {json.loads(key)[0]: reason for key, reason in found}


def create_source(dbs: DatabasePair, engines: dict[str, Engine]) -> Table:
    table = wide_table(dbs.source_backend, SOURCE_COLUMNS[dbs.source_backend])
    table.create(engines["source"])
    with engines["source"].begin() as connection:
        connection.execute(insert(table), rows(dbs.source_backend))
    return table


def precreate_target(dbs: DatabasePair, engines: dict[str, Engine]) -> None:
    """The target as a person would make it in that database's own types."""
    table = wide_table(dbs.target_backend, SOURCE_COLUMNS[dbs.source_backend])
    if dbs.source_backend != dbs.target_backend:
        table.c.c.type = String(10)  # CHAR pads in one database and strips in the other
    table.create(engines["target"])


@pytest.mark.parametrize(
    ("target_made", "reflected"),
    [(False, False), (True, False), (False, True)],
    ids=["created", "precreated", "reflected"],
)
def test_every_type_arrives_exactly(
    dbs: DatabasePair, engines: dict[str, Engine], target_made: bool, reflected: bool
) -> None:
    """``reflected``: the job's table is what SQLAlchemy reflects from the source (MariaDB's
    JSON a LONGTEXT, its DOUBLE a Decimal-returning type), the target made from that."""
    table = create_source(dbs, engines)
    if target_made:
        precreate_target(dbs, engines)
    definition = Table("types", MetaData(), autoload_with=engines["source"]) if reflected else table
    job = Job(name="types", table=definition)
    total = len(rows(dbs.source_backend))

    first = run(dbs, job)
    assert first.status == "succeeded", first.error
    refused = assert_same(engines, dbs)
    assert first.counts.rejected == len(refused)
    assert first.counts.inserted == total - len(refused)
    found = reasons(engines)
    assert set(found) == set(refused)
    for key, start in refused.items():
        assert start in found[key], (key, found[key])

    again = run(dbs, job)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    report = verify(dbs, job)
    assert report.counts == {"missing": len(refused), "extra": 0, "changed": 0}

    change_source(dbs, engines, table)
    changed = run(dbs, job)
    assert changed.status == "succeeded", changed.error
    assert (changed.counts.inserted, changed.counts.updated, changed.counts.deleted) == (1, 2, 1)
    assert_same(engines, dbs)
    quiet = run(dbs, job)
    assert (quiet.counts.inserted, quiet.counts.updated, quiet.counts.deleted) == (0, 0, 0)
    assert verify(dbs, job).counts["changed"] == 0


def change_source(dbs: DatabasePair, engines: dict[str, Engine], table: Table) -> None:
    """Two rows changed in the smallest ways, one deleted, one added; a JSON reformatted."""
    values: dict[str, Any] = {
        "dec": rows(dbs.source_backend)[3]["dec"] + Decimal("0.000001"),
        "f64": 0.1 + 2**-56 * 2,
        "vb": b"\x00\x01",
        "j": {"changed": [1, "😀"]},
    }
    if "f32" in table.c:
        values["f32"] = 0.10000001  # the next 4-byte float after 0.1
    with engines["source"].begin() as connection:
        connection.execute(update(table).where(table.c.id == 4).values(**values))
        connection.execute(update(table).where(table.c.id == 5).values(v="changed 😀"))
        connection.execute(delete(table).where(table.c.id == 6))
        connection.execute(insert(table).values(id=20, v="new", j={"new": True}))
        if dbs.source_backend != "postgresql":  # jsonb keeps no formatting to change
            reformatted = json.dumps(rows(dbs.source_backend)[2]["j"], indent=2, sort_keys=True)
            connection.execute(text("UPDATE types SET j = :j WHERE id = 3"), {"j": reformatted})


def test_a_target_column_of_another_kind_is_refused_up_front(
    dbs: DatabasePair, engines: dict[str, Engine]
) -> None:
    """A JSON source column into an INTEGER target column: one ConfigError line, no rows."""
    table = create_source(dbs, engines)
    target = wide_table(dbs.target_backend, SOURCE_COLUMNS[dbs.source_backend])
    target.c.j.type = column_type(dbs.target_backend, "i64")
    target.create(engines["target"])
    with pytest.raises(ConfigError, match="job types: column j: source type") as raised:
        run(dbs, Job(name="types", table=table))
    assert "\n" not in str(raised.value)


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
    target.c.vb.type = (
        mysql.VARBINARY(4)
        if dbs.target_backend == "mariadb"
        else column_type(dbs.target_backend, "vb")
    )
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


TEXT_COPYABLE = tuple(
    name for name in SOURCE_COLUMNS["mariadb"] if name not in ("bin", "vb", "blob")
)


@pytest.fixture
def maria_engines(maria: DatabasePair) -> Iterator[dict[str, Engine]]:
    found = {"source": utc_engine(maria.source_url), "target": utc_engine(maria.target_url)}
    yield found
    for engine in found.values():
        engine.dispose()


def test_text_copies_are_exact_for_every_type_they_take(
    maria: DatabasePair, maria_engines: dict[str, Engine]
) -> None:
    """MariaDB to MariaDB without binary columns: the first load goes as SQL text the
    source writes (QUOTE), FLOAT as its exact double, TIME as signed durations, and the
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
