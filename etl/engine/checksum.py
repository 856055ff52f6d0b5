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

- :func:`summary`: a range's row count and sums of row hashes (MD5's first 60 bits; on
  MariaDB 10.8+ the cheaper CRC32 of the exact serialization plus CRC32C of a plain
  one, two different 32-bit checks: MD5 costs the server about twice as much per row;
  on PostgreSQL the 64-bit ``hashtextextended``);
- :func:`row_tokens`: one short token per row, ``key hash + row hash``, returned as a
  single aggregated string (one value to parse instead of a row per row), so the
  client finds the differing keys by set difference; an insert or a delete changes
  only its own token, never shifts the others;
- :func:`rows_by_key_hash`: the rows of a range whose key hash is in a given set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, Numeric, String, Table, bindparam, func, literal_column, select, text
from sqlalchemy.orm import Session

from etl.core.diff import Key, Row
from etl.engine import store

BACKENDS = frozenset({"mysql", "postgresql"})
"""Kinds of database that compute these checksums (both sides must be the same kind)."""

KEY_HASH_LENGTH = 16
"""Hex digits of a key's hash in a token; the row's hash follows, as many again."""

Summary = tuple[int, ...]
"""Row count and checksums of a key range."""

HashKind = Literal["md5", "crc"]


@dataclass(frozen=True)
class Scope:
    """Which rows of which table: columns (key first), the key, and the database kind."""

    table: Table
    columns: Sequence[str]
    key: Sequence[str]
    backend: str
    hashing: HashKind = "md5"
    """``crc`` (MariaDB 10.8+ on both sides only: both must compute the same) or ``md5``."""


def hash_kind(*engines: Engine) -> HashKind:
    """``crc`` when every database is MariaDB 10.8 or later (it has CRC32C), else ``md5``."""
    for engine in engines:
        dialect = engine.dialect
        version = dialect.server_version_info or ()
        if not getattr(dialect, "is_mariadb", False) or tuple(version[:2]) < (10, 8):
            return "md5"
    return "crc"


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
    sums = [
        literal_column(f"COALESCE(SUM({number}), 0)", Numeric())
        for number in _row_hash_numbers(scope, _quote(session))
    ]
    query = select(func.count(), *sums).select_from(scope.table).where(*_in_range(scope, lo, hi))
    return tuple(int(value) for value in session.execute(query).one())


def row_tokens(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> list[str]:
    """One ``key hash + row hash`` token per row in ``(lo, hi]``, in no particular order.

    Raises TokensTruncated when the server cut the aggregate short (a range too large
    for its packet limit): the caller must then compare the range by rows.
    """
    quote = _quote(session)
    key_hash = _key_hash(scope, _parts(scope.backend, quote, scope.key))
    row_hash = _row_hash_text(scope, quote)
    if scope.backend == "mysql":
        # GROUP_CONCAT stops at group_concat_max_len (1 KB by default) with only a warning.
        session.execute(text("SET SESSION group_concat_max_len = @@max_allowed_packet"))
        aggregate = f"GROUP_CONCAT(CONCAT({key_hash}, ':', {row_hash}) SEPARATOR ',')"
    else:
        aggregate = f"string_agg({key_hash} || ':' || {row_hash}, ',')"
    query = (
        select(func.count(), literal_column(aggregate, String()))
        .select_from(scope.table)
        .where(*_in_range(scope, lo, hi))
    )
    count, joined = session.execute(query).one()
    tokens: list[str] = joined.split(",") if joined else []
    if len(tokens) != count or (tokens and tokens[-1].count(":") != 1):
        raise TokensTruncated(int(count), len(tokens))
    return tokens


class TokensTruncated(Exception):
    """Raised when a range's aggregated row tokens came back shorter than its row count."""

    def __init__(self, rows: int, tokens: int) -> None:
        self.rows, self.tokens = rows, tokens
        super().__init__(f"{tokens} row tokens for {rows} rows: the aggregate was truncated")


def key_hashes(tokens: Iterable[str]) -> set[str]:
    """The key hashes of some tokens."""
    return {token.partition(":")[0] for token in tokens}


def rows_by_key_hash(
    session: Session, scope: Scope, lo: Key | None, hi: Key | None, hashes: Sequence[str]
) -> list[Row]:
    """The rows in ``(lo, hi]`` whose key hash is one of ``hashes``."""
    if not hashes:
        return []
    table = scope.table
    key_hash = literal_column(
        _key_hash(scope, _parts(scope.backend, _quote(session), scope.key)), String()
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


def _key_hash(scope: Scope, parts: str) -> str:
    """A key's hash as text: only to find rows again (a collision reads a row too many)."""
    if scope.backend == "postgresql":
        return f"substr(md5({parts}), 1, {KEY_HASH_LENGTH})"
    if scope.hashing == "crc":
        return f"CAST(CRC32({parts}) AS CHAR)"
    return f"SUBSTRING(MD5({parts}), 1, {KEY_HASH_LENGTH})"


def _row_hash_text(scope: Scope, quote: Any) -> str:
    """A row's hash as text, 60 or 64 bits."""
    parts = _parts(scope.backend, quote, scope.columns)
    if scope.backend == "postgresql":
        return f"substr(md5({parts}), 1, {KEY_HASH_LENGTH})"
    if scope.hashing == "crc":
        return f"CONCAT(CRC32({parts}), '.', CRC32C({_plain_parts(quote, scope.columns)}))"
    return f"SUBSTRING(MD5({parts}), 1, {KEY_HASH_LENGTH})"


def _row_hash_numbers(scope: Scope, quote: Any) -> list[str]:
    """A row's hashes as numbers of at most 60 bits: their sums cannot overflow."""
    parts = _parts(scope.backend, quote, scope.columns)
    if scope.backend == "postgresql":
        # hashtextextended (the 64-bit hash behind hash partitioning, stable across
        # versions) costs the server less than half of md5; sum() of bigint is numeric,
        # so it cannot overflow. COLLATE "C": a plain byte hash, whatever the collation.
        return [f'hashtextextended(({parts}) COLLATE "C", 0)']
    if scope.hashing == "crc":
        return [f"CRC32({parts})", f"CRC32C({_plain_parts(quote, scope.columns)})"]
    return [f"CAST(CONV(SUBSTRING(MD5({parts}), 1, 15), 16, 10) AS UNSIGNED)"]


def _plain_parts(quote: Any, columns: Sequence[str]) -> str:
    """MySQL: the values' bytes joined by NUL, with no lengths or NULL marks.

    Only ever the second of two checks: the first (CRC32 of :func:`_parts`) is the one
    that cannot confuse ('a', NULL) with (NULL, 'a'); this one adds 32 independent
    bits against random collisions for about half the server's cost of building the
    exact serialization a second time.
    """
    return "CONCAT_WS(x'00', " + ", ".join(f"CAST({quote(n)} AS BINARY)" for n in columns) + ")"
