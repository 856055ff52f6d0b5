"""Column types across databases: what a column can hold, what a missing target column
becomes, and how values travel between two drivers' Python types.

Three things each dialect answers through :class:`~etl.dialects.base.Dialect`:

- :func:`kind_spec`: a column type as the row checks see it (integer range, decimal
  digits, bytes, fractional seconds, time of day or duration, JSON, UUID);
- :func:`generic_target_type`: the type a column of another database's type gets in a
  table this tool creates (each dialect overrides where it has its own types);
- :func:`bridged`: the target column's type as the engine reads and writes it, a
  :class:`Bridge` converting between the source's Python values and the target's
  where the drivers differ (UUID objects and text, JSON values and text, MySQL's TIME
  durations and ``datetime.time``, aware and naive UTC timestamps).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import types
from sqlalchemy.engine import Dialect as SQLAlchemyDialect

from etl.core.validate import ColumnSpec

if TYPE_CHECKING:
    from etl.dialects.base import Dialect

Convert = Callable[[Any], Any]

INTEGER_RANGES = {16: (-(2**15), 2**15 - 1), 32: (-(2**31), 2**31 - 1), 64: (-(2**63), 2**63 - 1)}


class Bridge(types.TypeDecorator[Any]):
    """A target column's stored type, with the source's Python values going in and out."""

    impl: Any = types.NullType
    cache_ok = True

    def __init__(
        self, stored: types.TypeEngine[Any], to_target: Convert | None, to_source: Convert | None
    ) -> None:
        super().__init__()
        self.impl = stored
        self.stored = stored
        self.to_target = to_target
        self.to_source = to_source

    def load_dialect_impl(self, dialect: SQLAlchemyDialect) -> types.TypeEngine[Any]:
        return self.stored

    def process_bind_param(self, value: Any, dialect: SQLAlchemyDialect) -> Any:
        if value is None or self.to_target is None:
            return value
        return self.to_target(value)

    def process_result_value(self, value: Any, dialect: SQLAlchemyDialect) -> Any:
        if value is None or self.to_source is None:
            return value
        try:
            return self.to_source(value)
        except (TypeError, ValueError):
            return value  # a value the target should not hold: compares unequal, rewritten


def kind_spec(
    dialect: Dialect, name: str, kind: types.TypeEngine[Any], nullable: bool
) -> ColumnSpec | None:
    """The spec of a column of the kinds beyond strings and floats; None: not one of them."""
    if isinstance(kind, types.Boolean):
        return ColumnSpec(name, "boolean", nullable)
    if isinstance(kind, types.Integer):
        low, high = dialect.integer_range(kind)
        return ColumnSpec(name, "integer", nullable, low=low, high=high)
    if isinstance(kind, types.Numeric):  # after Float, a Numeric too
        return ColumnSpec(
            name,
            "decimal",
            nullable,
            precision=kind.precision,
            scale=kind.scale,
            finite_only=dialect.floats_finite_only,
        )
    if isinstance(kind, types._Binary):
        return ColumnSpec(name, "bytes", nullable, dialect.binary_length(kind))
    if isinstance(kind, types.DateTime):
        return ColumnSpec(name, "datetime", nullable, fraction=dialect.fraction_digits(kind))
    if isinstance(kind, types.Date):
        return ColumnSpec(name, "date", nullable)
    if isinstance(kind, types.Time):
        return ColumnSpec(
            name,
            "time",
            nullable,
            fraction=dialect.fraction_digits(kind),
            time_of_day=not dialect.time_as_duration,
        )
    if isinstance(kind, types.JSON):
        return ColumnSpec(name, "json", nullable, forbids_nul=dialect.forbids_nul)
    if isinstance(kind, types.Uuid):
        return ColumnSpec(name, "uuid", nullable)
    return None


def integer_bits(kind: types.TypeEngine[Any]) -> int:
    """Bits of a generic integer type."""
    if isinstance(kind, types.SmallInteger):
        return 16
    if isinstance(kind, types.BigInteger):
        return 64
    return 32


def generic_target_type(
    target: Dialect, source: types.TypeEngine[Any], from_dialect: Dialect
) -> types.TypeEngine[Any] | None:
    """What a source column's type becomes in a table this tool creates; None: unknown.

    A TypeDecorator is the job's own portable type: it renders and converts itself.
    """
    if target.same_kind(from_dialect) or isinstance(source, types.TypeDecorator):
        return source
    if isinstance(source, types.Boolean):
        return types.Boolean()
    if isinstance(source, types.Integer):
        return target.integer_type(*from_dialect.integer_range(source))
    if isinstance(source, types.Float):
        return target.float_type(from_dialect.single_precision(source))
    if isinstance(source, types.Numeric):
        return types.Numeric(source.precision, source.scale, asdecimal=True)
    if isinstance(source, types.Enum):
        return types.String(max((len(e) for e in source.enums), default=1))
    if isinstance(source, types.String) and hasattr(source, "values"):  # MySQL SET
        members: tuple[str, ...] = source.values
        return types.String(max(sum(len(m) + 1 for m in members), 1))
    if isinstance(source, types.String):
        # Never CHAR across databases: one pads trailing spaces (PostgreSQL), another
        # strips them (MySQL), and the values would never compare equal again.
        return target.text_type(from_dialect.string_length(source), fixed=False)
    if isinstance(source, types._Binary):
        length = from_dialect.binary_length(source)
        return target.binary_type(length, fixed=isinstance(source, types.BINARY))
    if isinstance(source, types.DateTime):
        return target.datetime_type(aware=bool(source.timezone) and from_dialect.keeps_time_zones)
    if isinstance(source, types.Date):
        return types.Date()
    if isinstance(source, types.Time):
        return target.time_type()
    if isinstance(source, types.JSON):
        return target.json_type()
    if isinstance(source, types.Uuid):
        return target.uuid_type()
    return None


def bridged(
    source: types.TypeEngine[Any],
    from_dialect: Dialect,
    stored: types.TypeEngine[Any],
    target: Dialect,
) -> types.TypeEngine[Any]:
    """The target column's type as the engine uses it: ``stored``, bridged where needed."""
    if isinstance(source, types.TypeDecorator):
        return source  # the job's own type converts values on every database
    read = target.read_type(stored)
    if isinstance(read, types.JSON) and not read.none_as_null:
        nullable = copy.copy(read)
        nullable.none_as_null = True  # a NULL stays NULL, not the JSON value null
        read = nullable
    to_target, to_source = _conversions(source, from_dialect, stored, target)
    if to_target is None and to_source is None:
        return read
    return Bridge(read, to_target, to_source)


def _conversions(
    source: types.TypeEngine[Any],
    from_dialect: Dialect,
    stored: types.TypeEngine[Any],
    target: Dialect,
) -> tuple[Convert | None, Convert | None]:
    if isinstance(source, types.Uuid) and not isinstance(stored, types.Uuid):
        return (_text, UUID) if isinstance(stored, types.String) else (_uuid_bytes, _uuid_of)
    if isinstance(stored, types.Uuid) and not isinstance(source, types.Uuid):
        return None, _text  # UUIDs kept as text in the source (CHAR(36)), lower case
    if isinstance(source, types.JSON) and not isinstance(stored, types.JSON):
        return _json_text, json.loads
    if isinstance(stored, types.JSON) and not isinstance(source, types.JSON):
        return _json_value, _json_text
    if isinstance(source, types.Time) and isinstance(stored, types.Time):
        if from_dialect.time_as_duration and not target.time_as_duration:
            return _time_of_day, _duration
        if target.time_as_duration and not from_dialect.time_as_duration:
            return None, _time_of_day
    if isinstance(source, types.DateTime) and isinstance(stored, types.DateTime):
        aware = bool(source.timezone) and from_dialect.keeps_time_zones
        stored_aware = bool(stored.timezone) and target.keeps_time_zones
        if aware and not stored_aware:
            return _naive_utc, _aware_utc
        if stored_aware and not aware:
            return _aware_utc, _naive_utc
    return None, None


def _text(value: Any) -> str:
    return str(value)


def _uuid_bytes(value: Any) -> Any:
    return value.bytes if isinstance(value, UUID) else value


def _uuid_of(value: Any) -> UUID:
    return UUID(bytes=bytes(value)) if isinstance(value, bytes | bytearray) else UUID(str(value))


def _json_text(value: Any) -> Any:
    """A JSON value (parsed: a str is a JSON string) as JSON text."""
    return json.dumps(value, ensure_ascii=False)


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _time_of_day(value: Any) -> Any:
    """A duration from midnight as a time of day (only ever one the row checks let by)."""
    if isinstance(value, timedelta):
        if not timedelta(0) <= value < timedelta(days=1):
            raise ValueError(f"{value} is not a time of day")
        return (datetime.min.replace(tzinfo=UTC) + value).time()
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, time):
        return timedelta(
            hours=value.hour,
            minutes=value.minute,
            seconds=value.second,
            microseconds=value.microsecond,
        )
    return value


def _naive_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _aware_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value
