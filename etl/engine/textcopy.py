"""Filling an empty key range with SQL text the source writes (MySQL to MySQL today).

What ``mysqldump | mysql`` does, one key range at a time: the source server writes
the range's rows as an ``INSERT`` values list (``QUOTE`` on every value, one
aggregated string), and the client passes it to the target unread. The client never
parses a row, which was most of its time on a first load.

Only where reading the rows could not change what is written: both databases
MySQL/MariaDB, no transform or business rule, and column types that guarantee every
source value fits the target (so no row can be set aside). ``QUOTE`` writes a value
as the text protocol shows it (a FLOAT with six digits, as a client would also
receive it), so the target holds what the row-by-row path would have written.
Anything unusual (a range too long for one statement, text the server cut short, a
target session with NO_BACKSLASH_ESCAPES) falls back to that path. The SQL itself is
the dialects' (``values_text``, ``text_copy_limit``, ``upsert_values``).
"""

from __future__ import annotations

from collections.abc import Sequence

from etl.core.validate import ColumnSpec

COPYABLE_KINDS = frozenset(
    {
        "string",
        "float",
        "integer",
        "boolean",
        "decimal",
        "date",
        "datetime",
        "time",
        "json",
        "bytes",
    }
)
"""Column kinds whose literal text reads back as the same value: QUOTE's, bytes as hex
(``X'..'``; QUOTE's text is converted to utf8mb4, which would mangle bytes that are not
UTF-8), a 4-byte FLOAT as its exact double (the dialect's ``exact_operand``), not
QUOTE's six digits."""


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
