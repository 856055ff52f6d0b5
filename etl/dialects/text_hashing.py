"""A row hashing MySQL/MariaDB and PostgreSQL compute alike: SHA-256 of a normalised text.

Each kind prints values its own way, so their own hashings never compare. This one
hashes the text both print alike for the column kinds it is used for (the plan checks
them: strings, integers, floats, dates, decimals of one scale): each value as its UTF-8
bytes with every '#' doubled, NULL as '#0', joined by '#,' (:data:`~etl.core.lines.SEPARATOR`:
a prefix code, so no two rows print alike); integers as decimal text and floats as each
server prints them (a number's text holds no '#'), exponents written MySQL's way. One
``REPLACE`` a value costs both servers less than a byte length would (MariaDB's SHA-256
sum of 1M rows 2.5 s -> 1.8 s, PostgreSQL's serialization 1.1 s -> 0.8 s). A float
printed otherwise on each side (``1e20`` against ``1e+20``) only sends its row to the
comparison the sync makes anyway. Equal texts are equal values as the sync reads them:
the drivers read the same text the servers hash.

The same serialization of the key, hashed, names a key; its bucket hashes the key's
values joined by '#' alone (no lengths: a bucket only has to hold the same exact keys on
both sides, whatever order each side keeps them in, and two keys sharing one is fine).

SHA-256, not MD5: MariaDB's ``MD5`` costs about six times its ``SHA2`` per row (0.26 s
against 0.05 s for 300,000 short rows), PostgreSQL's ``sha256`` about what its ``md5``
does. A MySQL column stored as UTF-8 (:func:`~etl.dialects.types.is_utf8`) is hashed as it
is; any other is converted to utf8mb4 first.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from etl.core.lines import NULL_TEXT as NULL
from etl.core.lines import SEPARATOR_TEXT as SEPARATOR
from etl.dialects.mysql_hashing import mysql_lines, prepare_mysql_lines
from etl.dialects.types import KEY_HASH_DIGITS, Quote, is_number, is_utf8

NAME = "text-sha256"
FLOAT8_SUFFIX = ")::float8"
"""How PostgreSQL's exact float operand ends (``PostgreSQLTypes.exact_operand``)."""


class MySQLTextHashing:
    """The MySQL/MariaDB side: ``SHA2`` prints its digest as lowercase hex."""

    name = NAME
    portable = True

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"SUBSTRING({_mysql_sha(quote, key)}, 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"SUBSTRING({_mysql_sha(quote, columns)}, 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        digits = f"SUBSTRING({_mysql_sha(quote, columns)}, 1, 15)"
        return [f"CAST(CONV({digits}, 16, 10) AS UNSIGNED)"]

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        plain = "CONCAT_WS('#', " + ", ".join(_mysql_value(quote(n)) for n in key) + ")"
        digest = f"CAST(CONV(SUBSTRING(SHA2({plain}, 256), 1, 8), 16, 10) AS UNSIGNED)"
        return f"{digest} MOD {int(buckets)}"

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"GROUP_CONCAT(CONCAT({key_hash}, ':', {row_hash}) SEPARATOR ',')"

    def prepare_tokens(self, session: Session) -> None:
        session.execute(text("SET SESSION group_concat_max_len = @@max_allowed_packet"))

    def table_checksum(self, table: str) -> str | None:
        return None

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return []

    def lines(self, quote: Quote, columns: Sequence[str], limit: int) -> str | None:
        return mysql_lines(_mysql(quote, columns))

    def prepare_lines(self, session: Session, limit: int) -> int | None:
        return prepare_mysql_lines(session, limit)


class PostgreSQLTextHashing:
    """The PostgreSQL side (a UTF8 database: its text is the bytes MySQL's utf8mb4 has)."""

    name = NAME
    portable = True

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"substr({_postgresql_hex(quote, key, 8)}, 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"substr({_postgresql_hex(quote, columns, 8)}, 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        digits = f"substr({_postgresql_hex(quote, columns, 8)}, 1, 15)"
        return [f"('x' || {digits})::bit(60)::bigint"]

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        values = ", ".join(_postgresql_value(quote(n)) for n in key)
        plain = f"(concat_ws('#', {values}) COLLATE \"C\")"
        digest = f"sha256(convert_to({plain}, getdatabaseencoding()))"
        return (
            f"mod(('x' || encode(substr({digest}, 1, 4), 'hex'))::bit(32)::bigint, {int(buckets)})"
        )

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"string_agg({key_hash} || ':' || {row_hash}, ',')"

    def prepare_tokens(self, session: Session) -> None:
        """Nothing: string_agg has no length limit short of 1 GB."""

    def table_checksum(self, table: str) -> str | None:
        return None

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return []

    def lines(self, quote: Quote, columns: Sequence[str], limit: int) -> str | None:
        """The escaped lines as UTF-8 bytes, NULL past ``limit`` bytes: the client never
        receives more."""
        serialized = _postgresql(quote, columns)
        escaped = (
            f"replace(replace({serialized}, chr(92), chr(92) || chr(92)), chr(10), chr(92) || 'n')"
        )
        # The same aggregate twice is computed once. Outside a UTF8 database, lengths
        # and bytes would not be UTF-8's: no lines.
        joined = f"string_agg({escaped}, chr(10))"
        fits = f"getdatabaseencoding() = 'UTF8' AND octet_length({joined}) <= {int(limit)}"
        return f"CASE WHEN {fits} THEN convert_to({joined}, 'UTF8') END"

    def prepare_lines(self, session: Session, limit: int) -> int | None:
        """Nothing: the aggregate itself says NULL past the limit, and never cuts."""
        return None


MYSQL_TEXT = MySQLTextHashing()
POSTGRESQL_TEXT = PostgreSQLTextHashing()


def _mysql_sha(quote: Quote, columns: Sequence[str]) -> str:
    """The SHA-256 of the columns' normalised text, as 64 hex digits."""
    return f"SHA2({_mysql(quote, columns)}, 256)"


def _mysql(quote: Quote, columns: Sequence[str]) -> str:
    """Each value as utf8mb4 bytes (whatever the column's character set), '#' doubled;
    a number as its text alone."""
    parts = ", ".join(_mysql_part(quote(name)) for name in columns)
    return f"CONCAT_WS('{SEPARATOR}', {parts})"


def _mysql_part(operand: str) -> str:
    value = _mysql_value(operand)
    if is_number(operand):
        return f"IFNULL({value}, '{NULL}')"
    return f"IFNULL(REPLACE({value}, '#', '##'), '{NULL}')"


def _mysql_value(operand: str) -> str:
    """A value's bytes as both kinds print it: a number's text, a string's UTF-8."""
    if is_number(operand):
        return f"CAST({operand} AS BINARY)"
    utf8 = operand if is_utf8(operand) else f"CONVERT({operand} USING utf8mb4)"
    return f"CAST({utf8} AS BINARY)"


def _postgresql_hex(quote: Quote, columns: Sequence[str], size: int) -> str:
    """The first ``size`` bytes of the SHA-256 of the columns' normalised text, in hex.

    ``convert_to`` in the database's own encoding gives the text's bytes as they are
    (UTF-8 in a UTF8 database; in another, bytes MySQL's never equal outside ASCII,
    which only sends rows to the comparison); only the bytes kept become hex digits.
    """
    digest = f"sha256(convert_to({_postgresql(quote, columns)}, getdatabaseencoding()))"
    return f"encode(substr({digest}, 1, {int(size)}), 'hex')"


def _postgresql(quote: Quote, columns: Sequence[str]) -> str:
    """Each value as its output text: what the driver reads (``::text`` would trim a CHAR),
    '#' doubled; a number as its text alone."""
    parts = ", ".join(_postgresql_part(quote(name)) for name in columns)
    return f"(concat_ws('{SEPARATOR}', {parts}) COLLATE \"C\")"


def _postgresql_part(operand: str) -> str:
    if is_number(operand):
        return f"coalesce({_postgresql_value(operand)}, '{NULL}')"
    doubled = f"replace(concat({operand}), '#', '##')"
    return f"CASE WHEN {operand} IS NULL THEN '{NULL}' ELSE {doubled} END"


def _postgresql_value(operand: str) -> str:
    """A value as both kinds print it: a number's text (a float's exponent MySQL's
    way), a string as its text (``concat``: what the driver reads, a CHAR padded)."""
    if is_number(operand) and operand.endswith(FLOAT8_SUFFIX):
        # MySQL writes an exponent bare (1e20, 1e-300), PostgreSQL signed and at least
        # two digits long (1e+20): the same double then hashes alike. (Below 1e-4 the two
        # still differ: MySQL writes 0.00001, PostgreSQL 1e-05.)
        printed = f"({operand})::text"
        for padded, bare in (("e+0", "e"), ("e+", "e"), ("e-0", "e-")):
            printed = f"replace({printed}, '{padded}', '{bare}')"
        return printed
    if is_number(operand):
        return f"({operand})::text"
    return f"concat({operand})"
