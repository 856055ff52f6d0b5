"""The types a table this tool creates gets on each database, from another database's types."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Enum, LargeBinary, String, Text, Time, Uuid
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from etl.dialects import MARIADB, POSTGRESQL, SQLITE, Dialect


def compiled(kind: TypeEngine[Any], dialect: Dialect) -> str:
    sa_dialect = {
        MARIADB: mysql.dialect(),
        POSTGRESQL: postgresql.dialect(),
    }[dialect]
    return kind.compile(dialect=sa_dialect)


@pytest.mark.parametrize(
    ("source", "source_dialect", "target", "expected"),
    [
        (mysql.BIGINT(unsigned=True), MARIADB, POSTGRESQL, "NUMERIC(20, 0)"),
        (mysql.INTEGER(unsigned=True), MARIADB, POSTGRESQL, "BIGINT"),
        (mysql.TINYINT(), MARIADB, POSTGRESQL, "SMALLINT"),
        (mysql.MEDIUMINT(unsigned=True), MARIADB, POSTGRESQL, "INTEGER"),
        (mysql.JSON(), MARIADB, POSTGRESQL, "JSONB"),
        (mysql.LONGBLOB(), MARIADB, POSTGRESQL, "BYTEA"),
        (mysql.FLOAT(), MARIADB, POSTGRESQL, "REAL"),
        (mysql.DOUBLE(), MARIADB, POSTGRESQL, "DOUBLE PRECISION"),
        (mysql.ENUM("a", "bcd"), MARIADB, POSTGRESQL, "VARCHAR(3)"),
        (mysql.SET("x", "yy"), MARIADB, POSTGRESQL, "VARCHAR(5)"),
        (mysql.CHAR(36), MARIADB, POSTGRESQL, "VARCHAR(36)"),
        (mysql.TIME(fsp=6), MARIADB, POSTGRESQL, "TIME WITHOUT TIME ZONE"),
        (postgresql.UUID(), POSTGRESQL, MARIADB, "CHAR(36)"),
        (postgresql.JSONB(), POSTGRESQL, MARIADB, "JSON"),
        (postgresql.BYTEA(), POSTGRESQL, MARIADB, "LONGBLOB"),
        (Boolean(), POSTGRESQL, MARIADB, "BOOL"),
        (postgresql.REAL(), POSTGRESQL, MARIADB, "FLOAT"),
        (postgresql.TIMESTAMP(timezone=True), POSTGRESQL, MARIADB, "DATETIME(6)"),
        (Time(), POSTGRESQL, MARIADB, "TIME(6)"),
        (Text(), POSTGRESQL, MARIADB, "LONGTEXT"),
        (String(5000), POSTGRESQL, MARIADB, "LONGTEXT"),
        (String(20), SQLITE, MARIADB, "VARCHAR(20)"),
        (LargeBinary(), SQLITE, MARIADB, "LONGBLOB"),
        (JSON(), SQLITE, POSTGRESQL, "JSONB"),
        (Uuid(), SQLITE, POSTGRESQL, "UUID"),
        (Enum("a", "b", name="ab"), POSTGRESQL, MARIADB, "VARCHAR(1)"),
    ],
)
def test_created_targets_get_the_nearest_exact_type(
    source: TypeEngine[Any], source_dialect: Dialect, target: Dialect, expected: str
) -> None:
    mapped = target.target_type(source, source_dialect)
    assert mapped is not None
    assert compiled(mapped, target) == expected


def test_one_kind_of_database_keeps_its_own_types() -> None:
    kind = mysql.MEDIUMINT(unsigned=True)
    assert MARIADB.target_type(kind, MARIADB) is kind
