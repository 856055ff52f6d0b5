"""Before the first batch: check both databases, create what is missing, choose the mode.

Everything that can be wrong with the configuration or the databases' shape is found
here, before any row is written, and raised as a one-line ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import Engine, Table

from etl.config import DriftPolicy
from etl.core.buckets import portable_columns
from etl.core.diff import ValueEqual
from etl.core.equality import equality, json_equal
from etl.core.mapping import lossy
from etl.core.validate import ColumnSpec
from etl.dialects import Dialect, KeyOrder, RowHashing, common_hashing, dialect_of
from etl.engine import drift, schema
from etl.engine.db import connect, display_url
from etl.engine.store import filtered
from etl.errors import ConfigError, TableMissing
from etl.job import Job

Mode = Literal["range", "lookup"]


@dataclass(frozen=True)
class Plan:
    """How a job's run will go, decided once from both databases' catalogues."""

    job: Job
    """The job as both tables are now (schema drift followed under ``evolve``)."""
    source_table: Table
    """Carries the job's row filter, if any (:func:`etl.engine.store.filtered`)."""
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
    source_utf8: frozenset[str] = frozenset()
    """Source text columns stored as UTF-8 bytes, which a hash across kinds need not convert."""
    target_utf8: frozenset[str] = frozenset()
    """The same of the target's columns."""

    @property
    def copies_text(self) -> bool:
        """Whether the source can write rows as SQL text the target reads unparsed.

        Not for a job with a row filter: the dialects' text reads know no filter.
        """
        if self.job.source_filter is not None:
            return False
        return self.source_dialect.copies_text_to(self.target_dialect)


def make_plan(
    job: Job,
    source: Engine,
    target: Engine,
    *,
    source_name: str | None,
    target_name: str | None,
    create: bool,
    schema_drift: DriftPolicy | None = None,
) -> Plan:
    """Inspect both sides; create the target table when ``create``; raise ConfigError.

    With ``schema_drift``, the source's and the target's columns are compared with the
    job's first (:mod:`etl.engine.drift`); without, the job's columns are taken as they are.
    """
    source_table = job.table_named(source_name)
    with connect(source, "source") as connection:
        if not schema.table_exists(connection, source_table.name):
            raise TableMissing("source", source_table.name, display_url(source.url))
        source_columns: list[str] = []
        if schema_drift is not None:
            job = drift.current_source(job, connection, source_table.name, schema_drift)
            source_table = job.table_named(source_name)
            source_columns = [c.name for c in drift.catalogue(connection, source_table.name)]
        source_table = filtered(source_table, job.source_filter)
        source_dialect = dialect_of(connection)
        source_collations = source_dialect.key_collations(connection, source_table.name)
        source_order = source_dialect.key_order(source_collations, job.key)
        # A database that does not enforce column types promises nothing by them.
        source_specs = (
            schema.column_specs(connection, source_table.name, job.columns)
            if source_dialect.enforces_types
            else None
        )
    with connect(target, "target") as connection:
        target_dialect = dialect_of(connection)
        json = {spec.name for spec in source_specs or () if spec.kind == "json"}
        single = {s.name for s in source_specs or () if s.kind == "float" and s.single_precision}
        target_table = job.table_named(target_name)
        definition = schema.mapped_table(
            target_table, source_dialect, target_dialect, job.name, json, single
        )
        exists = schema.table_exists(connection, target_table.name)
        if exists and schema_drift is not None:
            job = drift.current_target(
                job,
                connection,
                definition,
                schema_drift,
                alter=create,
                source_columns=source_columns,
            )
            target_table = job.table_named(target_name)
            definition = schema.mapped_table(
                target_table, source_dialect, target_dialect, job.name, json, single
            )
            source_table = filtered(job.table_named(source_name), job.source_filter)
            if source_specs is not None:  # generated target columns are no longer the job's
                source_specs = [spec for spec in source_specs if spec.name in job.columns]
        elif exists:  # no drift policy (verify): still a one-line error, not a KeyError
            drift.require_columns(job, connection, definition)
        if not exists and create:
            collation = target_dialect.collation_for_new_table(connection, source_order)
            schema.create_table(connection, definition, collation)
            connection.commit()
            exists = True
        if exists:
            target_collations = target_dialect.key_collations(connection, target_table.name)
            target_order = target_dialect.key_order(target_collations, job.key)
            specs = schema.column_specs(connection, target_table.name, job.columns)
            stored = schema.stored_types(connection, target_table.name)
        else:
            target_order = source_order  # dry run against a table still to be made
            target_collations = {}
            specs = schema.declared_specs(definition, job.columns, target_dialect)
            stored = {column.name: column.type for column in definition.columns}
    declared = schema.declared_specs(source_table, job.columns, source_dialect)
    # Values that cannot go across at all first; then kinds that changed (drift policy).
    _refuse_lossy(job, source_table, source_specs or declared, stored, specs)
    if exists and schema_drift is not None:
        drift.check_types(job, source_specs, specs, schema_drift, target_table.name)
    # Values of a JSON source column arrive parsed: a str there is a JSON string.
    specs = [
        replace(spec, json_values=True) if source.kind == "json" else spec
        for source, spec in zip(declared, specs, strict=True)
    ]
    declared = [replace(spec, kind="json") if spec.name in json else spec for spec in declared]
    mode = _choose_mode(source_order, target_order, target_table.name)
    hashings = _hashings(source_dialect, source, target_dialect, target, source_specs, specs)
    return Plan(
        job=job,
        source_table=schema.with_types(
            source_table,
            {c.name: source_dialect.read_type(c.type) for c in source_table.columns},
        ),
        target_table=schema.with_types(
            target_table,
            {
                name: target_dialect.bridged(
                    source_table.c[name].type, source_dialect, stored[name]
                )
                for name in job.columns
            },
        ),
        source_dialect=source_dialect,
        target_dialect=target_dialect,
        mode=mode,
        target_exists=exists,
        specs=specs,
        source_specs=source_specs,
        equals=[
            _equality(source_spec, spec)
            for source_spec, spec in zip(
                declared[len(job.key) :], specs[len(job.key) :], strict=True
            )
        ],
        hashing=hashings[0] if hashings else None,
        target_hashing=hashings[1] if hashings else None,
        source_utf8=source_dialect.utf8_columns(source_collations),
        target_utf8=target_dialect.utf8_columns(target_collations),
    )


def _refuse_lossy(
    job: Job,
    source_table: Table,
    sources: list[ColumnSpec],
    stored: dict[str, Any],
    targets: list[ColumnSpec],
) -> None:
    """ConfigError for the first column whose values cannot go into the target exactly."""
    for source_spec, spec in zip(sources, targets, strict=True):
        reason = lossy(source_spec, spec)
        if reason:
            raise ConfigError(
                f"job {job.name}: column {spec.name}: source type "
                f"{source_table.c[spec.name].type!r} into target type {stored[spec.name]!r} "
                f"would lose data ({reason})"
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


def _equality(source: ColumnSpec, target: ColumnSpec) -> ValueEqual:
    """Exact to what the target stores; JSON by value when either side is JSON."""
    if "json" in (source.kind, target.kind):
        return json_equal
    return equality(
        target.kind,
        single_precision=target.single_precision,
        padded=target.padded or source.padded,
    )
