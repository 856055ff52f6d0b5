"""Reading and writing rows of a job's table: thin functions on a session, never committing.

Key ranges follow keyset pagination: a batch is every key in ``(lo, hi]`` in the
database's own key order, read through the primary key index, so no query ever scans
from the start of the table and no transaction stays open between batches.

A job's row filter (``where`` in configuration) travels on its source table
(:func:`filtered`): every read here and in :mod:`~etl.engine.checksum` adds
:func:`row_filter` of the table it reads, so no source read can miss it, and the
target's table, which carries none, is read whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    MetaData,
    Select,
    Table,
    TextClause,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from etl.core.diff import Key, Row
from etl.dialects.base import Dialect, wrap_driver_error

# Keys per IN (...) list: keeps statements under SQLite's and PostgreSQL's parameter limits.
_LOOKUP_CHUNK = 5000

_ROW_FILTER = "etl_row_filter"


def filtered(table: Table, condition: ColumnElement[bool] | TextClause | None) -> Table:
    """A copy of ``table`` whose reads here keep only the rows matching ``condition``."""
    if condition is None:
        return table
    copy = table.to_metadata(MetaData())
    copy.info[_ROW_FILTER] = condition
    return copy


def row_filter(table: Table) -> list[ColumnElement[bool] | TextClause]:
    """The table's row filter as ``where`` arguments: none for an unfiltered table."""
    condition = table.info.get(_ROW_FILTER)
    return [] if condition is None else [condition]


def read_page(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    limit: int,
    dialect: Dialect,
) -> list[Row]:
    """The first ``limit`` rows after ``lo`` in key order."""
    query = (
        select(*[table.c[name] for name in columns])
        .where(dialect.after(table, key, lo), *row_filter(table))
        .order_by(*[table.c[name] for name in key])
        .limit(limit)
    )
    return _rows(session, query)


def boundary(
    session: Session, table: Table, key: Sequence[str], lo: Key | None, size: int, dialect: Dialect
) -> Key | None:
    """The ``size``-th key after ``lo``: the end of the next range (None: the rest)."""
    query = (
        select(*[table.c[name] for name in key])
        .where(dialect.after(table, key, lo), *row_filter(table))
        .order_by(*[table.c[name] for name in key])
        .offset(size - 1)
        .limit(1)
    )
    row = session.execute(query).first()
    return tuple(row) if row is not None else None


def read_range(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    hi: Key | None,
    dialect: Dialect,
) -> list[Row]:
    """Every row with a key in ``(lo, hi]``; ``hi`` None means to the end."""
    query = select(*[table.c[name] for name in columns]).where(
        dialect.after(table, key, lo), dialect.up_to(table, key, hi), *row_filter(table)
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
        raise wrap_driver_error(connection, error, cursor, compiled.string, arguments) from error
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


def any_rows(
    session: Session,
    table: Table,
    key: Sequence[str],
    lo: Key | None,
    hi: Key | None,
    dialect: Dialect,
) -> bool:
    """Whether the table has a row with a key in ``(lo, hi]`` (one index probe)."""
    query: Select[Any] = (
        select(literal_column("1"))
        .select_from(table)
        .where(dialect.after(table, key, lo), dialect.up_to(table, key, hi), *row_filter(table))
        .limit(1)
    )
    return session.execute(query).first() is not None


def read_keys(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    keys: Sequence[Key],
    dialect: Dialect,
) -> list[Row]:
    """The rows whose key the database considers equal to one of ``keys``.

    The dialect's :meth:`~etl.dialects.base.Dialect.keys_in` makes it index lookups on
    every database, whatever the number of keys.
    """
    found: list[Row] = []
    for chunk in _chunks(keys, _LOOKUP_CHUNK):
        query = select(*[table.c[name] for name in columns]).where(
            dialect.keys_in(table, key, chunk), *row_filter(table)
        )
        found.extend(tuple(row) for row in session.execute(query))
    return found


def read_null_keys(
    session: Session, table: Table, columns: Sequence[str], key: Sequence[str]
) -> list[Row]:
    """Rows with a NULL key part: keyset pagination can never reach them."""
    query = select(*[table.c[name] for name in columns]).where(
        or_(*[table.c[name].is_(None) for name in key]), *row_filter(table)
    )
    return [tuple(row) for row in session.execute(query)]


def delete_keys(
    session: Session, table: Table, key: Sequence[str], keys: Sequence[Key], dialect: Dialect
) -> None:
    """Delete the rows with these keys (by index lookups, as :func:`read_keys` finds them)."""
    for chunk in _chunks(keys, _LOOKUP_CHUNK):
        session.execute(delete(table).where(dialect.keys_in(table, key, chunk)))


def has_rows(session: Session, table: Table) -> bool:
    """Whether the table holds any row (one index entry read, not a count)."""
    query = select(literal(1)).select_from(table).where(*row_filter(table)).limit(1)
    return session.execute(query).first() is not None


def count_rows(session: Session, table: Table) -> int:
    """How many rows the table has."""
    query = select(func.count()).select_from(table).where(*row_filter(table))
    return int(session.execute(query).scalar_one())


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
