"""Jobs with no Python: a configured table reflected from the source into a :class:`Job`.

The job's table keeps the source's own column types (its reads convert values as the
source's driver means them); a target table made from it gets types the target's
database understands (:func:`portable`). Defaults, sequences and generated columns
are not copied: generated columns are left out of the job, the target computes its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.engine import Dialect as SqlDialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from etl.config import JobSettings
from etl.core.tables import choose_columns
from etl.engine.cursors import cursor_of
from etl.engine.db import describe_error, display_url
from etl.errors import ConfigError
from etl.job import Job

DEFAULT_SCHEDULE = "*/15 * * * *"
"""The daemon's schedule for a configured job that sets none (as for ``students``)."""


def reflect_job(
    name: str, table: str, settings: JobSettings, connection: Connection, *, shared: bool = False
) -> Job:
    """The job ``name`` syncing source table ``table`` as ``settings`` say; ConfigError if not.

    ``shared``: the settings are a ``tables`` section's, for many tables, so ``exclude``
    may name columns this one does not have.
    """
    exclude = settings.exclude
    if shared and exclude:
        have = {column["name"] for column in inspect(connection).get_columns(table)}
        exclude = tuple(name for name in exclude if name in have)
    built = reflect_table(
        connection,
        name,
        table,
        key=settings.key,
        columns=settings.columns,
        exclude=exclude,
    )
    # Colons escaped: a filter is SQL, not a statement with :named parameters.
    source_filter = text(settings.where.replace(":", "\\:")) if settings.where else None
    if source_filter is not None:
        _check_filter(connection, name, built, settings.where or "")
    job = Job(
        name=name,
        table=built,
        description=f"table {table} (from configuration)",
        batch_size=settings.batch_size,
        delete_policy=settings.delete_policy or "propagate",
        schedule=DEFAULT_SCHEDULE,
        source_filter=source_filter,
        reflected=True,
        follows_source=settings.columns is None,
        excluded=tuple(exclude or ()),
        cursor_column=settings.cursor,
    )
    if settings.cursor:
        cursor_of(job)  # a cursor that cannot page is a start-up error
    return job


def with_section_rules(job: Job, settings: JobSettings, connection: Connection | None) -> Job:
    """A Python job with its section's ``where`` (on top of its own filter),
    ``delete_policy`` and ``cursor``; the filter is tried on the source when
    ``connection`` is given."""
    rules: dict[str, Any] = {}
    if settings.cursor:
        rules["cursor_column"] = settings.cursor
    if settings.delete_policy is not None:
        rules["delete_policy"] = settings.delete_policy
    if settings.where:
        if connection is not None:
            table = job.table_named(settings.source_table)
            _check_filter(connection, job.name, table, settings.where)
        where = text(settings.where.replace(":", "\\:"))
        own = job.source_filter
        rules["source_filter"] = where if own is None else and_(own, where)
    if not rules:
        return job
    ruled = dataclasses.replace(job, **rules)
    if settings.cursor:
        cursor_of(ruled)
    return ruled


def reflect_table(
    connection: Connection,
    job: str,
    table: str,
    *,
    key: Sequence[str] | None,
    columns: Sequence[str] | None,
    exclude: Sequence[str] | None,
) -> Table:
    """The source table's chosen columns as a new Table (key as its primary key)."""
    inspector = inspect(connection)
    if not inspector.has_table(table):
        raise ConfigError(
            f"job {job!r}: source table {table!r} does not exist in "
            f"{display_url(connection.engine.url)}"
        )
    reflected = {c["name"]: c for c in inspector.get_columns(table) if not c.get("computed")}
    primary = inspector.get_pk_constraint(table).get("constrained_columns") or []
    chosen_key, chosen = choose_columns(
        job, table, list(reflected), primary, key=key, columns=columns, exclude=exclude
    )
    return Table(
        table,
        MetaData(),
        *[
            Column(
                name,
                reflected[name]["type"],
                primary_key=name in chosen_key,
                nullable=name not in chosen_key and bool(reflected[name].get("nullable", True)),
                autoincrement=False,
            )
            for name in chosen
        ],
    )


def _check_filter(connection: Connection, job: str, table: Table, where: str) -> None:
    """Run the filter once on no rows, so bad SQL is a start-up error naming the job."""
    probe = select(literal(1)).select_from(table).where(text(where)).limit(0)
    try:
        connection.execute(probe).all()
    except DBAPIError as error:
        connection.rollback()
        raise ConfigError(
            f"job {job!r}: where {where!r} does not work on source table {table.name!r}: "
            f"{describe_error(error)}"
        ) from None


def portable(table: Table, dialect: SqlDialect, source: SqlDialect | None = None) -> Table:
    """``table`` with every type of another database made generic, for ``dialect``.

    A MySQL ``TINYINT`` or a PostgreSQL ``JSONB`` means nothing to another database:
    such types become their generic kind (``Integer``, ``JSON``), which each
    database renders its own way; a collation from another database (``source``) is
    dropped. Types of the same database (the same SQLAlchemy dialect package), and
    generic ones, stay.
    """
    home = _package(type(dialect))
    other = source is not None and _package(type(source)) != home
    if not any(_foreign(c.type, home, other) for c in table.columns):
        return table
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if _foreign(column.type, home, other):
            column.type = _generic(column.type)
    return copy


def _foreign(kind: TypeEngine[Any], home: str, other_database: bool) -> bool:
    package = _package(type(kind))
    if package.startswith("sqlalchemy.dialects.") and package != home:
        return True
    return other_database and bool(getattr(kind, "collation", None))


def _package(cls: type[Any]) -> str:
    """``sqlalchemy.dialects.<database>`` for a dialect's class or type; else its module."""
    return ".".join(cls.__module__.split(".")[:3])


def _generic(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    try:
        generic = kind.as_generic()
    except NotImplementedError:
        generic = kind
    if isinstance(generic, String) and generic.collation:
        generic = generic.copy()
        generic.collation = None
    return generic
