"""What the two databases' tables look like: existence, column limits, key ordering.

The key ordering decides how batches are matched: when both sides order keys the
same way, a key range on the source is the same key range on the target and the
engine compares ranges; otherwise it looks keys up one batch at a time. Everything a
database does its own way here is asked of its dialect.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import JSON, Connection, Float, MetaData, String, Table, inspect
from sqlalchemy.types import TypeEngine

from etl.core.validate import ColumnSpec
from etl.dialects import Dialect, dialect_of
from etl.errors import ConfigError


def table_exists(connection: Connection, name: str) -> bool:
    """Whether the table exists in the connection's default schema."""
    return inspect(connection).has_table(name)


def create_table(connection: Connection, table: Table, key_collation: str | None) -> None:
    """Create ``table`` with its key columns in ``key_collation`` (no-op if it exists)."""
    copy = table.to_metadata(MetaData())
    dialect_of(connection).prepare_new_table(copy)
    if key_collation:
        for column in copy.primary_key.columns:
            if isinstance(column.type, String):
                column.type = String(column.type.length, collation=key_collation)
    copy.create(connection, checkfirst=True)


def column_specs(connection: Connection, table: str, columns: Sequence[str]) -> list[ColumnSpec]:
    """What each column of an existing table can hold, in ``columns`` order."""
    dialect = dialect_of(connection)
    reflected = {c["name"]: c for c in inspect(connection).get_columns(table)}
    key = set(inspect(connection).get_pk_constraint(table)["constrained_columns"])
    specs = [
        dialect.column_spec(
            name,
            reflected[name]["type"],
            bool(reflected[name].get("nullable", True)) and name not in key,
        )
        for name in columns
    ]
    json = dialect.json_columns(connection, table)
    return [replace(spec, kind="json") if spec.name in json else spec for spec in specs]


def declared_specs(table: Table, columns: Sequence[str], dialect: Dialect) -> list[ColumnSpec]:
    """Column specs from the job's own definition, for a target table not created yet."""
    return [
        dialect.column_spec(
            name,
            table.columns[name].type,
            bool(table.columns[name].nullable) and not table.columns[name].primary_key,
        )
        for name in columns
    ]


def mapped_table(
    table: Table,
    source: Dialect,
    target: Dialect,
    job: str,
    json: Collection[str] = (),
    single: Collection[str] = (),
) -> Table:
    """``table`` (the source's definition) with each column's type as ``target`` has it.

    ``json`` names text columns the source holds JSON in (MariaDB's JSON): they get
    the target's JSON type; ``single`` names float columns the source stores in 4 bytes
    (a job's generic ``Float`` says nothing of that): they get the target's 4-byte
    float. ConfigError naming the job, the column and the type when the target has no
    type for it.
    """
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        kind = JSON() if column.name in json and not isinstance(column.type, JSON) else column.type
        mapped = (
            target.float_type(True)
            if column.name in single and isinstance(kind, Float)
            else target.target_type(kind, source)
        )
        if mapped is None:
            raise ConfigError(
                f"job {job}: column {column.name}: no {type(target).__name__} type for the "
                f"source's {column.type!r}; create the target table yourself"
            )
        column.type = mapped
    return copy


def stored_types(connection: Connection, table: str) -> dict[str, TypeEngine[Any]]:
    """Each column's type as the database reports it."""
    return {str(c["name"]): c["type"] for c in inspect(connection).get_columns(table)}


def with_types(table: Table, kinds: Mapping[str, TypeEngine[Any]]) -> Table:
    """A copy of ``table`` (same name) whose columns have these types."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if column.name in kinds:
            column.type = kinds[column.name]
    return copy
