"""Before the first batch: check both databases, create what is missing, choose the mode.

Everything that can be wrong with the configuration or the databases' shape is found
here, before any row is written, and raised as a one-line ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, Table

from etl.core.buckets import portable_columns
from etl.core.diff import ValueEqual, exact, float_equal
from etl.core.validate import ColumnSpec
from etl.dialects import Dialect, KeyOrder, RowHashing, common_hashing, dialect_of
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
    source_dialect: Dialect
    target_dialect: Dialect
    mode: Mode
    """``range``: both sides order keys alike, compare key ranges; ``lookup``: look keys up."""
    target_exists: bool
    specs: list[ColumnSpec]
    """What the target can hold, column by column (job column order)."""
    source_specs: list[ColumnSpec] | None
    """What the source can hold, where its database enforces it (not SQLite)."""
    equals: list[ValueEqual]
    """How to compare each non-key column, given the target's precision."""
    hashing: RowHashing | None
    """How the source hashes rows alike with the target for checksums; None: they cannot."""
    target_hashing: RowHashing | None = None
    """The same computation as the target writes it (another object across kinds)."""

    @property
    def copies_text(self) -> bool:
        """Whether the source can write rows as SQL text the target reads unparsed."""
        return self.source_dialect.copies_text_to(self.target_dialect)


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
        source_dialect = dialect_of(connection)
        source_order = source_dialect.key_order(connection, source_table.name, job.key)
        # A database that does not enforce column types promises nothing by them.
        source_specs = (
            schema.column_specs(connection, source_table.name, job.columns)
            if source_dialect.enforces_types
            else None
        )
    with connect(target, "target") as connection:
        exists = schema.table_exists(connection, target_table.name)
        if not exists and create:
            collation = dialect_of(connection).collation_for_new_table(connection, source_order)
            schema.create_table(connection, target_table, collation)
            connection.commit()
            exists = True
        target_dialect = dialect_of(connection)
        if exists:
            target_order = target_dialect.key_order(connection, target_table.name, job.key)
            specs = schema.column_specs(connection, target_table.name, job.columns)
        else:
            target_order = source_order  # dry run against a table still to be made
            specs = schema.declared_specs(target_table, job.columns, target_dialect)
    mode = _choose_mode(source_order, target_order, target_table.name)
    hashings = _hashings(source_dialect, source, target_dialect, target, source_specs, specs)
    return Plan(
        source_table=source_table,
        target_table=target_table,
        source_dialect=source_dialect,
        target_dialect=target_dialect,
        mode=mode,
        target_exists=exists,
        specs=specs,
        source_specs=source_specs,
        equals=[_equality(spec) for spec in specs[len(job.key) :]],
        hashing=hashings[0] if hashings else None,
        target_hashing=hashings[1] if hashings else None,
    )


def _hashings(
    source_dialect: Dialect,
    source: Engine,
    target_dialect: Dialect,
    target: Engine,
    source_specs: list[ColumnSpec] | None,
    specs: list[ColumnSpec],
) -> tuple[RowHashing, RowHashing] | None:
    """The row hashing both servers share; one across kinds only where it is exact."""
    found = common_hashing(source_dialect, source, target_dialect, target)
    if found is not None and found[0].portable and not portable_columns(source_specs, specs):
        return None
    return found


def _choose_mode(source: KeyOrder, target: KeyOrder, table: str) -> Mode:
    if source.agrees_with(target):
        return "range"
    if target.exact:
        return "lookup"
    raise ConfigError(
        f"target table {table!r} keys use collation {target.named()} but the source's use "
        f"{source.named()}: they can disagree on which keys are equal. Give the target's key "
        f"columns an exact collation ({target.dialect.exact_hint}) or the source's"
    )


def _equality(spec: ColumnSpec) -> ValueEqual:
    if spec.kind != "float":
        return exact
    if spec.single_precision:
        return float_equal(SINGLE_PRECISION_TOLERANCE, 1e-37)
    return float_equal(DOUBLE_PRECISION_TOLERANCE, 1e-300)
