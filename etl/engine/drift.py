"""Schema drift, before the first batch: the source's and the target's columns now,
against the job's shape.

``freeze`` (the default) refuses a run whose columns changed, naming them; ``evolve``
follows the source: a new source column is added to the target as nullable
(``ALTER TABLE … ADD COLUMN``, its type rendered by the target's database as a created
table's would be) and synced; a dropped one is no longer read (the target keeps it). A
target column outside the job is fine when an insert may leave it out (nullable, a
default, generated); generated target columns are never written.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog
from sqlalchemy import Column as SqlColumn
from sqlalchemy import Connection, MetaData, Table, inspect, text
from sqlalchemy.schema import CreateColumn

from etl.config import DriftPolicy
from etl.core.drift import Column, SourceDrift, retyped, source_drift, target_gap
from etl.core.validate import ColumnSpec
from etl.engine.reflect import portable, reflect_table
from etl.errors import ConfigError
from etl.job import Job

log = structlog.get_logger("etl.drift")


def current_source(job: Job, connection: Connection, table: str, policy: DriftPolicy) -> Job:
    """The job as the source table is now; ConfigError under ``freeze`` when it moved."""
    now = catalogue(connection, table)
    dialect = connection.dialect
    shape = [
        Column(c.name, _spelled(c.type, dialect) if job.reflected else "")
        for c in job.table.columns
    ]
    drift = source_drift(shape, now, follows_source=job.follows_source, excluded=job.excluded)
    if not drift:
        return job
    if policy == "freeze" or not job.reflected:
        raise ConfigError(_refusal(job, table, drift, reflected=job.reflected))
    log.warning("schema_drift", job=job.name, table=table, policy=policy, drift=drift.describe())
    columns = None if job.follows_source else [c for c in job.columns if c not in drift.dropped]
    fresh = reflect_table(
        connection, job.name, table, key=job.key, columns=columns, exclude=job.excluded or None
    )
    return dataclasses.replace(job, table=fresh)


def current_target(
    job: Job,
    connection: Connection,
    table: Table,
    policy: DriftPolicy,
    *,
    alter: bool,
    source_columns: list[str],
) -> Job:
    """The job's columns the target can take; adds missing ones under ``evolve`` when ``alter``."""
    found = catalogue(connection, table.name)
    gap = target_gap(job.columns, job.key, found)
    where = f"job {job.name!r}: target table {table.name!r}"
    only_target = [c.name for c in found if c.name not in source_columns and not c.generated]
    if only_target:  # dropped from the source, or the target's own: NULL in new rows
        log.info("target_only_columns", job=job.name, table=table.name, columns=only_target)
    if gap.blocking:
        raise ConfigError(
            f"{where} has NOT NULL column(s) {', '.join(gap.blocking)} with no default that "
            "the source does not fill: make them nullable or give them a default"
        )
    keys = [name for name in gap.missing if name in job.key]
    if keys:
        raise ConfigError(f"{where} lacks key column(s) {', '.join(keys)}: recreate it")
    if gap.missing:
        if policy == "freeze":
            raise ConfigError(
                f"{where} lacks column(s) {', '.join(gap.missing)} of source table "
                f'{job.table.name!r} (schema_drift = "freeze"): add them to the target, or set '
                f'schema_drift = "evolve" under [jobs.{job.name.partition(".")[0]}] to add them '
                "as nullable columns"
            )
        if not alter:
            raise ConfigError(
                f"{where} lacks column(s) {', '.join(gap.missing)}: a real run would add them "
                '(schema_drift = "evolve"); a dry run or verify changes no table'
            )
        add_columns(connection, table, gap.missing)
    if gap.generated:
        log.info("generated_columns_skipped", job=job.name, columns=gap.generated)
        kept = [
            SqlColumn(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in job.table.columns
            if c.name not in gap.generated
        ]
        job = dataclasses.replace(job, table=Table(job.table.name, MetaData(), *kept))
    return job


def require_columns(job: Job, connection: Connection, table: Table) -> None:
    """ConfigError naming the job's columns the target table lacks, if any."""
    have = {column["name"] for column in inspect(connection).get_columns(table.name)}
    missing = [name for name in job.columns if name not in have]
    if missing:
        raise ConfigError(
            f"job {job.name!r}: target table {table.name!r} lacks column(s) "
            f'{", ".join(missing)}: run the job first (schema_drift = "evolve" adds them)'
        )


def check_types(
    job: Job,
    source: list[ColumnSpec] | None,
    target: list[ColumnSpec],
    policy: DriftPolicy,
    table: str,
) -> None:
    """Refuse (``freeze``) or report a column whose kind of value differs between the sides.

    A source string longer than the target column holds is reported only: such rows are
    set aside as rejects, as they always were.
    """
    changed = retyped(source, target)
    if changed.narrower:
        log.warning("schema_drift", job=job.name, table=table, narrower=changed.narrower)
    if not changed.kinds:
        return
    kinds = {spec.name: spec.kind for spec in source or ()}
    described = ", ".join(
        f"{name} ({kinds[name]} in the source, {spec.kind} in the target)"
        for spec in target
        if (name := spec.name) in changed.kinds
    )
    if policy == "freeze":
        raise ConfigError(
            f"job {job.name!r}: column(s) {described} of target table {table!r} changed "
            'type: alter the target column to match, or set schema_drift = "evolve" to '
            "sync anyway (rows the target cannot hold are set aside)"
        )
    log.warning("schema_drift", job=job.name, table=table, retyped=changed.kinds)


def add_columns(connection: Connection, table: Table, names: list[str]) -> None:
    """``ALTER TABLE … ADD COLUMN`` each of ``names`` as nullable, typed for the target."""
    shaped = portable(table, connection.dialect)
    preparer = connection.dialect.identifier_preparer
    for name in names:
        column = shaped.c[name]._copy()
        column.nullable, column.primary_key = True, False
        spec = CreateColumn(column).compile(dialect=connection.dialect)
        connection.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}"))
        log.warning("target_column_added", table=table.name, column=name)
    connection.commit()


def catalogue(connection: Connection, table: str) -> list[Column]:
    """A table's columns as :mod:`etl.core.drift` compares them."""
    found = []
    for column in inspect(connection).get_columns(table):
        generated = bool(column.get("computed"))
        optional = (
            bool(column.get("nullable", True))
            or column.get("default") is not None
            or generated
            or bool(column.get("autoincrement") is True)
        )
        found.append(
            Column(
                column["name"], _spelled(column["type"], connection.dialect), optional, generated
            )
        )
    return found


def _spelled(kind: Any, dialect: Any) -> str:
    try:
        return str(kind.compile(dialect=dialect))
    except Exception:  # a type this database cannot render: compare by class
        return type(kind).__name__


def _refusal(job: Job, table: str, drift: SourceDrift, *, reflected: bool) -> str:
    section = job.name.partition(".")[0]
    how = (
        f'update the target to match and restart, or set schema_drift = "evolve" under '
        f"[jobs.{section}] to follow the source"
        if reflected
        else f"update job {job.name!r}'s table definition to match"
    )
    return f"job {job.name!r}: source table {table!r} changed ({drift.describe()}): {how}"
