"""Reading and writing rows of a job's table: thin functions on a session, never committing.

Key ranges follow keyset pagination: a batch is every key in ``(lo, hi]`` in the
database's own key order, read through the primary key index, so no query ever scans
from the start of the table and no transaction stays open between batches.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_string
from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, text, true, tuple_
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from etl.diff import Key, Row

# Keys per IN (...) list: keeps statements under SQLite's and PostgreSQL's parameter limits.
_LOOKUP_CHUNK = 5000


def after(table: Table, key: Sequence[str], lo: Key | None, backend: str) -> ColumnElement[bool]:
    """Keys strictly after ``lo``; from the start when ``lo`` is None.

    The start excludes keys with a NULL part (only SQLite lets a key hold one): they
    belong to no range, and a NULL boundary would end the pagination early. They are
    set aside as rejects separately.
    """
    columns = [table.c[name] for name in key]
    if lo is None:
        return and_(*[column.is_not(None) for column in columns])
    if backend != "mysql":
        return tuple_(*columns) > tuple_(*lo)
    # MySQL's range optimiser uses the index for this expanded form, not for (a, b) > (x, y).
    return _expanded(columns, lo, after=True)


def up_to(table: Table, key: Sequence[str], hi: Key | None, backend: str) -> ColumnElement[bool]:
    """Keys at or before ``hi`` (everything when ``hi`` is None, the open end)."""
    if hi is None:
        return true()
    columns = [table.c[name] for name in key]
    if backend != "mysql":
        return tuple_(*columns) <= tuple_(*hi)
    return _expanded(columns, hi, after=False)


def _expanded(columns: list[Any], bound: Key, *, after: bool) -> ColumnElement[bool]:
    """``(c1, c2) > (b1, b2)`` as ``c1 > b1 OR (c1 = b1 AND c2 > b2)``; ``<=`` likewise."""
    first, value = columns[0], bound[0]
    if len(columns) == 1:
        last: ColumnElement[bool] = first > value if after else first <= value
        return last
    beyond = first > value if after else first < value
    return or_(beyond, and_(first == value, _expanded(columns[1:], bound[1:], after=after)))


def read_page(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    limit: int,
    backend: str,
) -> list[Row]:
    """The first ``limit`` rows after ``lo`` in key order."""
    query = (
        select(*[table.c[name] for name in columns])
        .where(after(table, key, lo, backend))
        .order_by(*[table.c[name] for name in key])
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]


def read_range(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    hi: Key | None,
    backend: str,
) -> list[Row]:
    """Every row with a key in ``(lo, hi]``; ``hi`` None means to the end."""
    query = select(*[table.c[name] for name in columns]).where(
        after(table, key, lo, backend), up_to(table, key, hi, backend)
    )
    return [tuple(row) for row in session.execute(query)]


def read_keys(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    keys: Sequence[Key],
) -> list[Row]:
    """The rows whose key the database considers equal to one of ``keys``."""
    found: list[Row] = []
    key_columns = tuple_(*[table.c[name] for name in key])
    for chunk in _chunks(keys, _LOOKUP_CHUNK):
        query = select(*[table.c[name] for name in columns]).where(key_columns.in_(chunk))
        found.extend(tuple(row) for row in session.execute(query))
    return found


def read_null_keys(
    session: Session, table: Table, columns: Sequence[str], key: Sequence[str]
) -> list[Row]:
    """Rows with a NULL key part: keyset pagination can never reach them."""
    query = select(*[table.c[name] for name in columns]).where(
        or_(*[table.c[name].is_(None) for name in key])
    )
    return [tuple(row) for row in session.execute(query)]


def delete_keys(session: Session, table: Table, key: Sequence[str], keys: Sequence[Key]) -> None:
    """Delete the rows with these keys."""
    key_columns = tuple_(*[table.c[name] for name in key])
    for chunk in _chunks(keys, _LOOKUP_CHUNK):
        session.execute(delete(table).where(key_columns.in_(chunk)))


def upsert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Sequence[Row],
    backend: str,
) -> None:
    """Insert rows, or update the non-key columns where the key exists: multi-row statements."""
    if not rows:
        return
    others = [name for name in columns if name not in key]
    if backend == "postgresql":
        _upsert_unnest(session, table, columns, key, others, rows)
        return
    if backend == "mysql" and _upsert_pymysql_literal(session, table, columns, others, rows):
        return
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if backend == "mysql":
        # Other drivers' executemany folds this into multi-row INSERT ... VALUES (...), (...).
        my = mysql.insert(table)
        session.execute(my.on_duplicate_key_update({n: my.inserted[n] for n in others}), records)
        return
    # SQLite runs in-process: executemany has no round trips to save.
    lite = sqlite.insert(table)
    session.execute(
        lite.on_conflict_do_update(
            index_elements=list(key), set_={n: lite.excluded[n] for n in others}
        )
        if others
        else lite.on_conflict_do_nothing(index_elements=list(key)),
        records,
    )


def _upsert_pymysql_literal(
    session: Session,
    table: Table,
    columns: Sequence[str],
    others: Sequence[str],
    rows: Sequence[Row],
) -> bool:
    """MySQL through PyMySQL: multi-row upserts written as SQL text here; False otherwise.

    PyMySQL's executemany escapes every value through a generic, type-dispatching
    ``escape`` and SQLAlchemy first turns each row into a dict: together about half the
    client's time on a bulk load. Here each value is escaped by the connection's own
    string escaping (honouring NO_BACKSLASH_ESCAPES, as PyMySQL does) or written as a float/int
    literal, and statements are cut at a quarter of the server's max_allowed_packet.
    """
    dbapi: Any = session.connection().connection.dbapi_connection
    if type(dbapi).__module__ != "pymysql.connections":
        return False
    quote = session.get_bind().dialect.identifier_preparer.quote
    update = ", ".join(f"{quote(n)} = VALUES({quote(n)})" for n in others)
    head = (
        f"INSERT INTO {session.get_bind().dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(n) for n in columns)}) VALUES "
    )
    tail = (
        f" ON DUPLICATE KEY UPDATE {update}"
        if others
        else " ON DUPLICATE KEY UPDATE " + (f"{quote(columns[0])} = {quote(columns[0])}")
    )
    literal = _literals(dbapi)
    limit = _statement_limit(session, dbapi)
    connection = session.connection()

    def send(values: list[str]) -> None:
        # no_parameters: PyMySQL must not %-format a statement that has no parameters.
        connection.exec_driver_sql(
            head + ",".join(values) + tail, execution_options={"no_parameters": True}
        )

    values: list[str] = []
    size = 0
    for row in rows:
        text_row = (
            "("
            + ",".join(
                [literal[type(v)](v) if type(v) in literal else dbapi.escape(v) for v in row]
            )
            + ")"
        )
        if values and size + len(text_row) > limit:
            send(values)
            values, size = [], 0
        values.append(text_row)
        size += len(text_row) + 1
    if values:
        send(values)
    return True


def _literals(dbapi: Any) -> dict[type, Any]:
    if dbapi.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:

        def string(value: str) -> str:
            return "'" + value.replace("'", "''") + "'"

    else:

        def string(value: str) -> str:
            return "'" + escape_string(value) + "'"

    def number(value: Any) -> str:
        # As PyMySQL does: 'e0' makes MySQL read a DOUBLE, not an exact DECIMAL.
        text_value = repr(value)
        return text_value if "e" in text_value else text_value + "e0"

    return {str: string, float: number, int: str, type(None): lambda _: "NULL"}


def _statement_limit(session: Session, dbapi: Any) -> int:
    """Characters per statement: well under the server's max_allowed_packet (in bytes)."""
    limit = _STATEMENT_LIMITS.get(dbapi)
    if limit is None:
        packet = int(session.execute(text("SELECT @@max_allowed_packet")).scalar_one())
        packet = min(packet, int(getattr(dbapi, "max_allowed_packet", packet)))
        # Up to 4 bytes per character in utf8mb4.
        limit = _STATEMENT_LIMITS[dbapi] = max(16_384, packet // 4 - 1024)
    return limit


_STATEMENT_LIMITS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Per DBAPI connection: the server's packet limit is asked once per connection."""


def _upsert_unnest(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    others: Sequence[str],
    rows: Sequence[Row],
) -> None:
    """PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) per batch, one parameter per column.

    A single statement of constant text, however many rows: the server parses it
    once, and there is no per-row parameter limit to chunk around.
    """
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:c{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(columns)
    )
    conflict = (
        "DO UPDATE SET " + ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in others)
        if others
        else "DO NOTHING"
    )
    statement = text(
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(n) for n in columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(quote(n) for n in key)}) {conflict}"
    )
    session.execute(
        statement, {f"c{i}": list(values) for i, values in enumerate(zip(*rows, strict=True))}
    )


def count_rows(session: Session, table: Table) -> int:
    """How many rows the table has."""
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
