"""Checksums of key ranges, computed by the database itself: what verify and the sync share.

Only where both servers hash rows alike (a :class:`~etl.dialects.base.RowHashing` both
dialects offer: their own between servers of one kind, since each kind prints values
its own way; across MySQL/MariaDB and PostgreSQL a normalised text both print alike,
only for string, integer, float, date and one-scale decimal columns); the SQL of each
hash lives in the dialect modules. Bucket summaries (:func:`bucket_summaries`,
:func:`bucket_tokens`) serve sides whose key ranges disagree. Every
expression there is exact on keys: values are hashed as their bytes (binary casts,
so a case-insensitive collation's 'anna' = 'Anna' does not hide a change), each
with its '#' doubled and joined by '#,' (so ('ab', 'c') differs from ('a', 'bc')), and
NULL ('#0') hashes apart from ''. A checksum can
differ where the rows are equal (a float printed at another precision), never the
other way round short of a hash collision: a mismatch only ever sends rows to the
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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    TypeDecorator,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.core import lines
from etl.core.buckets import Summaries, folded
from etl.core.diff import Key, Row
from etl.core.lines import KeyPart
from etl.dialects.base import Dialect, quoting
from etl.dialects.types import Operand, Quote, RowHashing
from etl.engine.plan import Plan
from etl.engine.store import row_filter

Summary = tuple[int, ...]
"""Row count and checksums of a key range."""


@dataclass(frozen=True)
class Scope:
    """Which rows of which table: columns (key first), the key, and how they are hashed."""

    table: Table
    columns: Sequence[str]
    key: Sequence[str]
    dialect: Dialect
    hashing: RowHashing
    """SQL the server hashes rows with: both sides of a comparison use the same."""
    numbers: frozenset[str] = frozenset()
    """Columns hashed as a number's text alone: integer or float on both sides."""
    utf8: frozenset[str] = frozenset()
    """Text columns stored as UTF-8 bytes (:attr:`~etl.engine.plan.Plan.source_utf8`)."""
    key_parts: tuple[KeyPart, ...] | None = None
    """How each key column reads off a row line (:mod:`etl.core.lines`); None: no row
    lines here (a side's hashing prints none, or a key column does not read off one)."""
    table_checksum: bool = False
    """The whole table may be summarised by the hashing's table checksum: both sides
    have one, and no ``where`` narrows either table (:func:`checksum_route`)."""


def scopes(plan: Plan, columns: Sequence[str], key: Sequence[str]) -> tuple[Scope, Scope]:
    """The source's and the target's scope of a plan that has a common row hashing."""
    assert plan.hashing is not None
    numbers = frozenset(
        name
        for name in columns
        if _number(plan.source_table.c[name].type) and _number(plan.target_table.c[name].type)
    )
    # Text reads off a line as UTF-8: across kinds MySQL converts to utf8mb4 (and
    # PostgreSQL's lines are NULL outside a UTF8 database); else only UTF-8 columns.
    utf8 = plan.source_utf8 & plan.target_utf8
    parts = [
        _key_part(
            plan.source_table.c[name].type,
            plan.target_table.c[name].type,
            text_ok=plan.hashing.portable or name in utf8,
        )
        for name in key
    ]
    hashings = (plan.hashing, plan.target_hashing or plan.hashing)
    printed = all(hashing.lines(str, columns, LINES_LIMIT) is not None for hashing in hashings)
    key_parts = None if None in parts or not printed else tuple(p for p in parts if p)
    whole = not (row_filter(plan.source_table) or row_filter(plan.target_table)) and all(
        hashing.table_checksum("t") is not None for hashing in hashings
    )
    return (
        Scope(
            plan.source_table,
            columns,
            key,
            plan.source_dialect,
            plan.hashing,
            numbers,
            plan.source_utf8,
            key_parts,
            whole,
        ),
        Scope(
            plan.target_table,
            columns,
            key,
            plan.target_dialect,
            plan.target_hashing or plan.hashing,
            numbers,
            plan.target_utf8,
            key_parts,
            whole,
        ),
    )


def _number(kind: Any) -> bool:
    """Whether a column of this type prints as a number (a BOOLEAN may print 't')."""
    stored = kind.impl_instance if isinstance(kind, TypeDecorator) else kind  # ExactFloat
    return isinstance(stored, Integer | Float) and not isinstance(stored, Boolean)


def _key_part(source: Any, target: Any, *, text_ok: bool) -> KeyPart | None:
    """How a key column reads off a line: integers, and strings where ``text_ok``."""
    kinds = [
        kind.impl_instance if isinstance(kind, TypeDecorator) else kind for kind in (source, target)
    ]
    if all(isinstance(k, Integer) and not isinstance(k, Boolean) for k in kinds):
        return "integer"
    if text_ok and all(isinstance(k, String) for k in kinds):
        return "text"
    return None


def summary(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> Summary:
    """Row count and order-independent checksum of the rows with keys in ``(lo, hi]``."""
    sums = [
        literal_column(f"COALESCE(SUM({number}), 0)", Numeric())
        for number in scope.hashing.row_sums(operands(session, scope), scope.columns)
    ]
    query = select(func.count(), *sums).select_from(scope.table).where(*_in_range(scope, lo, hi))
    return tuple(int(value) for value in session.execute(query).one())


TABLE_CHECKSUM = -1
"""Marks a whole-table summary taken by the table checksum route: no sum is negative."""


def checksum_route(source: Session, target: Session, scopes: tuple[Scope, Scope]) -> bool:
    """Whether both whole tables may be compared by their table checksums: a checksum
    of whole records, it holds only the job's columns where both tables have exactly
    those, in that order, defined alike (else a table's other columns would always
    differ, and columns in another order could hide values moved between them)."""
    theirs, ours = scopes
    if not theirs.table_checksum:
        return False
    found = [
        scope.dialect.column_definitions(session.connection(), scope.table)
        for session, scope in ((source, theirs), (target, ours))
    ]
    return (
        found[0] is not None
        and found[0] == found[1]
        and [column[0] for column in found[0]] == list(theirs.columns)
    )


def table_summary(session: Session, scope: Scope, by_checksum: bool = False) -> Summary:
    """The whole table's row count and checksums, by the hashing's table checksum
    where ``by_checksum`` (:func:`checksum_route`), else as :func:`summary`.

    Both routes' summaries never compare equal (:data:`TABLE_CHECKSUM`): a side whose
    table checksum came back NULL (a view) makes the tables only differ.
    """
    table, hashing = scope.table, scope.hashing
    quote = quoting(session)
    name = ".".join(quote(part) for part in (table.schema, table.name) if part)
    statement = hashing.table_checksum(name) if by_checksum else None
    if statement is None:
        return summary(session, scope, None, None)
    found = session.execute(text(statement)).first()
    if found is None or found[1] is None:
        return summary(session, scope, None, None)
    sums = [
        literal_column(f"COALESCE(SUM({number}), 0)", Numeric())
        for number in hashing.table_sums(operands(session, scope), scope.columns)
    ]
    count, *rest = session.execute(select(func.count(), *sums).select_from(table)).one()
    return (int(count), TABLE_CHECKSUM, int(found[1]), *(int(value) for value in rest))


def row_tokens(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> list[str]:
    """One ``key hash + row hash`` token per row in ``(lo, hi]``, in no particular order.

    Raises TokensTruncated when the server cut the aggregate short (a range too large
    for its packet limit): the caller must then compare the range by rows.
    """
    quote, hashing = operands(session, scope), scope.hashing
    hashing.prepare_tokens(session)
    aggregate = hashing.tokens(
        hashing.key_hash(quote, scope.key), hashing.row_hash(quote, scope.columns)
    )
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


LINES_LIMIT = 8 << 20
"""Most bytes of a range's lines a side returns (a few thousand wide rows, tens of
thousands of narrow ones); past it the range is compared by tokens."""


def row_lines(session: Session, scope: Scope, lo: Key | None, hi: Key | None) -> list[bytes]:
    """Each row's serialization in ``(lo, hi]`` as one escaped line, in no particular order.

    Raises LinesTooLong past :data:`LINES_LIMIT` (or the server's packet limit).
    """
    quote, hashing = operands(session, scope), scope.hashing
    aggregate = hashing.lines(quote, scope.columns, LINES_LIMIT)
    assert aggregate is not None, "row_lines needs a hashing with lines"
    cut = hashing.prepare_lines(session, LINES_LIMIT)
    query = (
        select(func.count(), literal_column(aggregate, LargeBinary()))
        .select_from(scope.table)
        .where(*_in_range(scope, lo, hi))
    )
    try:
        count, joined = session.execute(query).one()
    except DBAPIError as error:
        if scope.dialect.classify(error) == "transient":
            raise
        raise LinesTooLong(-1, -1) from error  # past the server's own limit on a string
    return _whole_lines(int(count), joined, cut)


def _whole_lines(count: int, joined: bytes | None, cut: int | None) -> list[bytes]:
    """The lines of ``count`` rows, or LinesTooLong where the server returned them cut
    short (``cut`` long: even a cut inside the last line) or not at all (NULL)."""
    if joined is not None and cut is not None and len(joined) >= cut:
        raise LinesTooLong(count, -1)
    found = lines.split(bytes(joined) if joined is not None else None)
    if len(found) != count:
        raise LinesTooLong(count, len(found))
    return found


class LinesMisread(Exception):
    """A key read off a line named no row with exactly that key on its side: the lines
    are not to be trusted for the rest of the pass (a misread would leave a row unsynced)."""


class LinesTooLong(Exception):
    """Raised when a range's lines came back cut short (or not at all) for their size."""

    def __init__(self, rows: int, lines: int) -> None:
        self.rows, self.lines = rows, lines
        super().__init__(f"{lines} row lines for {rows} rows: past the limit")


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
    key_hash = literal_column(scope.hashing.key_hash(operands(session, scope), scope.key), String())
    query = select(*[table.c[name] for name in scope.columns]).where(
        *_in_range(scope, lo, hi), key_hash.in_(bindparam("hashes", expanding=True))
    )
    found: list[Row] = []
    for start in range(0, len(hashes), _HASHES_PER_QUERY):
        chunk = list(hashes[start : start + _HASHES_PER_QUERY])
        found.extend(tuple(row) for row in session.execute(query, {"hashes": chunk}))
    return found


_HASHES_PER_QUERY = 5000


def operands(session: Session, scope: Scope) -> Quote:
    """Each column as the hashes see it: quoted, exact where its text is not, and marked
    when it prints as a number on both sides (:class:`~etl.dialects.types.Operand`)."""
    quote, table, dialect = quoting(session), scope.table, scope.dialect

    def operand(name: str) -> str:
        sql = dialect.exact_operand(quote(name), table.c[name].type)
        return Operand(sql, number=name in scope.numbers, utf8=name in scope.utf8)

    return operand


def bucket_summaries(session: Session, scope: Scope, buckets: int) -> Summaries:
    """Row count and folded checksum of each bucket of the whole table, in one query.

    Streamed in bucket order: the client keeps 24 bytes a bucket, not the result set.
    """
    quote = operands(session, scope)
    bucket = literal_column(scope.hashing.bucket(quote, scope.key, buckets), Integer())
    sums = [
        literal_column(f"COALESCE(SUM({number}), 0)", Numeric())
        for number in scope.hashing.row_sums(quote, scope.columns)
    ]
    query = (
        select(bucket, func.count(), *sums)
        .select_from(scope.table)
        .where(*row_filter(scope.table))
        .group_by(bucket)
        .order_by(literal_column("1"))
    )
    result = session.execute(
        query, execution_options={"stream_results": True, "yield_per": _HASHES_PER_QUERY}
    )
    return Summaries.of(
        (int(row[0]), int(row[1]), folded([int(v) for v in row[2:]])) for row in result
    )


def bucket_stream(
    session: Session, scope: Scope, buckets: int, chosen: Sequence[int]
) -> Iterator[tuple[int, Key, str]]:
    """(bucket, exact key, row hash) of every row in the ``chosen`` buckets, by bucket.

    Streamed (a server-side cursor): the client holds a bucket at a time, however
    large the table; the server sorts by the bucket number alone.
    """
    quote, table = operands(session, scope), scope.table
    bucket = literal_column(scope.hashing.bucket(quote, scope.key, buckets), Integer())
    row_hash = literal_column(scope.hashing.row_hash(quote, scope.columns), String())
    query = (
        select(bucket, *[table.c[name] for name in scope.key], row_hash)
        # Literal numbers: thousands of buckets would pass a driver's parameter limit.
        .where(
            bucket.in_(bindparam("buckets", expanding=True, literal_execute=True)),
            *row_filter(table),
        )
        .order_by(literal_column("1"))
    )
    width = len(scope.key)
    result = session.execute(
        query,
        {"buckets": list(chosen)},
        execution_options={"stream_results": True, "yield_per": _HASHES_PER_QUERY},
    )
    try:
        for row in result:
            yield int(row[0]), tuple(row[1 : width + 1]), str(row[width + 1])
    finally:
        result.close()


BUCKET_LINES_LIMIT = 256 << 10
"""Most bytes of one bucket's lines (about 16 rows): past it, buckets go by summaries."""
_BUCKET_LINES_FETCH = 64
"""Buckets fetched at a time from a lines stream: the driver holds at most this many
buckets' lines (16 MB at the limit, 50 KB for rows of 50 bytes)."""


def bucket_lines(
    session: Session, scope: Scope, buckets: int, start: int
) -> Iterator[tuple[int, list[bytes]]]:
    """Each bucket from ``start`` on, ascending, with its rows as lines (any order).

    Streamed (a server-side cursor), one GROUP BY over the whole table: the lines
    name the differing rows' keys themselves, so no summaries and no second scan are
    needed. Raises LinesTooLong for a bucket past :data:`BUCKET_LINES_LIMIT`.
    """
    quote, hashing = operands(session, scope), scope.hashing
    aggregate = hashing.lines(quote, scope.columns, BUCKET_LINES_LIMIT)
    assert aggregate is not None, "bucket_lines needs a hashing with lines"
    cut = hashing.prepare_lines(session, BUCKET_LINES_LIMIT)
    bucket = literal_column(hashing.bucket(quote, scope.key, buckets), Integer())
    query = (
        select(bucket, func.count(), literal_column(aggregate, LargeBinary()))
        .select_from(scope.table)
        .where(*row_filter(scope.table))
        .group_by(bucket)
        .order_by(literal_column("1"))
    )
    if start:
        query = query.where(bucket >= start)
    result = session.execute(
        query, execution_options={"stream_results": True, "yield_per": _BUCKET_LINES_FETCH}
    )
    try:
        for number, count, joined in result:
            yield int(number), _whole_lines(int(count), joined, cut)
    finally:
        result.close()  # a stream left half way is closed (drained), not left for later


def _in_range(scope: Scope, lo: Key | None, hi: Key | None) -> list[Any]:
    return [
        scope.dialect.after(scope.table, scope.key, lo),
        scope.dialect.up_to(scope.table, scope.key, hi),
        *row_filter(scope.table),  # a job's ``where`` on its source table
    ]
