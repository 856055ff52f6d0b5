"""What the two databases' tables look like: existence, column limits, key ordering.

The key ordering decides how batches are matched: when both sides order keys the
same way, a key range on the source is the same key range on the target and the
engine compares ranges; otherwise it looks keys up one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.dialects import mysql

from etl.core.validate import ColumnSpec

# Collations that order strings by code point and call two strings equal only when
# they are identical: every database agrees with every other on these.
_EXACT_COLLATIONS = {
    "mysql": ("utf8mb4_nopad_bin", "utf8mb3_nopad_bin", "utf8mb4_0900_bin", "binary"),
    "postgresql": ("C", "POSIX", "ucs_basic", "C.UTF-8", "C.utf8"),
    "sqlite": ("BINARY",),
}


@dataclass(frozen=True)
class KeyOrder:
    """How one side orders and compares its key columns."""

    backend: str
    collations: tuple[str | None, ...]

    @property
    def exact(self) -> bool:
        """True when keys are ordered by code point and equal only when identical."""
        exact = _EXACT_COLLATIONS.get(self.backend, ())
        return all(c is None or c in exact for c in self.collations)

    def agrees_with(self, other: KeyOrder) -> bool:
        """True when a key range means the same set of keys on both sides."""
        return (self.exact and other.exact) or self == other


def backend_of(connection: Connection) -> str:
    """``mysql`` (also for MariaDB), ``postgresql`` or ``sqlite``."""
    name = connection.dialect.name
    return "mysql" if name == "mariadb" else name


def table_exists(connection: Connection, name: str) -> bool:
    """Whether the table exists in the connection's default schema."""
    return inspect(connection).has_table(name)


def key_order(connection: Connection, table: str, key: tuple[str, ...]) -> KeyOrder:
    """The collations of the key columns of an existing table."""
    backend = backend_of(connection)
    found = _COLLATION_QUERIES[backend](connection, table)
    return KeyOrder(backend, tuple(found.get(column) for column in key))


def exact_collation(connection: Connection) -> str | None:
    """The collation to give key columns of a table this tool creates."""
    backend = backend_of(connection)
    if backend == "mysql":
        mariadb = getattr(connection.dialect, "is_mariadb", False)
        return "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
    if backend == "postgresql":
        return "C"
    return None


def create_table(connection: Connection, table: Table, key_collation: str | None) -> None:
    """Create ``table`` with its key columns in ``key_collation`` (no-op if it exists)."""
    copy = table.to_metadata(MetaData())
    if connection.dialect.name in ("mysql", "mariadb"):
        copy.dialect_options["mysql"]["charset"] = "utf8mb4"
    if key_collation:
        for column in copy.primary_key.columns:
            if isinstance(column.type, String):
                column.type = String(column.type.length, collation=key_collation)
    copy.create(connection, checkfirst=True)


def column_specs(connection: Connection, table: str, columns: tuple[str, ...]) -> list[ColumnSpec]:
    """What each column of an existing table can hold, in ``columns`` order."""
    backend = backend_of(connection)
    reflected = {c["name"]: c for c in inspect(connection).get_columns(table)}
    key = set(inspect(connection).get_pk_constraint(table)["constrained_columns"])
    return [_spec(dict(reflected[name]), backend, name in key) for name in columns]


def declared_specs(table: Table, columns: tuple[str, ...], backend: str) -> list[ColumnSpec]:
    """Column specs from the job's own definition, for a target table not created yet."""
    return [
        _spec(
            {"name": n, "type": table.columns[n].type, "nullable": table.columns[n].nullable},
            backend,
            table.columns[n].primary_key,
        )
        for n in columns
    ]


def _spec(column: dict[str, Any], backend: str, in_key: bool) -> ColumnSpec:
    kind = column["type"]
    nullable = bool(column.get("nullable", True)) and not in_key
    if isinstance(kind, String):
        # A SET's length is its longest member, but a value may hold several members.
        length = None if isinstance(kind, mysql.SET) else kind.length
        return ColumnSpec(
            column["name"], "string", nullable, length, forbids_nul=backend == "postgresql"
        )
    if isinstance(kind, Float):
        return ColumnSpec(
            column["name"],
            "float",
            nullable,
            single_precision=_single(kind, backend),
            finite_only=backend == "mysql",
        )
    if isinstance(kind, Integer):
        return ColumnSpec(column["name"], "integer", nullable)
    return ColumnSpec(column["name"], "other", nullable)


def _single(kind: Float[Any], backend: str) -> bool:
    """Whether a float column stores 4-byte floats (MySQL FLOAT, PostgreSQL REAL)."""
    name = type(kind).__name__.upper()
    if backend == "mysql":
        return name == "FLOAT" and (kind.precision is None or kind.precision <= 24)
    if backend == "postgresql":
        return name == "REAL"
    return False


def _mysql_collations(connection: Connection, table: str) -> dict[str, str | None]:
    rows = connection.execute(
        text(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
        ),
        {"table": table},
    )
    return {str(name): collation for name, collation in rows}


def _postgresql_collations(connection: Connection, table: str) -> dict[str, str | None]:
    rows = connection.execute(
        text(
            "SELECT a.attname, CASE WHEN co.collname = 'default' THEN "
            "  (SELECT CASE WHEN d.datlocprovider = 'i' THEN 'icu:' || d.daticulocale "
            "   ELSE d.datcollate END FROM pg_database d WHERE d.datname = current_database()) "
            "ELSE co.collname END "
            "FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation "
            "WHERE a.attrelid = to_regclass(quote_ident(:table)) AND a.attnum > 0"
        ),
        {"table": table},
    )
    return {str(name): collation for name, collation in rows}


def _sqlite_collations(connection: Connection, table: str) -> dict[str, str | None]:
    # SQLite keeps no per-column catalogue of collations; any COLLATE clause in the
    # table's DDL other than BINARY makes us treat the keys as ordered differently.
    ddl = (
        connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
            {"table": table},
        ).scalar_one_or_none()
        or ""
    )
    clause = ddl.upper().replace('"', "")
    custom = "COLLATE" in clause and "COLLATE BINARY" not in clause
    collation = "custom" if custom else "BINARY"
    columns = inspect(connection).get_columns(table)
    return {c["name"]: collation for c in columns}


_COLLATION_QUERIES = {
    "mysql": _mysql_collations,
    "postgresql": _postgresql_collations,
    "sqlite": _sqlite_collations,
}
