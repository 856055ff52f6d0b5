"""MySQL ``VALUES`` text for a batch of rows, written column by column.

Escaping each value on its own is a Python call per value, and was most of the
client's time on a bulk load. Here a column's strings are joined, escaped by one
``str.translate`` and split again; a column of plain floats gets its ``e0`` suffix
from the row format. Every value still ends up exactly as PyMySQL would write it;
an unusual column (mixed types, a value holding the join separator, a float
written with an exponent) takes the value-by-value way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pymysql.converters import escape_string

Literal = Callable[[Any], str]

_SEPARATOR = "\x01"  # left alone by both kinds of escaping
_NONE = type(None)


def value_literals(no_backslash_escapes: bool) -> dict[type, Literal]:
    """One value's literal, by its type, as PyMySQL writes it."""
    quote = _quoter(no_backslash_escapes)

    def string(value: str) -> str:
        return "'" + quote(value) + "'"

    def number(value: Any) -> str:
        # As PyMySQL does: 'e0' makes MySQL read a DOUBLE, not an exact DECIMAL, so a
        # FLOAT column gets the double's nearest float, not the decimal's.
        text_value = repr(value)
        return text_value if "e" in text_value else text_value + "e0"

    def json_text(value: Any) -> str:
        # PyMySQL refuses a dict and writes a list as a tuple: JSON goes as its text.
        return string(json.dumps(value, ensure_ascii=False))

    return {
        str: string,
        float: number,
        int: str,
        _NONE: lambda _: "NULL",
        dict: json_text,
        list: json_text,
    }


def row_texts(
    rows: Sequence[Sequence[Any]],
    no_backslash_escapes: bool,
    escape: Literal,
) -> list[str]:
    """``(v1,v2,...)`` for each row; ``escape`` writes a value no literal here covers."""
    if not rows:
        return []
    literals = value_literals(no_backslash_escapes)
    quote = _quoter(no_backslash_escapes)
    formats: list[str] = []
    columns: list[list[str]] = []
    for values in zip(*rows, strict=True):
        spec, texts = _column(values, literals, quote, escape)
        formats.append(spec)
        columns.append(texts)
    return list(map(("(" + ",".join(formats) + ")").__mod__, zip(*columns, strict=True)))


def statements(texts: Sequence[str], limit: int) -> Iterator[str]:
    """Row texts joined by commas, cut so no piece is longer than ``limit`` characters.

    A single row longer than ``limit`` still goes, alone (the server has the last word).
    """
    if not texts:
        return
    if sum(map(len, texts)) + len(texts) <= limit:
        yield ",".join(texts)
        return
    start, size = 0, 0
    for i, text_row in enumerate(texts):
        if i > start and size + len(text_row) > limit:
            yield ",".join(texts[start:i])
            start, size = i, 0
        size += len(text_row) + 1
    yield ",".join(texts[start:])


def _column(
    values: tuple[Any, ...],
    literals: dict[type, Literal],
    quote: Callable[[str], str],
    escape: Literal,
) -> tuple[str, list[str]]:
    """A column's row-format piece and the texts that fill it."""
    kinds = set(map(type, values))
    if kinds == {str}:
        joined = _SEPARATOR.join(values)
        if joined.count(_SEPARATOR) == len(values) - 1:
            return "'%s'", quote(joined).split(_SEPARATOR)
    if kinds == {float}:
        texts = list(map(repr, values))
        joined = "".join(texts)
        if "e" not in joined and "n" not in joined:  # no exponent, nan or inf
            return "%se0", texts
    return "%s", [literals[type(v)](v) if type(v) in literals else escape(v) for v in values]


def _quoter(no_backslash_escapes: bool) -> Callable[[str], str]:
    """A string's escaped text (without quotes) under the session's SQL mode."""
    if no_backslash_escapes:
        return lambda value: value.replace("'", "''")
    return escape_string
