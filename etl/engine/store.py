"""Reading and writing rows of a job's table: thin functions on a session, never committing.

Key ranges follow keyset pagination: a batch is every key in ``(lo, hi]`` in the
database's own key order, read through the primary key index, so no query ever scans
from the start of the table and no transaction stays open between batches.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from pymysql.constants import SERVER_STATUS
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

from etl.core.diff import Key, Row
from etl.dialects import mysql_values

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
    return _rows(session, query)


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
    return _rows(session, query)


def _rows(session: Session, query: Select[Any]) -> list[Row]:
    """The query's rows as plain tuples.

    Rows come straight from the driver's cursor: building a SQLAlchemy Row for each
    and copying it into a tuple took a fifth of a bulk load's reading time. The column
    types' own result conversions still apply, and a driver error is raised as
    SQLAlchemy would raise it (a disconnect invalidates the connection).
    """
    connection = session.connection()
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string or any(
        bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
        for bind in compiled.binds.values()
    ):
        return [tuple(row) for row in session.execute(query)]
    params = compiled.construct_params()
    arguments = [params[name] for name in compiled.positiontup or ()] or params
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(compiled.string, arguments)
        rows: list[Row] = list(cursor.fetchall())
        description = cursor.description
    except dialect.loaded_dbapi.Error as error:
        raise _wrapped(connection, error, cursor, compiled.string, arguments) from error
    except BaseException:
        connection.invalidate()  # a result half read: the connection must not be reused
        raise
    finally:
        cursor.close()
    processors = [
        column.type.dialect_impl(dialect).result_processor(dialect, description[i][1])
        for i, column in enumerate(query.selected_columns)
    ]
    if not rows or not any(processors):
        return rows
    values = [
        list(map(convert, column)) if convert else column
        for convert, column in zip(processors, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*values, strict=True))


def _wrapped(
    connection: Connection, error: Any, cursor: Any, statement: str, arguments: Any
) -> StatementError:
    """A driver error from a cursor used directly, as SQLAlchemy would raise it.

    A lost connection is invalidated, so the pool never hands it out again.
    """
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    wrapped: StatementError = DBAPIError.instance(
        statement,
        arguments,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return wrapped


def any_rows(
    session: Session, table: Table, key: Sequence[str], lo: Key | None, hi: Key | None, backend: str
) -> bool:
    """Whether the table has a row with a key in ``(lo, hi]`` (one index probe)."""
    query: Select[Any] = (
        select(literal_column("1"))
        .select_from(table)
        .where(after(table, key, lo, backend), up_to(table, key, hi, backend))
        .limit(1)
    )
    return session.execute(query).first() is not None


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
        _upsert_staged(session, table, columns, key, others, rows)
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
    client's time on a bulk load. Here the text is written column by column
    (:mod:`etl.mysql_values`, honouring NO_BACKSLASH_ESCAPES as PyMySQL does), and
    statements are cut at a quarter of the server's max_allowed_packet.
    """
    dbapi: Any = session.connection().connection.dbapi_connection
    if type(dbapi).__module__ != "pymysql.connections":
        return False
    texts = mysql_values.row_texts(rows, no_backslash_escapes(session), dbapi.escape)
    for values in mysql_values.statements(texts, statement_limit(session)):
        _send_upsert(session, table, columns, others, values)
    return True


def upsert_values(
    session: Session, table: Table, columns: Sequence[str], key: Sequence[str], values: str
) -> None:
    """MySQL: upsert rows given as the text of a values list, ``(v, ...),(v, ...)``."""
    _send_upsert(session, table, columns, [n for n in columns if n not in key], values)


def _send_upsert(
    session: Session, table: Table, columns: Sequence[str], others: Sequence[str], values: str
) -> None:
    preparer = session.get_bind().dialect.identifier_preparer
    quote = preparer.quote
    update = (
        ", ".join(f"{quote(n)} = VALUES({quote(n)})" for n in others)
        if others
        else f"{quote(columns[0])} = {quote(columns[0])}"  # keys only: leave the row be
    )
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({', '.join(quote(n) for n in columns)}) "
        f"VALUES {values} ON DUPLICATE KEY UPDATE {update}"
    )
    # no_parameters: the driver must not %-format a statement that has no parameters.
    session.connection().exec_driver_sql(statement, execution_options={"no_parameters": True})


def no_backslash_escapes(session: Session) -> bool:
    """Whether this MySQL session's SQL mode reads a backslash in a string as itself."""
    dbapi: Any = session.connection().connection.dbapi_connection
    status = getattr(dbapi, "server_status", None)
    if isinstance(status, int):  # PyMySQL tracks it from every reply
        return bool(status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)
    mode = str(session.execute(text("SELECT @@SESSION.sql_mode")).scalar_one())
    return "NO_BACKSLASH_ESCAPES" in mode.upper().split(",")


def statement_limit(session: Session) -> int:
    """Characters per statement: well under the server's max_allowed_packet (in bytes)."""
    dbapi: Any = session.connection().connection.dbapi_connection
    limit = _STATEMENT_LIMITS.get(dbapi)
    if limit is None:
        packet = int(session.execute(text("SELECT @@max_allowed_packet")).scalar_one())
        packet = min(packet, int(getattr(dbapi, "max_allowed_packet", packet)))
        # Up to 4 bytes per character in utf8mb4.
        limit = _STATEMENT_LIMITS[dbapi] = max(16_384, packet // 4 - 1024)
    return limit


_STATEMENT_LIMITS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Per DBAPI connection: the server's packet limit is asked once per connection."""


def _upsert_staged(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    others: Sequence[str],
    rows: Sequence[Row],
) -> None:
    """PostgreSQL: COPY the rows into a session's staging table, then one INSERT ... SELECT.

    Binding each column as an array cost the client most of a bulk load's time (the
    driver builds array text value by value in Python); COPY's rows are written by the
    driver's C code. The staging table is temporary (it needs the TEMPORARY privilege),
    holds only the job's columns with the target's types as they are in this
    transaction, is emptied after each use and dropped at commit (a rollback undoes
    it too), so it only ever holds the rows of the statement at hand.
    """
    preparer = session.get_bind().dialect.identifier_preparer
    quote = preparer.quote
    target = preparer.format_table(table)
    stage = "pg_temp." + quote(f"etl_stage_{hashlib.sha256(target.encode()).hexdigest()[:16]}")
    names = ", ".join(quote(n) for n in columns)
    connection = session.connection()
    # Made afresh in each transaction: it always has the target's current column types.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
        f"SELECT {names} FROM {target} WITH NO DATA"
    )
    cursor = connection.connection.cursor()
    statement = f"COPY {stage} ({names}) FROM STDIN"
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as error:
        raise _wrapped(connection, error, cursor, statement, None) from error
    finally:
        cursor.close()
    conflict = (
        "DO UPDATE SET " + ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in others)
        if others
        else "DO NOTHING"
    )
    connection.exec_driver_sql(
        f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
        f"ON CONFLICT ({', '.join(quote(n) for n in key)}) {conflict}"
    )
    connection.exec_driver_sql(f"DELETE FROM {stage}")


def count_rows(session: Session, table: Table) -> int:
    """How many rows the table has."""
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
