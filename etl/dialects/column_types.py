"""The column-type hooks every dialect has: generic SQLAlchemy types, overridden per database.

See :mod:`etl.dialects.columns` for how they are used: row checks, the types of a
table this tool creates, and the conversions between two drivers' values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy import (
    CHAR,
    JSON,
    REAL,
    BigInteger,
    Connection,
    DateTime,
    Double,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
)
from sqlalchemy.types import TypeEngine

from etl.dialects import columns

if TYPE_CHECKING:
    from etl.dialects.base import Dialect


class ColumnTypes:
    """Generic column types; a database's mixin (``MySQLTypes``...) overrides its own."""

    time_as_duration: ClassVar[bool] = False
    """True where TIME is a signed duration (MySQL's, read as ``timedelta``)."""
    keeps_time_zones: ClassVar[bool] = False
    """True where a timestamp column can hold an instant with its zone (aware values)."""

    def integer_range(self, kind: TypeEngine[Any]) -> tuple[int, int]:
        """Smallest and largest value of an integer column."""
        return columns.INTEGER_RANGES[columns.integer_bits(kind)]

    def binary_length(self, kind: TypeEngine[Any]) -> int | None:
        """Longest value of a binary column in bytes (None: no limit)."""
        length: int | None = getattr(kind, "length", None)
        return length

    def fraction_digits(self, kind: TypeEngine[Any]) -> int:
        """Fractional-second digits a datetime or time column keeps."""
        return 6

    def target_type(self, source: TypeEngine[Any], from_dialect: Any) -> TypeEngine[Any] | None:
        """The type a source column gets in a table this tool creates; None: no mapping."""
        return columns.generic_target_type(cast("Dialect", self), source, from_dialect)

    def integer_type(self, low: int, high: int) -> TypeEngine[Any]:
        """The narrowest integer type holding ``low..high``."""
        for kind in (SmallInteger(), Integer(), BigInteger()):
            kind_low, kind_high = columns.INTEGER_RANGES[columns.integer_bits(kind)]
            if kind_low <= low and high <= kind_high:
                return kind
        return Numeric(len(str(max(abs(low), high))), 0)

    def float_type(self, single: bool) -> TypeEngine[Any]:
        """A 4-byte float type, or an 8-byte one."""
        return REAL() if single else Double()

    def text_type(self, length: int | None, *, fixed: bool) -> TypeEngine[Any]:
        """A text type for up to ``length`` characters (None: any length)."""
        if length is None:
            return Text()
        return CHAR(length) if fixed else String(length)

    def binary_type(self, length: int | None, *, fixed: bool) -> TypeEngine[Any]:
        """A binary type for up to ``length`` bytes (None: any length)."""
        return LargeBinary()

    def datetime_type(self, *, aware: bool) -> TypeEngine[Any]:
        """A timestamp with microseconds; ``aware``: one that keeps the instant's zone."""
        return DateTime(timezone=aware)

    def time_type(self) -> TypeEngine[Any]:
        """A time with microseconds."""
        return Time()

    def json_type(self) -> TypeEngine[Any]:
        """A JSON type."""
        return JSON()

    def uuid_type(self) -> TypeEngine[Any]:
        """A UUID column (text where the database has no UUID type)."""
        return CHAR(36)

    def json_columns(self, connection: Connection, table: str) -> frozenset[str]:
        """Text columns that hold JSON by a constraint (MariaDB's JSON is LONGTEXT)."""
        return frozenset()

    def read_type(self, stored: TypeEngine[Any]) -> TypeEngine[Any]:
        """A column's type as the engine reads and writes it (exact where printing is not)."""
        return stored

    def bridged(
        self, source: TypeEngine[Any], from_dialect: Any, stored: TypeEngine[Any]
    ) -> TypeEngine[Any]:
        """A target column's type, converting between the source's and this driver's values."""
        return columns.bridged(source, from_dialect, stored, cast("Dialect", self))

    def exact_operand(self, sql: str, kind: TypeEngine[Any]) -> str:
        """A column (``sql``, quoted) as hashes and text copies see it: text that tells
        values apart."""
        return sql
