"""Row checks, the 'always fits' shortcut, comparisons and refusals for every column kind."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.core.equality import (
    decimal_equal,
    double_equal,
    equality,
    json_equal,
    padded_equal,
    single_equal,
    uuid_equal,
)
from etl.core.mapping import lossy
from etl.core.validate import ColumnSpec, always_fits, compile_checks, problem

INT32 = ColumnSpec("n", "integer", True, low=-(2**31), high=2**31 - 1)
UINT64 = ColumnSpec("n", "integer", True, low=0, high=2**64 - 1)
DEC = ColumnSpec("d", "decimal", True, precision=8, scale=2, finite_only=True)
BYTES = ColumnSpec("b", "bytes", True, length=4)
TIME_OF_DAY = ColumnSpec("t", "time", True, time_of_day=True)
DURATION = ColumnSpec("t", "time", True)
JSON_TEXT = ColumnSpec("j", "json", True, forbids_nul=True)


@pytest.mark.parametrize(
    ("value", "spec", "reason"),
    [
        (2**31, INT32, "out of the target column's range (-2147483648..2147483647)"),
        (-1, UINT64, "out of the target column's range (0..18446744073709551615)"),
        (Decimal("1.005"), DEC, "more than the target column's 2 digits after the point"),
        (Decimal("1000000.00"), DEC, "out of the target column's range (DECIMAL(8,2))"),
        (Decimal("NaN"), DEC, "which the target cannot store"),
        (b"\x00\x5c\x00\x5c\x00", BYTES, "5 bytes long; the target column holds 4"),
        (timedelta(hours=-1), TIME_OF_DAY, "-01:00:00, which the target's time of day"),
        (timedelta(days=1), TIME_OF_DAY, "24:00:00, which the target's time of day"),
        (timedelta(hours=839), DURATION, "out of the target column's range (±839 hours)"),
        ("{not json", JSON_TEXT, "is not valid JSON"),
        ('{"a": "\\u0000"}', JSON_TEXT, "contains a NUL character"),
        ("not-a-uuid", ColumnSpec("u", "uuid", True), "not a UUID"),
        (
            datetime(2024, 2, 29, 0, 0, 0, 1, tzinfo=UTC),
            ColumnSpec("at", "datetime", True, fraction=3),
            "keeps 3 fractional-second digits",
        ),
    ],
)
def test_values_the_target_cannot_hold_are_named(value: Any, spec: ColumnSpec, reason: str) -> None:
    assert reason in (problem(value, spec) or "")


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        (2**64 - 1, UINT64),
        (-(2**31), INT32),
        (True, INT32),
        (Decimal("999999.99"), DEC),
        (Decimal("1.50"), DEC),
        (Decimal("-0.1"), DEC),
        (b"\x00\x5c\x00\x5c", BYTES),
        (timedelta(hours=23, minutes=59, seconds=59, microseconds=999999), TIME_OF_DAY),
        (time(23, 59, 59, 999999), TIME_OF_DAY),
        (-timedelta(hours=838, minutes=59, seconds=59), DURATION),
        ('{"a": [1, 2.5]}', JSON_TEXT),
        ({"a": "just a dict"}, JSON_TEXT),
        ("a JSON string", ColumnSpec("j", "json", True, json_values=True)),
        (math.nan, ColumnSpec("f", "float", True)),
        (3.4028235e38, ColumnSpec("f", "float", True, single_precision=True, finite_only=True)),
    ],
)
def test_values_that_fit_pass(value: Any, spec: ColumnSpec) -> None:
    assert problem(value, spec) is None


def test_nan_where_the_target_cannot_hold_it() -> None:
    assert "nan" in (problem(math.nan, ColumnSpec("f", "float", True, finite_only=True)) or "")
    assert "out of" in (
        problem(3.402824e38, ColumnSpec("f", "float", True, single_precision=True)) or ""
    )


@pytest.mark.parametrize(
    ("source", "target", "fits"),
    [
        (INT32, UINT64, False),  # negative values
        (ColumnSpec("n", "integer", True, low=0, high=2**32 - 1), UINT64, True),
        (UINT64, ColumnSpec("n", "integer", True, low=-(2**63), high=2**63 - 1), False),
        (ColumnSpec("d", "decimal", True, precision=6, scale=2, finite_only=True), DEC, True),
        (ColumnSpec("d", "decimal", True, precision=8, scale=3, finite_only=True), DEC, False),
        (ColumnSpec("d", "decimal", True, precision=10, scale=2, finite_only=True), DEC, False),
        (ColumnSpec("d", "decimal", True, precision=6, scale=2), DEC, False),  # NaN possible
        (ColumnSpec("b", "bytes", True, length=4), BYTES, True),
        (ColumnSpec("b", "bytes", True), BYTES, False),
        (DURATION, TIME_OF_DAY, False),
        (TIME_OF_DAY, DURATION, True),
        (ColumnSpec("t", "datetime", True), ColumnSpec("t", "datetime", True, fraction=0), False),
        (ColumnSpec("j", "json", True), JSON_TEXT, False),  # NUL in the source's JSON
        (ColumnSpec("j", "json", True, forbids_nul=True), JSON_TEXT, True),
        (ColumnSpec("b", "boolean", True), INT32, True),
        (ColumnSpec("s", "string", True, length=4), BYTES, False),
    ],
)
def test_always_fits_for_the_new_kinds(source: ColumnSpec, target: ColumnSpec, fits: bool) -> None:
    assert always_fits(source, target) is fits


SPECS = [INT32, DEC, BYTES, TIME_OF_DAY, JSON_TEXT]
VALUES = st.tuples(
    st.one_of(st.none(), st.integers(-(2**40), 2**40), st.booleans()),
    st.one_of(st.none(), st.decimals(allow_nan=True, places=3), st.integers(-(10**7), 10**7)),
    st.one_of(st.none(), st.binary(max_size=6)),
    st.one_of(st.none(), st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2))),
    st.one_of(st.none(), st.text(max_size=5), st.dictionaries(st.text(max_size=2), st.integers())),
)


@given(VALUES)
def test_the_compiled_checks_agree_with_problem(row: tuple[Any, ...]) -> None:
    """The per-column quick tests never let a value by that :func:`problem` would refuse."""
    check = compile_checks(SPECS)
    assert check is not None
    expected = next((r for v, s in zip(row, SPECS, strict=True) if (r := problem(v, s))), None)
    assert check(row) == expected


def test_comparisons_are_exact_to_what_the_target_stores() -> None:
    assert single_equal(0.1, 0.10000000149011612)  # 0.1 as a 4-byte float, read exactly
    assert not single_equal(0.1, 0.10000001)  # the next 4-byte float
    assert single_equal(3.4028235e38, 3.4028234663852886e38)
    assert single_equal(math.nan, math.nan)
    assert double_equal(math.nan, math.nan)
    assert not double_equal(0.1, 0.1 + 2**-56)
    assert decimal_equal(Decimal("1.50"), Decimal("1.5"))
    assert decimal_equal(Decimal("NaN"), Decimal("NaN"))
    assert not decimal_equal(Decimal("1.5"), Decimal("1.500001"))
    assert json_equal('{"b": [1, 2.5], "a": 1}', {"a": 1, "b": [1, 2.50]})
    assert json_equal("1e2", 100)
    assert not json_equal("[true]", [1])
    assert not json_equal('{"a": 1}', {"a": 2})
    assert single_equal(None, None)
    assert not json_equal(None, {})
    text = "123E4567-E89B-12D3-A456-426614174000"
    assert uuid_equal(text, UUID(text))  # a uuid column keeps no letter case
    assert uuid_equal(UUID(text).bytes, text.lower())
    assert not uuid_equal(text, UUID(int=1))
    assert not uuid_equal("not a uuid", UUID(int=1))
    assert not uuid_equal(None, UUID(int=0))
    assert equality("uuid") is uuid_equal


def test_kind_mismatches_are_refused_up_front_and_narrowing_is_not() -> None:
    assert lossy(ColumnSpec("x", "float", True), INT32) is not None
    assert lossy(ColumnSpec("x", "date", True), ColumnSpec("x", "datetime", True)) is not None
    assert lossy(ColumnSpec("x", "json", True), INT32) is not None
    assert lossy(UINT64, INT32) is None  # per row
    assert lossy(ColumnSpec("d", "decimal", True, precision=10, scale=2), DEC) is None
    assert (
        lossy(ColumnSpec("s", "string", True), ColumnSpec("s", "string", True, length=10)) is None
    )
    assert lossy(ColumnSpec("s", "string", True), JSON_TEXT) is None
    assert lossy(ColumnSpec("o", "other", True), INT32) is None


def test_char_values_compare_without_trailing_spaces() -> None:
    """PostgreSQL pads CHAR(n) with spaces, MySQL strips them: the same value either way."""
    assert padded_equal("abc", "abc       ")
    assert not padded_equal(" abc", "abc")
    assert not padded_equal("abc", None)
    assert equality("string", padded=True) is padded_equal
    assert equality("string") is not padded_equal
