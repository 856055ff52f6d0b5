"""Before the first batch: check both databases, create what is missing, choose the mode.

Everything that can be wrong with the configuration or the databases' shape is found
here, before any row is written, and raised as a one-line ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, Table

from etl.core.diff import ValueEqual, exact, float_equal
from etl.core.validate import ColumnSpec
from etl.engine import schema
from etl.engine.db import connect, display_url
from etl.errors import ConfigError, TableMissing
from etl.job import Job

Mode = Literal["range", "lookup"]

# A 4-byte float keeps ~7 significant digits and MySQL prints only 6 of them.
SINGLE_PRECISION_TOLERANCE = 1e-5
DOUBLE_PRECISION_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Plan:
    """How a job's run will go, decided once from both databases' catalogues."""

    source_table: Table
    target_table: Table
    source_backend: str
    target_backend: str
    mode: Mode
    """``range``: both sides order keys alike, compare key ranges; ``lookup``: look keys up."""
    target_exists: bool
    specs: list[ColumnSpec]
    """What the target can hold, column by column (job column order)."""
    source_specs: list[ColumnSpec] | None
    """What the source can hold, where its database enforces it (not SQLite)."""
    equals: list[ValueEqual]
    """How to compare each non-key column, given the target's precision."""


def make_plan(
    job: Job,
    source: Engine,
    target: Engine,
    *,
    source_name: str | None,
    target_name: str | None,
    create: bool,
) -> Plan:
    """Inspect both sides; create the target table when ``create``; raise ConfigError."""
    source_table = job.table_named(source_name)
    target_table = job.table_named(target_name)
    with connect(source, "source") as connection:
        if not schema.table_exists(connection, source_table.name):
            raise TableMissing("source", source_table.name, display_url(source.url))
        source_order = schema.key_order(connection, source_table.name, job.key)
        # SQLite does not enforce column types: its declared ones promise nothing.
        source_specs = (
            None
            if source_order.backend == "sqlite"
            else schema.column_specs(connection, source_table.name, job.columns)
        )
    with connect(target, "target") as connection:
        exists = schema.table_exists(connection, target_table.name)
        if not exists and create:
            schema.create_table(
                connection, target_table, _collation_for_new_target(connection, source_order)
            )
            connection.commit()
            exists = True
        target_backend = schema.backend_of(connection)
        if exists:
            target_order = schema.key_order(connection, target_table.name, job.key)
            specs = schema.column_specs(connection, target_table.name, job.columns)
        else:
            target_order = source_order  # dry run against a table still to be made
            specs = schema.declared_specs(target_table, job.columns, target_backend)
    mode = _choose_mode(source_order, target_order, target_table.name)
    return Plan(
        source_table=source_table,
        target_table=target_table,
        source_backend=source_order.backend,
        target_backend=target_backend,
        mode=mode,
        target_exists=exists,
        specs=specs,
        source_specs=source_specs,
        equals=[_equality(spec) for spec in specs[len(job.key) :]],
    )


def _collation_for_new_target(target: Connection, source_order: schema.KeyOrder) -> str | None:
    """Keep the source's key order when the target is the same kind of database.

    Then key ranges mean the same thing on both sides. Across kinds, create the keys
    with an exact (binary) collation, which can hold every key any source can hold.
    """
    if schema.backend_of(target) == source_order.backend == "mysql":
        named = {c for c in source_order.collations if c}
        if len(named) == 1:
            return named.pop()
    if schema.backend_of(target) == source_order.backend == "postgresql":
        named = {c for c in source_order.collations if c and not c.startswith("icu:")}
        if len(named) == 1 and not source_order.exact:
            collation = named.pop()
            return None if "." in collation else collation  # a database default, not a name
    return schema.exact_collation(target)


def _choose_mode(source: schema.KeyOrder, target: schema.KeyOrder, table: str) -> Mode:
    if source.agrees_with(target):
        return "range"
    if target.exact:
        return "lookup"
    raise ConfigError(
        f"target table {table!r} keys use collation {_names(target)} but the source's use "
        f"{_names(source)}: they can disagree on which keys are equal. Give the target's key "
        f"columns an exact collation ({_exact_hint(target.backend)}) or the source's"
    )


def _names(order: schema.KeyOrder) -> str:
    return "/".join(sorted({str(c) for c in order.collations}))


def _exact_hint(backend: str) -> str:
    return {
        "mysql": "utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL",
        "postgresql": 'COLLATE "C"',
    }.get(backend, "BINARY")


def _equality(spec: ColumnSpec) -> ValueEqual:
    if spec.kind != "float":
        return exact
    if spec.single_precision:
        return float_equal(SINGLE_PRECISION_TOLERANCE, 1e-37)
    return float_equal(DOUBLE_PRECISION_TOLERANCE, 1e-300)
