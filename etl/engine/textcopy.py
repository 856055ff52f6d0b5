"""Filling an empty key range between two MySQL databases with SQL text the source writes.

What ``mysqldump | mysql`` does, one key range at a time: the source server writes
the range's rows as an ``INSERT`` values list (``QUOTE`` on every value, one
aggregated string), and the client passes it to the target unread. The client never
parses a row, which was most of its time on a first load.

Only where reading the rows could not change what is written: both databases
MySQL/MariaDB, no transform or business rule, and column types that guarantee every
source value fits the target (so no row can be set aside). ``QUOTE`` writes a value
as the text protocol shows it (a FLOAT with six digits, as a client would also
receive it), so the target holds what the row-by-row path would have written.
Anything unusual (a range too long for one statement, text the server cut short,
a target session with NO_BACKSLASH_ESCAPES) falls back to that path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, literal_column, select, text
from sqlalchemy.orm import Session

from etl.core.diff import Key
from etl.core.validate import ColumnSpec
from etl.engine import store

COPYABLE_KINDS = frozenset({"string", "float", "integer"})
"""Column kinds whose QUOTE text reads back as the same value (not binary, not dates)."""


@dataclass(frozen=True)
class Values:
    """A key range's rows as the text of an INSERT's values list."""

    rows: int
    text: str
    """``(v, ...),(v, ...)``; empty when the range has no rows."""


def copyable(sources: Sequence[ColumnSpec] | None, targets: Sequence[ColumnSpec]) -> bool:
    """Whether every column can travel as QUOTE text: the same text-safe kind on both sides.

    QUOTE writes numbers as quoted strings, which MySQL reads back as the same number
    only into a column of the same kind (a BIT or YEAR column, or a float into an
    integer column, would read the string differently from a number).
    """
    return sources is not None and all(
        source.kind == target.kind and source.kind in COPYABLE_KINDS
        for source, target in zip(sources, targets, strict=True)
    )


def values(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    hi: Key | None,
    limit: int,
) -> Values | None:
    """The rows with keys in ``(lo, hi]`` as values text; None when it cannot be used whole.

    The text is checked against what the server says it should be: every row present
    (QUOTE and CONCAT give NULL for a value over max_allowed_packet, and GROUP_CONCAT
    skips NULLs) and every character there (GROUP_CONCAT cuts its result at
    group_concat_max_len with only a warning). None too when longer than ``limit`` bytes.
    """
    quote = session.get_bind().dialect.identifier_preparer.quote
    parts = ", ',', ".join(f"QUOTE({quote(name)})" for name in columns)
    row = f"CONVERT(CONCAT('(', {parts}, ')') USING utf8mb4)"
    session.execute(text(f"SET SESSION group_concat_max_len = {int(limit)}"))
    query: Select[Any] = (
        select(
            literal_column("COUNT(*)"),
            literal_column(f"COUNT({row})"),
            literal_column(f"SUM(CHAR_LENGTH({row}))"),
            literal_column(f"GROUP_CONCAT({row} SEPARATOR ',')"),
        )
        .select_from(table)
        .where(store.after(table, key, lo, "mysql"), store.up_to(table, key, hi, "mysql"))
    )
    count, written, length, joined = session.execute(query).one()
    if not count:
        return Values(0, "")
    whole = (
        written == count
        and isinstance(joined, str)
        and len(joined) == int(length) + count - 1
        and len(joined.encode()) <= limit
    )
    return Values(int(count), joined) if whole else None
