"""Keys and rows as text: for checkpoints, reject records and log lines.

Keys may hold any column type (integers, strings, dates, times, decimals, bytes), and
a checkpoint must give back exactly the key it was given, so JSON values that JSON
has no type for are tagged (``{"date": "2024-02-29"}``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from etl.core.diff import Key


def encode_key(key: Key) -> str:
    """A key as JSON text; values JSON has no type for are tagged with theirs."""
    return json.dumps([tagged(value) for value in key], ensure_ascii=False)


def decode_key(text: str) -> Key:
    """The inverse of :func:`encode_key`: values come back with the types they went in with."""
    return tuple(untagged(value) for value in json.loads(text))


def shown(key: Sequence[Any] | None) -> list[Any] | None:
    """A key for log lines and messages: JSON-friendly values, readable."""
    if key is None:
        return None
    return [readable(value) for value in key]


def encode_row(columns: Sequence[str], row: Sequence[Any]) -> str:
    """A raw row as JSON, keeping values JSON cannot hold readable as text."""
    return json.dumps(
        {name: readable(value) for name, value in zip(columns, row, strict=True)},
        ensure_ascii=False,
        default=str,
    )


def readable(value: Any) -> Any:
    """A value as a person reads it in JSON: dates in ISO form, bytes as hex."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Decimal | UUID | timedelta):
        return str(value)
    return value


def tagged(value: Any) -> Any:
    """A value JSON can hold exactly: itself, or its text under its type's name."""
    # datetime before date: a datetime is a date too.
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, time):
        return {"time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, UUID):
        return {"uuid": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    return value


def untagged(value: Any) -> Any:
    """The inverse of :func:`tagged`."""
    if not isinstance(value, dict):
        return value
    (kind, text), *_ = value.items()
    if kind == "datetime":
        return datetime.fromisoformat(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "time":
        return time.fromisoformat(text)
    if kind == "timedelta":
        return timedelta(days=text[0], seconds=text[1], microseconds=text[2])
    if kind == "decimal":
        return Decimal(text)
    if kind == "uuid":
        return UUID(text)
    if kind == "bytes":
        return base64.b64decode(text)
    if kind == "float":
        return float(text)
    raise ValueError(f"unknown tagged value {value!r}")
