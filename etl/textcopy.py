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
Anything unusual (a range too long for one statement, a target session with
NO_BACKSLASH_ESCAPES) falls back to that path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, literal_column, select, text
from sqlalchemy.orm import Session

from etl import store
from etl.diff import Key
from etl.validate import ColumnSpec

COPYABLE_KINDS = frozenset({"string", "float", "integer"})
"""Column kinds whose QUOTE text reads back as the same value (not binary, not dates)."""


@dataclass(frozen=True)
class Values:
    """A key range's rows as the text of an INSERT's values list."""

    rows: int
    text: str
    """``(v, ...),(v, ...)``; empty when the range has no rows."""


def copyable(source_specs: Sequence[ColumnSpec] | None) -> bool:
    """Whether every source column can travel as QUOTE text."""
    return source_specs is not None and all(s.kind in COPYABLE_KINDS for s in source_specs)


def values(
    session: Session,
    table: Table,
    columns: Sequence[str],
    key: Sequence[str],
    lo: Key | None,
    hi: Key | None,
    limit: int,
) -> Values | None:
    """The rows with keys in ``(lo, hi]`` as values text; None when longer than ``limit``.

    GROUP_CONCAT cuts its result at group_concat_max_len with only a warning: it is
    set to ``limit`` bytes, so a result within 4 bytes (one character) of it may have
    been cut, and is refused like a range too long.
    """
    quote = session.get_bind().dialect.identifier_preparer.quote
    row = "CONCAT('(', " + ", ',', ".join(f"QUOTE({quote(name)})" for name in columns) + ", ')')"
    session.execute(text(f"SET SESSION group_concat_max_len = {int(limit)}"))
    query: Select[Any] = (
        select(literal_column("COUNT(*)"), literal_column(f"GROUP_CONCAT({row} SEPARATOR ',')"))
        .select_from(table)
        .where(store.after(table, key, lo, "mysql"), store.up_to(table, key, hi, "mysql"))
    )
    count, joined = session.execute(query).one()
    if not count:
        return Values(0, "")
    if not isinstance(joined, str) or len(joined.encode()) > limit - 4:
        return None  # cut short or too long (or binary, which no copyable column makes)
    return Values(int(count), joined)
