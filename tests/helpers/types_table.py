"""The type matrix: one wide table per database with every column type, and its edge rows.

:func:`column_type` names each column's type in each database (the source's native
types; for a pre-created target, what a person would choose there). :func:`rows` are
the edge values a source of that kind can hold; :func:`rejected` says, independently
of the tool, which rows a target cannot hold and why.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from tests.helpers.support import Backend

INTEGERS = {
    "i8": (-(2**7), 2**7 - 1),
    "u8": (0, 2**8 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "u16": (0, 2**16 - 1),
    "i24": (-(2**23), 2**23 - 1),
    "u24": (0, 2**24 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "u32": (0, 2**32 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u64": (0, 2**64 - 1),
}
MYSQL_INTEGERS: dict[str, TypeEngine[Any]] = {
    "i8": mysql.TINYINT(),
    "u8": mysql.TINYINT(unsigned=True),
    "i16": mysql.SMALLINT(),
    "u16": mysql.SMALLINT(unsigned=True),
    "i24": mysql.MEDIUMINT(),
    "u24": mysql.MEDIUMINT(unsigned=True),
    "i32": mysql.INTEGER(),
    "u32": mysql.INTEGER(unsigned=True),
    "i64": mysql.BIGINT(),
    "u64": mysql.BIGINT(unsigned=True),
}
PG_INTEGERS: dict[str, TypeEngine[Any]] = {
    "i8": SmallInteger(),
    "u8": SmallInteger(),
    "i16": SmallInteger(),
    "u16": Integer(),
    "i24": Integer(),
    "u24": Integer(),
    "i32": Integer(),
    "u32": BigInteger(),
    "i64": BigInteger(),
    "u64": Numeric(20, 0),
}
SOURCE_COLUMNS: dict[Backend, tuple[str, ...]] = {
    "mariadb": (
        *INTEGERS,
        "dec",
        "dec38",
        "f32",
        "f64",
        "d",
        "t",
        "dt",
        "ts",
        "bo",
        "e",
        "st",
        "c",
        "v",
        "txt",
        "bin",
        "vb",
        "blob",
        "j",
        "u",
    ),
    "postgresql": (
        "i16",
        "i32",
        "i64",
        "dec",
        "dec38",
        "f32",
        "f64",
        "d",
        "t",
        "dt",
        "ts",
        "bo",
        "c",
        "v",
        "txt",
        "vb",
        "blob",
        "j",
        "u",
    ),
    "sqlite": (
        *("i32", "i64", "dec", "f64", "d", "t", "dt", "bo"),
        *("c", "v", "txt", "vb", "blob", "j"),
    ),
}


def column_type(backend: Backend, name: str) -> TypeEngine[Any]:
    """The column's type in this database."""
    if name in INTEGERS:
        if backend == "mariadb":
            return MYSQL_INTEGERS[name]
        return PG_INTEGERS[name] if backend == "postgresql" else BigInteger()
    mine: dict[str, TypeEngine[Any]] = {
        "dec": Numeric(20, 6),
        "dec38": Numeric(38, 10),
        "d": Date(),
        "bo": Boolean(),
        "c": String(10) if backend == "sqlite" else CHAR(10),
        "v": String(200),
    }
    if name in mine:
        return mine[name]
    if backend == "mariadb":
        return {
            "f32": mysql.FLOAT(),
            "f64": mysql.DOUBLE(),
            "t": mysql.TIME(fsp=6),
            "dt": mysql.DATETIME(fsp=6),
            "ts": mysql.TIMESTAMP(fsp=6),
            "e": mysql.ENUM("a", "b", "ü"),
            "st": mysql.SET("x", "y", "z"),
            "txt": mysql.LONGTEXT(),
            "bin": mysql.BINARY(4),
            "vb": mysql.VARBINARY(64),
            "blob": mysql.LONGBLOB(),
            "j": mysql.JSON(none_as_null=True),
            "u": mysql.CHAR(36),
        }[name]
    if backend == "postgresql":
        return {
            "f32": postgresql.REAL(),
            "f64": postgresql.DOUBLE_PRECISION(),
            "t": postgresql.TIME(precision=6),
            "dt": postgresql.TIMESTAMP(precision=6),
            "ts": postgresql.TIMESTAMP(timezone=True, precision=6),
            "e": String(10),
            "st": String(20),
            "txt": Text(),
            "bin": postgresql.BYTEA(),
            "vb": postgresql.BYTEA(),
            "blob": postgresql.BYTEA(),
            "j": postgresql.JSONB(none_as_null=True),
            "u": postgresql.UUID(as_uuid=True),
        }[name]
    return {
        "f32": Float(),
        "f64": Float(),
        "t": Time(),
        "dt": DateTime(),
        "ts": DateTime(),
        "e": String(10),
        "st": String(20),
        "txt": Text(),
        "bin": LargeBinary(),
        "vb": LargeBinary(),
        "blob": LargeBinary(),
        "j": JSON(none_as_null=True),
        "u": Uuid(),
    }[name]


def wide_table(backend: Backend, columns: tuple[str, ...], name: str = "types") -> Table:
    """The wide table as ``backend`` has it: ``id`` BIGINT key, then ``columns``."""
    return Table(
        name,
        MetaData(),
        Column("id", BigInteger(), primary_key=True, autoincrement=False),
        *[Column(column, column_type(backend, column)) for column in columns],
    )


F32_MAX = 3.4028234663852886e38
F32_TINY = 1.401298464324817e-45  # the smallest subnormal
BIG_TEXT = "é😀\\'" * 25_000  # 100 000 characters, 4-byte ones among them


def rows(backend: Backend) -> list[dict[str, Any]]:
    """Edge rows for a source of this kind (only values its columns can hold)."""
    columns = SOURCE_COLUMNS[backend]
    low = {n: INTEGERS[n][0] for n in INTEGERS}
    high = {n: INTEGERS[n][1] for n in INTEGERS}
    if backend != "mariadb":  # no unsigned columns: their values as they fit
        low.update(u8=0, u16=0, u24=0, u32=0, u64=0)
    if backend == "sqlite":
        high.update(u64=2**63 - 1)
    if backend == "sqlite":
        decimals = [Decimal("0.1"), Decimal("-12345.678901"), Decimal("123456789.123456")]
    else:
        decimals = [
            Decimal("0.1"),
            Decimal("-99999999999999.999999"),
            Decimal("12345678901234.000001"),
        ]
    aware = backend == "postgresql"
    found: list[dict[str, Any]] = [
        {"id": 1},  # NULL everywhere
        {
            "id": 2,
            **{n: low[n] for n in INTEGERS},
            "dec": decimals[1],
            "dec38": Decimal("-9999999999999999999999999999.9999999999"),
            "f32": -F32_MAX,
            "f64": -1.7976931348623157e308,
            "d": date(1000, 1, 1),
            "t": timedelta(0) if backend == "mariadb" else time(0, 0),
            "dt": naive(1000, 1, 1, 0, 0, 0),
            "ts": _ts(naive(1970, 1, 2, 0, 0, 0, 1), aware),
            "bo": False,
            "e": "a",
            "st": "",
            "c": "",
            "v": "",
            "txt": "",
            "bin": b"\x00\x00\x00\x00",
            "vb": b"",
            "blob": b"",
            "j": [],
            "u": _uuid(backend, "00000000-0000-0000-0000-000000000000"),
        },
        {
            "id": 3,
            **{n: high[n] for n in INTEGERS},
            "dec": decimals[2],
            "dec38": Decimal("9999999999999999999999999999.9999999999"),
            "f32": F32_MAX,
            "f64": 1.7976931348623157e308,
            "d": date(9999, 12, 31),
            "t": timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)
            if backend == "mariadb"
            else time(23, 59, 59, 999999),
            "dt": naive(9999, 12, 31, 23, 59, 59, 999999),
            "ts": _ts(naive(2038, 1, 19, 3, 14, 7, 999999), aware),
            "bo": True,
            "e": "ü",
            "st": "x,z",
            "c": "😀ü\\'\"",
            "v": "😀" * 200,
            "txt": BIG_TEXT,
            "bin": b"\x5c\x00\x5c\xff",
            "vb": bytes(range(64)),
            "blob": bytes(range(256)) * 400,
            "j": {"a": 1, "b": [1, 2.5, "é😀"], "n": None, "t": True, "s": "\\'\""},
            "u": _uuid(backend, "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        },
        {
            "id": 4,
            "i64": 0,
            "dec": decimals[0],
            "dec38": Decimal("0.0000000001"),
            "f32": 0.1,
            "f64": 0.1,
            "d": date(2024, 2, 29),
            "t": timedelta(microseconds=1) if backend == "mariadb" else time(0, 0, 0, 1),
            "dt": naive(2024, 2, 29, 12, 0, 0, 1),
            "ts": _ts(naive(2024, 2, 29, 23, 59, 59, 999999), aware),
            "c": " lead",
            "v": "back\\slash 'quote' \"dq\" %s %% ?",
            "txt": "line\nbreak\r\ttab\x1a",
            "vb": b"\x00",
            "blob": b"\x5c",
            "j": "just a string",
            "u": _uuid(backend, "123E4567-E89B-12D3-A456-426614174000"),  # upper case text
        },
        {
            "id": 5,
            "f32": 0.1234567,
            "f64": 0.30000000000000004,
            "dt": naive(2024, 11, 3, 1, 30, 0),  # ambiguous in US time zones
            "ts": _ts(naive(2024, 10, 27, 2, 30, 0), aware),  # ambiguous in Europe
            "v": "0",
            "txt": " ",
            "vb": b"\x00\x5c\xff'\"",
            "j": 123.5,
        },
        {
            "id": 6,
            "f32": F32_TINY,
            "f64": 5e-324,
            "dt": naive(2024, 3, 31, 2, 30, 0),  # does not exist in Europe
            "j": {"nested": {"x": [True, False, None]}, "emoji": "😀"},
        },
    ]
    if aware:
        found.append(
            {"id": 7, "ts": datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5.5)))}
        )
    if backend == "mariadb":  # a duration, and a NUL, PostgreSQL cannot hold
        found.append({"id": 8, "t": -timedelta(hours=838, minutes=59, seconds=59)})
        found.append({"id": 9, "t": timedelta(hours=100, microseconds=1)})
    if backend != "postgresql":
        found.append({"id": 10, "v": "nul\x00inside"})
    if backend == "postgresql":  # non-finite floats MariaDB cannot hold
        found.append({"id": 11, "f64": math.nan, "f32": math.inf})
    if backend == "sqlite":
        for row in found:  # SQLite's floats are all doubles
            row.pop("f32", None)
    return [{n: row.get(n) for n in ("id", *columns)} for row in found]


def rejected(source: Backend, target: Backend, row: dict[str, Any]) -> str | None:
    """Why ``target`` cannot hold ``row`` (None: it can): what the tool must report."""
    if target == "postgresql":
        for name in ("c", "v", "txt"):
            if isinstance(row.get(name), str) and "\x00" in row[name]:
                return f"{name} contains a NUL character"
        t = row.get("t")
        if isinstance(t, timedelta) and not timedelta(0) <= t < timedelta(days=1):
            return "t is"
    if target == "mariadb":
        for name in ("f32", "f64"):
            value = row.get(name)
            if isinstance(value, float) and not math.isfinite(value):
                return f"{name} is {value}"
    return None


def normalised(name: str, value: Any) -> Any:
    """A value as the test compares it: each database's Python type made one."""
    if value is None:
        return None
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if name == "f32":
        return "nan" if math.isnan(value) else struct.unpack("<f", struct.pack("<f", value))[0]
    if name == "f64":
        return "nan" if math.isnan(value) else float(value)
    if name == "t" and isinstance(value, time):
        seconds = value.hour * 3600 + value.minute * 60 + value.second
        return timedelta(seconds=seconds, microseconds=value.microsecond)
    if name == "ts" and isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if name == "j":  # read as text (CAST): SQL NULL is None, JSON null is 'null'
        return json.dumps(json.loads(value), sort_keys=True)
    if name == "u":
        found = uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value))
        return str(found)
    if name in INTEGERS or name == "bo":
        return int(value)
    if name in ("dec", "dec38"):
        return Decimal(value)
    if name == "st" and isinstance(value, set):
        return ",".join(sorted(value))
    if name == "c" and isinstance(value, str):
        return value.rstrip(" ")  # CHAR pads (PostgreSQL) or strips (MySQL) trailing spaces
    return value


def naive(*parts: int) -> datetime:
    """A naive datetime (a wall-clock value, as DATETIME and TIMESTAMP WITHOUT TIME ZONE hold)."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)  # type: ignore[misc]


def _ts(value: datetime, aware: bool) -> datetime:
    return value.replace(tzinfo=UTC) if aware else value


def _uuid(backend: Backend, text: str) -> Any:
    return uuid.UUID(text) if backend != "mariadb" else text
