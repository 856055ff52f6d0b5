"""Filling an empty key range with text the source server writes: when it is exact.

What ``mysqldump | mysql`` or ``mysql -B | psql -c COPY`` does, one key range at a
time: the source server writes the range's rows as text in the format the target
names (``Dialect.text_format``: MySQL an ``INSERT`` values list, PostgreSQL COPY's
text format; one aggregated string), and the client passes it to the target unread.
The client never parses a row, which was most of its time on a first load.

Only where reading the rows could not change what is written: a source that writes
the target's format, no transform or business rule, column kinds whose text reads back
as the same value, and column types that guarantee every source value fits the target
(so no row can be set aside), but for two values the copy finds itself: a NUL in text
for a target whose text holds none, and NaN or infinities for one whose floats hold
none (the source's text says so, ``Values.fits``, and that range goes row by row,
where such rows are set aside with their reason). Values are written as the text
protocol shows them (a FLOAT as its exact double), so the target holds what the
row-by-row path would have written. Anything unusual (a range too long for one
statement, text the server cut short, a MySQL target session with
NO_BACKSLASH_ESCAPES) falls back to that path. The SQL itself is the dialects'
(``values_text``, ``text_copy_limit``, ``write_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.types import TypeDecorator, TypeEngine

from etl.core.validate import ColumnSpec, always_fits

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
"""Between servers of one kind (MySQL): column kinds whose literal text reads back as
the same value: QUOTE's, bytes as hex (``X'..'``; QUOTE's text is converted to
utf8mb4, which would mangle bytes that are not UTF-8), a 4-byte FLOAT as its exact
double (the dialect's ``exact_operand``), not QUOTE's six digits."""

CROSS_KIND_KINDS = frozenset({"string", "integer", "float"})
"""Between servers of two kinds: the kinds whose text each reads as the other wrote it
(floats as exact doubles). Not dates (PostgreSQL's output follows DateStyle and has
BC dates and infinities; MySQL has zero dates) nor decimals (PostgreSQL's NaN and
infinities, which a MySQL session not in strict mode would store as 0)."""


def declared_as_stored(
    types: Sequence[TypeEngine[Any]],
    declared: Sequence[ColumnSpec],
    stored: Sequence[ColumnSpec] | None,
) -> bool:
    """Whether the job's column types say what the source stores, as the text writers
    see it: they choose quoting, escaping and hex by the declared types (a BOOLEAN over
    a TINYINT is printed alike), and a type of the job's own (a TypeDecorator from
    outside the dialects) would convert values a text copy skips."""
    if stored is None:
        return False
    for kind, spec, found in zip(types, declared, stored, strict=True):
        if _dialects_own(kind):  # e.g. the exact FLOAT reader, made from what is stored
            continue
        if isinstance(kind, TypeDecorator) or _written_as(spec) != _written_as(found):
            return False
    return True


def _written_as(spec: ColumnSpec) -> str:
    """What the text writers tell apart by a column's type: text (escaped), bytes (hex),
    floats (exact doubles, NaN checks), and the rest (printed as they are)."""
    return spec.kind if spec.kind in ("string", "bytes", "float") else "other"


def _dialects_own(kind: TypeEngine[Any]) -> bool:
    """A read type a dialect puts on a column itself (an exact FLOAT reader, a bridge)."""
    return type(kind).__module__.startswith("etl.dialects.")


def copyable(
    sources: Sequence[ColumnSpec] | None, targets: Sequence[ColumnSpec], *, same_kind: bool
) -> bool:
    """Whether every column can travel as text: a text-safe kind on both sides, and every
    value fits (:func:`fits`).

    MySQL's QUOTE writes numbers as quoted strings, which MySQL reads back as the same
    number only into a column of the same kind (a BIT or YEAR column, or a float into an
    integer column, would read the string differently from a number).
    """
    kinds = COPYABLE_KINDS if same_kind else CROSS_KIND_KINDS
    return sources is not None and all(
        source.kind == target.kind and source.kind in kinds and fits(source, target)
        for source, target in zip(sources, targets, strict=True)
    )


def fits(source: ColumnSpec, target: ColumnSpec) -> bool:
    """Whether every value of the source column fits the target's, but NUL and NaN.

    A range holding either where the target cannot hold it is found by the source's
    text itself (``Values.fits``) and goes row by row, where the row checks set such
    a row aside with its reason.
    """
    return always_fits(replace(source, forbids_nul=True, finite_only=True), target)
