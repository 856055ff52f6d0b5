"""A row hashing MySQL/MariaDB and PostgreSQL compute alike: MD5 of a normalised text.

Each kind prints values its own way, so their own hashings never compare. This one
hashes the text both print alike for the column kinds it is used for (the plan checks
them: strings, integers and floats on both sides): each value as its UTF-8 bytes
prefixed with their byte length (MySQL ``LENGTH`` of a utf8mb4 value, PostgreSQL
``octet_length``), NULL as 'N' (apart from '' and 'N', which are '0:' and '1:N'),
joined by '#'; integers as decimal text; floats as each server prints them. A float
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

from etl.dialects.types import KEY_HASH_DIGITS, Quote

NAME = "text-md5"


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
    """Each value as utf8mb4 bytes (whatever the column's character set) with its length."""
    values = [f"CAST(CONVERT({quote(name)} USING utf8mb4) AS BINARY)" for name in columns]
    parts = ", ".join(f"IFNULL(CONCAT(LENGTH({v}), ':', {v}), 'N')" for v in values)
    return f"CONCAT_WS('#', {parts})"


def _postgresql(quote: Quote, columns: Sequence[str]) -> str:
    """Each value as its output text: what the driver reads (``::text`` would trim a CHAR)."""
    parts = ", ".join(
        f"CASE WHEN {quote(name)} IS NULL THEN 'N' "
        f"ELSE octet_length(concat({quote(name)})) || ':' || concat({quote(name)}) END"
        for name in columns
    )
    return f"(concat_ws('#', {parts}) COLLATE \"C\")"
