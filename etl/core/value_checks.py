"""Per-kind value checks behind :func:`etl.core.validate.problem` (beyond strings, floats).

Each says why a value cannot go into a target column of its kind, or None. A value
of a type the check does not cover passes: the database has the last word.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from etl.core.validate import ColumnSpec


def _integer(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, float | Decimal) and value == value and value == int(value):
        value = int(value)  # an integral number (from a database that does not enforce types)
    if not isinstance(value, int):
        return None  # the database decides (and refuses it as a data error)
    low = spec.low if spec.low is not None else -math.inf
    high = spec.high if spec.high is not None else math.inf
    if not low <= value <= high:
        return f"{spec.name} is {value}, out of the target column's range ({spec.low}..{spec.high})"
    return None


def _decimal(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    number = Decimal(value)
    if not number.is_finite():
        return (
            f"{spec.name} is {number}, which the target cannot store" if spec.finite_only else None
        )
    if spec.precision is None:
        return None
    scale = spec.scale or 0
    with localcontext() as context:
        context.prec = max(spec.precision, len(number.as_tuple().digits)) + 50
        if number != number.quantize(Decimal(1).scaleb(-scale)):
            return (
                f"{spec.name} is {number}: more than the target column's {scale} digits "
                "after the point"
            )
        if abs(number) >= Decimal(1).scaleb(spec.precision - scale):
            return (
                f"{spec.name} is {number}, out of the target column's range "
                f"(DECIMAL({spec.precision},{scale}))"
            )
    return None


def _bytes(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, bytes | bytearray | memoryview) and spec.length is not None:
        size = len(bytes(value))
        if size > spec.length:
            return f"{spec.name} is {size} bytes long; the target column holds {spec.length}"
    return None


def _fraction(value: datetime | time | timedelta, spec: ColumnSpec) -> str | None:
    step = 10 ** (6 - min(max(spec.fraction, 0), 6))
    if value.microseconds % step if isinstance(value, timedelta) else value.microsecond % step:
        return (
            f"{spec.name} is {value}: the target column keeps {spec.fraction} "
            "fractional-second digits"
        )
    return None


def _datetime(value: Any, spec: ColumnSpec) -> str | None:
    return _fraction(value, spec) if isinstance(value, datetime | time) else None


def _time(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, timedelta):
        if spec.time_of_day and not timedelta(0) <= value < timedelta(days=1):
            return (
                f"{spec.name} is {_duration(value)}, which the target's time of day "
                "(00:00:00 to 23:59:59.999999) cannot hold"
            )
        if abs(value) >= timedelta(hours=spec.max_hours):
            return (
                f"{spec.name} is {_duration(value)}, out of the target column's range "
                f"(±{spec.max_hours} hours)"
            )
    return _datetime(value, spec) if isinstance(value, time | timedelta) else None


def _duration(value: timedelta) -> str:
    """A duration as a TIME value is written: ``-01:02:03.000004``, ``838:59:59``."""
    sign, rest = ("-", -value) if value < timedelta(0) else ("", value)
    hours, seconds = divmod(rest.days * 86400 + rest.seconds, 3600)
    text = f"{sign}{hours:02d}:{seconds // 60:02d}:{seconds % 60:02d}"
    return text + (f".{rest.microseconds:06d}" if rest.microseconds else "")


def _json(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, str) and not spec.json_values:
        try:
            json.loads(value)
        except ValueError:
            return f"{spec.name} is not valid JSON"
        text = value
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return f"{spec.name} holds a {type(value).__name__}, which JSON cannot hold"
    if spec.forbids_nul and "\\u0000" in text:
        return f"{spec.name} contains a NUL character, which the target cannot store in JSON"
    return None


def _uuid(value: Any, spec: ColumnSpec) -> str | None:
    if isinstance(value, str) and not spec.json_values:
        try:
            UUID(value)
        except ValueError:
            return f"{spec.name} is {value!r}, not a UUID"
    return None


PROBLEMS: dict[str, Callable[[Any, ColumnSpec], str | None]] = {
    "integer": _integer,
    "decimal": _decimal,
    "bytes": _bytes,
    "datetime": _datetime,
    "time": _time,
    "json": _json,
    "uuid": _uuid,
}
