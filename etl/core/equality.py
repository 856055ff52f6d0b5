"""How two values of one column compare, exactly to what the target column stores.

A comparison that calls two different stored values equal would hide a change; one
that calls equal values different rewrites the row on every run. So each kind gets
its own: a 4-byte float compares as the 4-byte float it is stored as, NaN equals NaN
(a database holds it as one value), decimals compare by value (1.50 is 1.5), and JSON
compares by value (a reformatting, a key order or ``1e2`` for ``100`` is not a change),
and so do UUIDs (letter case is not a change).
"""

from __future__ import annotations

import json
import math
import struct
from decimal import Decimal
from typing import Any
from uuid import UUID

from etl.core.diff import ValueEqual, exact


def single_equal(a: Any, b: Any) -> bool:
    """Equal as 4-byte floats (MySQL FLOAT, PostgreSQL REAL): what the column stores."""
    if a is None or b is None:
        return a is b
    x, y = _single(a), _single(b)
    return x == y or (math.isnan(x) and math.isnan(y))


def double_equal(a: Any, b: Any) -> bool:
    """Equal as doubles; NaN equals NaN."""
    if a is None or b is None:
        return a is b
    x, y = float(a), float(b)
    return x == y or (math.isnan(x) and math.isnan(y))


def decimal_equal(a: Any, b: Any) -> bool:
    """Equal by value (``1.50`` is ``1.5``); NaN equals NaN."""
    if a is None or b is None:
        return a is b
    if isinstance(a, Decimal) and isinstance(b, Decimal) and a.is_nan() and b.is_nan():
        return True
    return bool(a == b)


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values; text is parsed first (either side may hold JSON as text)."""
    if a is None or b is None:
        return a is b
    try:
        return _same(_parsed(a), _parsed(b))
    except ValueError:
        return bool(a == b)


def uuid_equal(a: Any, b: Any) -> bool:
    """Equal as UUIDs: a UUID column keeps no letter case (``ABC…`` text reads back ``abc…``)."""
    if a is None or b is None:
        return a is b
    try:
        return _uuid(a) == _uuid(b)
    except (ValueError, TypeError):
        return bool(a == b)


def padded_equal(a: Any, b: Any) -> bool:
    """Equal as CHAR values: trailing spaces aside."""
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip(" ") == b.rstrip(" ")
    return bool(a == b)


def equality(kind: str, *, single_precision: bool = False, padded: bool = False) -> ValueEqual:
    """The comparison for a column of this kind (the target's, or JSON on either side)."""
    if kind == "string" and padded:
        return padded_equal
    if kind == "float":
        return single_equal if single_precision else double_equal
    if kind == "decimal":
        return decimal_equal
    if kind == "json":
        return json_equal
    if kind == "uuid":
        return uuid_equal
    return exact


def _uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, bytes | bytearray):
        return UUID(bytes=bytes(value))
    return UUID(str(value))


def _single(value: Any) -> float:
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return number
    try:
        rounded: float = struct.unpack("<f", struct.pack("<f", number))[0]
    except OverflowError:  # beyond a 4-byte float's range: compare as it is
        return number
    return rounded


def _parsed(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode()
    if isinstance(value, str):
        return json.loads(value, parse_float=Decimal)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)
