"""MySQL and MariaDB column types: integer widths, text and binary sizes, exact FLOAT reads.

A FLOAT read through the text protocol comes back with six significant digits
(``0.123457`` for the stored ``0.1234567``), so writing it back would change it:
FLOAT columns are read as ``col + 0e0``, a DOUBLE holding the stored 4-byte value
exactly. ``DOUBLE`` reflects with ``asdecimal=True``, which would round to ten digits
after the point: it is read as a float. A SET is read as its text (``'a,b'``), in its
members' order, and a TIME as the signed duration it is.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    String,
    event,
    literal_column,
    text,
    type_coerce,
    types,
)
from sqlalchemy.dialects import mysql

from etl.dialects.mysql_hashing import EXACT_FLOAT_SUFFIX

_WIDTHS = {
    mysql.TINYINT: 8,
    mysql.SMALLINT: 16,
    mysql.MEDIUMINT: 24,
    mysql.INTEGER: 32,
    mysql.BIGINT: 64,
}
_BLOBS: dict[type[Any], int] = {
    mysql.TINYBLOB: 255,
    mysql.MEDIUMBLOB: 2**24 - 1,
    mysql.LONGBLOB: 2**32 - 1,
}
LONGEST_VARCHAR = 1024
"""Longest VARCHAR a created table gets (rows are limited to 64 KB); LONGTEXT beyond."""
LONGEST_VARBINARY = 4096


class ExactFloat(types.TypeDecorator[float]):
    """A MySQL FLOAT read exactly: the server widens it to a DOUBLE before printing it."""

    impl = mysql.FLOAT
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return type_coerce(column, Float()) + literal_column("0e0")

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        """A double as the 4-byte float it becomes: MySQL refuses one a hair beyond the
        largest (PostgreSQL prints that as ``3.4028235e+38``) instead of rounding it."""
        if isinstance(value, float) and math.isfinite(value):
            try:
                rounded: float = struct.unpack("<f", struct.pack("<f", value))[0]
            except OverflowError:
                return value
            return rounded
        return value


class Duration(mysql.TIME):
    """A TIME read as the driver's ``timedelta``: SQLAlchemy's TIME would make it a
    ``datetime.time``, wrapping ``-838:59:59`` and ``100:00:00`` around a day."""

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        return None


class MySQLTypes:
    """The column-type hooks of :class:`~etl.dialects.base.Dialect`, MySQL's way."""

    time_as_duration = True

    def prepare_engine(self, engine: Engine) -> None:
        """Every session in UTC, whatever the server's default: TIMESTAMP values and
        NOW() never depend on where the server runs (DATETIME is stored as given)."""
        event.listen(engine, "connect", _utc_session)

    def exact_operand(self, sql: str, kind: types.TypeEngine[Any]) -> str:
        """A FLOAT hashed as its exact double: its text has six digits, so two different
        values would hash alike."""
        return f"({sql}{EXACT_FLOAT_SUFFIX}" if isinstance(kind, ExactFloat) else sql

    def integer_range(self, kind: types.TypeEngine[Any]) -> tuple[int, int]:
        bits = next((b for cls, b in _WIDTHS.items() if type(kind) is cls), 0)
        if not bits:
            bits = {16: 16, 64: 64}.get(_generic_bits(kind), 32)
        if getattr(kind, "unsigned", False):
            return 0, 2**bits - 1
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def integer_type(self, low: int, high: int) -> types.TypeEngine[Any]:
        for cls, bits in _WIDTHS.items():
            if -(2 ** (bits - 1)) <= low and high <= 2 ** (bits - 1) - 1:
                return cls()
            if low >= 0 and high <= 2**bits - 1:
                return cls(unsigned=True)
        return mysql.DECIMAL(len(str(max(abs(low), high))), 0)

    def float_type(self, single: bool) -> types.TypeEngine[Any]:
        return mysql.FLOAT() if single else mysql.DOUBLE()

    def binary_length(self, kind: types.TypeEngine[Any]) -> int | None:
        if type(kind) in _BLOBS:
            return _BLOBS[type(kind)]
        length: int | None = getattr(kind, "length", None)
        return 65535 if length is None and isinstance(kind, mysql.BLOB) else length

    def fraction_digits(self, kind: types.TypeEngine[Any]) -> int:
        return int(getattr(kind, "fsp", None) or 0)

    def text_type(self, length: int | None, *, fixed: bool) -> types.TypeEngine[Any]:
        if length is None or length > LONGEST_VARCHAR:
            return mysql.LONGTEXT()
        return mysql.CHAR(length) if fixed and length <= 255 else mysql.VARCHAR(length)

    def binary_type(self, length: int | None, *, fixed: bool) -> types.TypeEngine[Any]:
        if length is None or length > LONGEST_VARBINARY:
            return mysql.LONGBLOB()
        return mysql.BINARY(length) if fixed and length <= 255 else mysql.VARBINARY(length)

    def datetime_type(self, *, aware: bool) -> types.TypeEngine[Any]:
        # An aware timestamp is kept as naive UTC (every session's time zone is UTC).
        return mysql.DATETIME(fsp=6)

    def time_type(self) -> types.TypeEngine[Any]:
        return mysql.TIME(fsp=6)

    def json_type(self) -> types.TypeEngine[Any]:
        return mysql.JSON()

    def uuid_type(self) -> types.TypeEngine[Any]:
        return mysql.CHAR(36)

    def read_type(self, stored: types.TypeEngine[Any]) -> types.TypeEngine[Any]:
        if isinstance(stored, types.Float) and _single(stored):
            return ExactFloat()
        if isinstance(stored, types.Float) and stored.asdecimal:
            return mysql.DOUBLE(asdecimal=False)
        if isinstance(stored, mysql.SET):
            return String()
        if isinstance(stored, types.Time):
            return Duration(fsp=getattr(stored, "fsp", None))
        return stored


def mariadb_json_columns(connection: Connection, table: str) -> frozenset[str]:
    """MariaDB's JSON columns: LONGTEXT with a ``json_valid(col)`` check."""
    rows = connection.execute(
        text(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = :table AND LEVEL = 'Column'"
        ),
        {"table": table},
    )
    return frozenset(
        str(name)
        for name, clause in rows
        if str(clause).replace(" ", "") == f"json_valid(`{name}`)"
    )


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET time_zone = '+00:00'")
    finally:
        cursor.close()


def _single(kind: types.Float[Any]) -> bool:
    return type(kind).__name__.upper() == "FLOAT" and (
        kind.precision is None or kind.precision <= 24
    )


def _generic_bits(kind: types.TypeEngine[Any]) -> int:
    if isinstance(kind, types.SmallInteger):
        return 16
    if isinstance(kind, types.BigInteger):
        return 64
    return 32
