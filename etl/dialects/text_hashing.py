"""A row hashing MySQL/MariaDB and PostgreSQL compute alike: MD5 of a normalised text.

Each kind prints values its own way, so their own hashings never compare. This one
hashes the text both print alike for the column kinds it is used for (the plan checks
them: strings, integers, floats, dates, decimals of one scale): each value as its UTF-8 bytes
prefixed with their byte length (MySQL ``LENGTH`` of a utf8mb4 value, PostgreSQL
``octet_length``), NULL as 'N' (apart from '' and 'N', which are '0:' and '1:N'),
joined by '#'; integers as decimal text and floats as each server prints them, with no
length (a number's text holds no '#' and never reads 'N'), exponents written MySQL's way. A float
printed otherwise on each side (``1e20`` against ``1e+20``) only sends its row to the
comparison the sync makes anyway. Equal texts are equal values as the sync reads them:
the drivers read the same text the servers hash.

The same serialization of the key, hashed, names a key and its bucket: a bucket is a
set of exact keys on both sides, whatever order each side keeps them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from etl.dialects.types import KEY_HASH_DIGITS, Quote, is_number

NAME = "text-md5"
FLOAT8_SUFFIX = ")::float8"
"""How PostgreSQL's exact float operand ends (``PostgreSQLTypes.exact_operand``)."""


class MySQLTextHashing:
    """The MySQL/MariaDB side."""

    name = NAME
    portable = True

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"SUBSTRING(MD5({_mysql(quote, key)}), 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"SUBSTRING(MD5({_mysql(quote, columns)}), 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return [f"CAST(CONV(SUBSTRING(MD5({_mysql(quote, columns)}), 1, 15), 16, 10) AS UNSIGNED)"]

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        digest = f"CAST(CONV(SUBSTRING(MD5({_mysql(quote, key)}), 1, 8), 16, 10) AS UNSIGNED)"
        return f"{digest} MOD {int(buckets)}"

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"GROUP_CONCAT(CONCAT({key_hash}, ':', {row_hash}) SEPARATOR ',')"

    def prepare_tokens(self, session: Session) -> None:
        session.execute(text("SET SESSION group_concat_max_len = @@max_allowed_packet"))


class PostgreSQLTextHashing:
    """The PostgreSQL side (a UTF8 database: its text is the bytes MySQL's utf8mb4 has)."""

    name = NAME
    portable = True

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"substr(md5({_postgresql(quote, key)}), 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"substr(md5({_postgresql(quote, columns)}), 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return [f"('x' || substr(md5({_postgresql(quote, columns)}), 1, 15))::bit(60)::bigint"]

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        digest = f"('x' || substr(md5({_postgresql(quote, key)}), 1, 8))::bit(32)::bigint"
        return f"mod({digest}, {int(buckets)})"

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"string_agg({key_hash} || ':' || {row_hash}, ',')"

    def prepare_tokens(self, session: Session) -> None:
        """Nothing: string_agg has no length limit short of 1 GB."""


MYSQL_TEXT = MySQLTextHashing()
POSTGRESQL_TEXT = PostgreSQLTextHashing()


def _mysql(quote: Quote, columns: Sequence[str]) -> str:
    """Each value as utf8mb4 bytes (whatever the column's character set) with its length;
    a number as its text alone."""
    return "CONCAT_WS('#', " + ", ".join(_mysql_part(quote(name)) for name in columns) + ")"


def _mysql_part(operand: str) -> str:
    if is_number(operand):
        return f"IFNULL(CAST({operand} AS BINARY), 'N')"
    value = f"CAST(CONVERT({operand} USING utf8mb4) AS BINARY)"
    return f"IFNULL(CONCAT(LENGTH({value}), ':', {value}), 'N')"


def _postgresql(quote: Quote, columns: Sequence[str]) -> str:
    """Each value as its output text: what the driver reads (``::text`` would trim a CHAR);
    a number as its text alone."""
    parts = ", ".join(_postgresql_part(quote(name)) for name in columns)
    return f"(concat_ws('#', {parts}) COLLATE \"C\")"


def _postgresql_part(operand: str) -> str:
    if is_number(operand) and operand.endswith(FLOAT8_SUFFIX):
        # MySQL writes an exponent bare (1e20, 1e-300), PostgreSQL signed and at least
        # two digits long (1e+20): the same double then hashes alike. (Below 1e-4 the two
        # still differ: MySQL writes 0.00001, PostgreSQL 1e-05.)
        printed = f"({operand})::text"
        for padded, bare in (("e+0", "e"), ("e+", "e"), ("e-0", "e-")):
            printed = f"replace({printed}, '{padded}', '{bare}')"
        return f"coalesce({printed}, 'N')"
    if is_number(operand):
        return f"coalesce(({operand})::text, 'N')"
    return (
        f"CASE WHEN {operand} IS NULL THEN 'N' "
        f"ELSE octet_length(concat({operand})) || ':' || concat({operand}) END"
    )
