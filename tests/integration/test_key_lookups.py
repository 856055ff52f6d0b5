"""Keys looked up by value on every database: typed binds, the database's own equality."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    VARBINARY,
    Column,
    Date,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.dialects import dialect_of
from etl.engine import store
from etl.engine.retry import is_data_error


@pytest.fixture(params=["mariadb", "postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        fixture = "mariadb_urls" if request.param == "mariadb" else "postgres_urls"
        url = request.getfixturevalue(fixture)[1]
    made = create_engine(url)
    yield made
    MetaData().drop_all(made)  # nothing registered: tables are dropped by each test
    made.dispose()


def test_keys_of_every_type_are_found_and_deleted(engine: Engine) -> None:
    """Date, integer, bytes and string key parts bind with their column's type."""
    table = Table(
        "typed_keys",
        MetaData(),
        Column("day", Date, primary_key=True),
        Column("n", Integer, primary_key=True),
        Column(
            "blob", LargeBinary().with_variant(VARBINARY(16), "mysql", "mariadb"), primary_key=True
        ),
        Column("name", String(20), primary_key=True),
        Column("v", Integer),
    )
    table.create(engine)
    try:
        rows = [
            (dt.date(2024, 1, 1) + dt.timedelta(days=i % 7), i, bytes([i % 256, 0, 7]), f"n{i}", i)
            for i in range(3000)
        ]
        with engine.begin() as connection:
            connection.execute(
                insert(table), [dict(zip(table.c.keys(), r, strict=True)) for r in rows]
            )
        key = ["day", "n", "blob", "name"]
        wanted = [r[:4] for r in rows[::3]]
        absent = [
            (dt.date(2024, 1, 1), 1, b"\x01\x00\x07", "n2"),
            (dt.date(1999, 1, 1), 0, b"", ""),
        ]
        dialect = dialect_of(engine)
        with Session(engine) as session:
            found = store.read_keys(
                session, table, ["day", "n", "blob", "name", "v"], key, [*wanted, *absent], dialect
            )
            assert sorted(found) == sorted(r for r in rows[::3])
            store.delete_keys(session, table, key, wanted, dialect)
            session.commit()
        with Session(engine) as session:
            left = store.read_keys(session, table, key, key, [r[:4] for r in rows], dialect)
        assert len(left) == 2000
    finally:
        table.drop(engine)


def test_a_case_insensitive_column_finds_every_spelling_it_calls_equal(engine: Engine) -> None:
    """The callers rely on it: 'anna' finds 'Anna' where the collation says they are equal."""
    family = dialect_of(engine).family
    collation = {"mysql": "utf8mb4_general_ci", "postgresql": "etl_ci", "sqlite": "NOCASE"}[family]
    if family == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE COLLATION IF NOT EXISTS etl_ci "
                "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
    table = Table(
        "ci_keys",
        MetaData(),
        Column("name", String(20, collation=collation), primary_key=True),
        Column("v", Integer),
    )
    table.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(table), [{"name": "Anna", "v": 1}, {"name": "Bob", "v": 2}])
        dialect = dialect_of(engine)
        with Session(engine) as session:
            found = store.read_keys(session, table, ["name", "v"], ["name"], [("anna",)], dialect)
        assert found == [("Anna", 1)]
    finally:
        table.drop(engine)


def test_inserting_a_key_already_there_is_a_data_error(engine: Engine) -> None:
    """insert_new may skip the conflict check; a key already there must then fail as data.

    The batch driver redoes such a batch isolating rows, which upserts.
    """
    table = Table(
        "new_keys",
        MetaData(),
        Column("name", String(20), primary_key=True),
        Column("v", Integer),
    )
    table.create(engine)
    try:
        dialect = dialect_of(engine)
        with Session(engine) as session, session.begin():
            dialect.insert_new(session, table, ["name", "v"], ["name"], [("a", 1), ("b", 2)])
        with Session(engine) as session, session.begin():
            dialect.upsert(session, table, ["name", "v"], ["name"], [("a", 3)])
        if dialect.family != "postgresql":  # elsewhere insert_new is the upsert
            with Session(engine) as session, session.begin():
                dialect.insert_new(session, table, ["name", "v"], ["name"], [("b", 4)])
            return
        with pytest.raises(DBAPIError) as raised, Session(engine) as session, session.begin():
            dialect.insert_new(session, table, ["name", "v"], ["name"], [("b", 4)])
        assert is_data_error(raised.value)
    finally:
        table.drop(engine)
