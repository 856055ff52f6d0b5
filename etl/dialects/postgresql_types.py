"""PostgreSQL column types for tables this tool creates: JSONB, BYTEA, UUID, REAL.

No unsigned integers: a range beyond BIGINT (MySQL's BIGINT UNSIGNED) is NUMERIC(20).
``time`` holds a time of day only, so MySQL's TIME durations below zero or from 24
hours are rejected row by row. Timestamps keep six fractional digits by default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, types
from sqlalchemy.dialects import postgresql


class PostgreSQLTypes:
    """The column-type hooks of :class:`~etl.dialects.base.Dialect`, PostgreSQL's way."""

    keeps_time_zones = True

    def exact_operand(self, sql: str, kind: types.TypeEngine[Any]) -> str:
        """A float as its double: a REAL then prints as a MySQL FLOAT's exact double does,
        so cross-kind row hashes agree (``::float8`` is no change to a double)."""
        return f"({sql})::float8" if isinstance(kind, types.Float) else sql

    def prepare_engine(self, engine: Engine) -> None:
        """Every session in UTC: ``timestamptz`` values read (and print, for checksums)
        in UTC, whatever the server's or the role's default; floats printed exactly."""
        event.listen(engine, "connect", _utc_session)

    def integer_type(self, low: int, high: int) -> types.TypeEngine[Any]:
        for cls, bits in ((postgresql.SMALLINT, 16), (postgresql.INTEGER, 32)):
            if -(2 ** (bits - 1)) <= low and high < 2 ** (bits - 1):
                return cls()
        if low >= -(2**63) and high < 2**63:
            return postgresql.BIGINT()
        return postgresql.NUMERIC(len(str(max(abs(low), high))), 0)

    def float_type(self, single: bool) -> types.TypeEngine[Any]:
        return postgresql.REAL() if single else postgresql.DOUBLE_PRECISION()

    def fraction_digits(self, kind: types.TypeEngine[Any]) -> int:
        precision = getattr(kind, "precision", None)
        return 6 if precision is None else int(precision)

    def binary_type(self, length: int | None, *, fixed: bool) -> types.TypeEngine[Any]:
        return postgresql.BYTEA()

    def json_type(self) -> types.TypeEngine[Any]:
        return postgresql.JSONB()

    def uuid_type(self) -> types.TypeEngine[Any]:
        return postgresql.UUID(as_uuid=True)


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        # Floats printed exactly (shortest round trip) and dates as ISO text, whatever
        # the role's defaults: reads and row hashes both go through that text. One
        # round trip for the three.
        dbapi_connection.execute(
            "SET TIME ZONE 'UTC'; SET extra_float_digits = 3; SET DateStyle = 'ISO, YMD'"
        )
    finally:
        dbapi_connection.autocommit = autocommit
