"""MySQL values text written column by column: always what PyMySQL writes value by value."""

from __future__ import annotations

import decimal
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from pymysql.converters import escape_item

from etl.dialects import mysql_values

VALUES = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["\x01", "a\x01b", "'", "\\", "\x00", "\x1a", "\n", "\r", '"']),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.binary(max_size=8),
    st.sampled_from([b"\x00", b"\x5c", b"\x00\x5c\x27\x22\x1a", b""]),
)


def reference(row: tuple[Any, ...], no_backslash_escapes: bool) -> str:
    """The row as PyMySQL's own value-by-value escaping writes it."""

    def one(value: Any) -> str:
        if no_backslash_escapes and isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return str(escape_item(value, "utf8mb4"))

    return "(" + ",".join(one(value) for value in row) + ")"


def escape(value: Any) -> str:
    return str(escape_item(value, "utf8mb4"))


@given(
    st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=30),
    st.booleans(),
)
@example([("a", "b", 1.5), ("c\x01", "d", 1e20)], False)  # separator in a value; an exponent
@example([("it's", "back\\slash", None)], True)
def test_rows_are_written_exactly_as_pymysql_would(
    rows: list[tuple[Any, ...]], no_backslash_escapes: bool
) -> None:
    texts = mysql_values.row_texts(rows, no_backslash_escapes, escape)
    assert texts == [reference(row, no_backslash_escapes) for row in rows]


def test_uniform_columns_take_the_column_at_once_way() -> None:
    """Plain strings and floats: the whole-column path, with the same result."""
    rows = [(f"name {i}", "x'y", i / 3) for i in range(100)]
    assert mysql_values.row_texts(rows, False, escape) == [reference(r, False) for r in rows]


def test_other_types_go_through_the_drivers_escape() -> None:
    rows = [(decimal.Decimal("1.50"), b"\x00\xff")]
    assert mysql_values.row_texts(rows, False, escape) == [reference(rows[0], False)]


@given(st.lists(st.integers(0, 30), max_size=60), st.integers(10, 200))
def test_statements_keep_every_row_once_and_under_the_limit(lengths: list[int], limit: int) -> None:
    texts = [f"({i}" + "x" * n + ")" for i, n in enumerate(lengths)]
    pieces = list(mysql_values.statements(texts, limit))
    assert [text for piece in pieces for text in piece.split(",")] == texts
    for piece in pieces:
        assert len(piece) <= limit or "," not in piece  # only a row alone may be longer


@given(
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            ),
            max_leaves=6,
        ).filter(lambda v: isinstance(v, dict | list)),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_json_values_are_written_as_their_text(
    values: list[Any], no_backslash_escapes: bool
) -> None:
    """PyMySQL refuses a dict and writes a list as a tuple: JSON goes as JSON text."""
    rows = [(value,) for value in values]
    texts = mysql_values.row_texts(rows, no_backslash_escapes, escape)
    as_text = [(json.dumps(value, ensure_ascii=False),) for value in values]
    assert texts == [reference(row, no_backslash_escapes) for row in as_text]
