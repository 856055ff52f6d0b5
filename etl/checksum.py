"""Checksums of key ranges, computed by the database itself: what verify and the sync share.

Only for two databases of the same kind (MySQL/MariaDB or PostgreSQL on both sides),
since each kind prints values its own way. Every expression here is exact on keys:
values are hashed as their bytes (binary casts, so a case-insensitive collation's
'anna' = 'Anna' does not hide a change), each prefixed with its length (so
('ab', 'c') differs from ('a', 'bc')), and NULL hashes apart from ''. A checksum can
differ where the rows are equal (a float printed at another precision), never the
other way round short of an MD5 collision: a mismatch only ever sends rows to the
comparison the sync makes anyway, where the float tolerance decides.

Three levels, each cheaper than reading rows:

- :func:`summary`: a range's row count and the sum of a 60-bit row hash;
- :func:`row_tokens`: one short token per row, ``key hash + row hash``, returned as a
  single aggregated string (one value to parse instead of a row per row), so the
  client finds the differing keys by set difference; an insert or a delete changes
  only its own token, never shifts the others;
- :func:`rows_by_key_hash`: the rows of a range whose key hash is in a given set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Numeric, String, Table, bindparam, func, literal_column, select, text
from sqlalchemy.orm import Session

from etl import store
from etl.diff import Key, Row

BACKENDS = frozenset({"mysql", "postgresql"})
"""Kinds of database that compute these checksums (both sides must be the same kind)."""

KEY_HASH_LENGTH = 16
"""Hex digits of a key's hash in a token; the row's hash follows, as many again."""

TOKEN_BYTES = 2 * KEY_HASH_LENGTH + 1
"""One token and its separator in the aggregated string: for sizing ranges."""

Summary = tuple[int, int]
"""Row count and checksum of a key range."""


@dataclass(frozen=True)
class Scope:
    """Which rows of which table: columns (key first), the key, and the database kind."""

    table: Table
    columns: Sequence[str]
    key: Sequence[str]
    backend: str


def boundary(session: Session, scope: Scope, lo: Key | None, size: int) -> Key | None:
    """The ``size``-th key after ``lo``: the end of the next range (None: the rest)."""
    table, key = scope.table, scope.key
    query = (
        select(*[table.c[name] for name in key])
        .where(store.after(table, key, lo, scope.backend))
        .order_by(*[table.c[name] for name in key])
        .offset(size - 1)
        .limit(1)
    )
    row = session.execute(query).first()
    return tuple(row) if row is not None else None


def summary(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> Summary:
    """Row count and order-independent checksum of the rows with keys in ``(lo, hi]``."""
    checksum = f"COALESCE(SUM({_row_hash_number(session, scope)}), 0)"
    query = (
        select(func.count(), literal_column(checksum, Numeric()))
        .select_from(scope.table)
        .where(*_in_range(scope, lo, hi))
    )
    count, total = session.execute(query).one()
    return int(count), int(total)


def row_tokens(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> list[str]:
    """One ``key hash + row hash`` token per row in ``(lo, hi]``, in no particular order.

    Raises TokensTruncated when the server cut the aggregate short (a range too large
    for its packet limit): the caller must then compare the range by rows.
    """
    quote = _quote(session)
    key_hash = _hash_hex(scope.backend, _parts(scope.backend, quote, scope.key))
    row_hash = _hash_hex(scope.backend, _parts(scope.backend, quote, scope.columns))
    if scope.backend == "mysql":
        # GROUP_CONCAT stops at group_concat_max_len (1 KB by default) with only a warning.
        session.execute(text("SET SESSION group_concat_max_len = @@max_allowed_packet"))
        aggregate = f"GROUP_CONCAT(CONCAT({key_hash}, {row_hash}) SEPARATOR ',')"
    else:
        aggregate = f"string_agg({key_hash} || {row_hash}, ',')"
    query = (
        select(func.count(), literal_column(aggregate, String()))
        .select_from(scope.table)
        .where(*_in_range(scope, lo, hi))
    )
    count, joined = session.execute(query).one()
    tokens: list[str] = joined.split(",") if joined else []
    if len(tokens) != count or (tokens and len(tokens[-1]) != 2 * KEY_HASH_LENGTH):
        raise TokensTruncated(int(count), len(tokens))
    return tokens


class TokensTruncated(Exception):
    """Raised when a range's aggregated row tokens came back shorter than its row count."""

    def __init__(self, rows: int, tokens: int) -> None:
        self.rows, self.tokens = rows, tokens
        super().__init__(f"{tokens} row tokens for {rows} rows: the aggregate was truncated")


def key_hashes(tokens: Sequence[str]) -> set[str]:
    """The key hashes of some tokens."""
    return {token[:KEY_HASH_LENGTH] for token in tokens}


def rows_by_key_hash(
    session: Session, scope: Scope, lo: Key | None, hi: Key | None, hashes: Sequence[str]
) -> list[Row]:
    """The rows in ``(lo, hi]`` whose key hash is one of ``hashes``."""
    if not hashes:
        return []
    table = scope.table
    key_hash = literal_column(
        _hash_hex(scope.backend, _parts(scope.backend, _quote(session), scope.key)), String()
    )
    query = select(*[table.c[name] for name in scope.columns]).where(
        *_in_range(scope, lo, hi), key_hash.in_(bindparam("hashes", expanding=True))
    )
    found: list[Row] = []
    for start in range(0, len(hashes), _HASHES_PER_QUERY):
        chunk = list(hashes[start : start + _HASHES_PER_QUERY])
        found.extend(tuple(row) for row in session.execute(query, {"hashes": chunk}))
    return found


_HASHES_PER_QUERY = 5000


def _in_range(scope: Scope, lo: Key | None, hi: Key | None) -> list[Any]:
    return [
        store.after(scope.table, scope.key, lo, scope.backend),
        store.up_to(scope.table, scope.key, hi, scope.backend),
    ]


def _quote(session: Session) -> Any:
    return session.get_bind().dialect.identifier_preparer.quote


def _parts(backend: str, quote: Any, columns: Sequence[str]) -> str:
    """The columns' values as length-prefixed bytes, NULL as 'N', joined by '#'."""
    if backend == "mysql":
        # Binary casts: the columns' collations may differ, and CONCAT would refuse to mix them.
        parts = ", ".join(
            f"IFNULL(CONCAT(LENGTH({quote(name)}), ':', CAST({quote(name)} AS BINARY)), 'N')"
            for name in columns
        )
        return f"CONCAT_WS('#', {parts})"
    parts = ", ".join(
        f"COALESCE(length({quote(name)}::text) || ':' || {quote(name)}::text, 'N')"
        for name in columns
    )
    return f"concat_ws('#', {parts})"


def _hash_hex(backend: str, parts: str) -> str:
    """The first KEY_HASH_LENGTH hex digits of the MD5 of ``parts``."""
    if backend == "mysql":
        return f"SUBSTRING(MD5({parts}), 1, {KEY_HASH_LENGTH})"
    return f"substr(md5({parts}), 1, {KEY_HASH_LENGTH})"


def _row_hash_number(session: Session, scope: Scope) -> str:
    """A row's hash as a 60-bit number: sums of them cannot overflow a DECIMAL/NUMERIC."""
    parts = _parts(scope.backend, _quote(session), scope.columns)
    if scope.backend == "mysql":
        return f"CAST(CONV(SUBSTRING(MD5({parts}), 1, 15), 16, 10) AS UNSIGNED)"
    return f"('x' || substr(md5({parts}), 1, 15))::bit(60)::bigint"
