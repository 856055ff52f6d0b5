"""Which source rows the target can hold: pure checks against the target's column types.

A row that fails is set aside with a reason instead of failing the batch; these checks
catch what would otherwise be a database error (or, worse, silent truncation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from etl.core.value_checks import PROBLEMS

ColumnKind = Literal[
    "string",
    "float",
    "integer",
    "boolean",
    "decimal",
    "bytes",
    "date",
    "datetime",
    "time",
    "json",
    "uuid",
    "other",
]

FLOAT32_MAX = 3.4028234663852886e38
FLOAT64_MAX = 1.7976931348623157e308
FLOAT32_ROUNDS_TO_MAX = float(2**128 - 2**103)
"""Doubles below this (in magnitude) round to a finite 4-byte float."""


@dataclass(frozen=True)
class ColumnSpec:
    """What the target column can hold, as far as the checks need to know."""

    name: str
    kind: ColumnKind
    nullable: bool
    length: int | None = None
    """Longest string in characters, when the column has a limit."""
    single_precision: bool = False
    """True for 4-byte floats (MySQL FLOAT, PostgreSQL REAL): smaller range and precision."""
    forbids_nul: bool = False
    """True where the database cannot store U+0000 in text (PostgreSQL)."""
    finite_only: bool = False
    """True where the database cannot store NaN or infinities in the column (MySQL)."""
    low: int | None = None
    """Smallest integer an integer column holds (None: no limit known)."""
    high: int | None = None
    """Largest integer an integer column holds (None: no limit known)."""
    precision: int | None = None
    """Digits of a decimal column (None: no limit)."""
    scale: int | None = None
    """Digits after the point of a decimal column."""
    fraction: int = 6
    """Fractional-second digits a datetime or time column keeps."""
    time_of_day: bool = False
    """True where a time column holds only 00:00 to 24:00 (PostgreSQL, SQLite), not
    a signed duration (MySQL's TIME)."""
    max_hours: int = 839
    """A duration-like time column holds less than this many hours either way."""
    padded: bool = False
    """True for a fixed-width CHAR: trailing spaces are not part of the value (one
    database pads them on, another strips them off)."""
    json_values: bool = False
    """True where values arrive parsed from a JSON source column: a str is a JSON
    string, not JSON text to parse."""


@dataclass(frozen=True)
class Rejected:
    """A source row set aside, with the reason in words."""

    row: tuple[Any, ...]
    reason: str


def problem(value: Any, spec: ColumnSpec) -> str | None:
    """Why ``value`` cannot go into the column, or None if it can."""
    if value is None:
        return None if spec.nullable else f"{spec.name} is NULL"
    if spec.kind == "string" and isinstance(value, str):
        if spec.length is not None and len(value) > spec.length:
            return (
                f"{spec.name} is {len(value)} characters long; "
                f"the target column holds {spec.length}"
            )
        if spec.forbids_nul and "\x00" in value:
            return f"{spec.name} contains a NUL character, which the target cannot store"
    if spec.kind == "float" and isinstance(value, int | float):
        if math.isnan(value) or math.isinf(value):
            if not spec.finite_only:
                return None
            return f"{spec.name} is {value}, which the target cannot store"
        limit = FLOAT32_MAX if spec.single_precision else FLOAT64_MAX
        # A double rounds to the nearest 4-byte float: up to half a step beyond the
        # largest one still rounds to it.
        if spec.single_precision and abs(value) < FLOAT32_ROUNDS_TO_MAX:
            return None
        if abs(value) > limit:
            return f"{spec.name} is {value}, out of the target column's range (±{limit:.4g})"
    if spec.kind in PROBLEMS:
        return PROBLEMS[spec.kind](value, spec)
    return None


def check_row(
    row: tuple[Any, ...],
    specs: Sequence[ColumnSpec],
    rule: Callable[[dict[str, Any]], str | None] | None = None,
) -> str | None:
    """The first reason the row cannot be written, or None when it is fine."""
    for value, spec in zip(row, specs, strict=True):
        reason = problem(value, spec)
        if reason:
            return reason
    if rule is not None:
        return rule({spec.name: value for spec, value in zip(specs, row, strict=True)})
    return None


RowCheck = Callable[[tuple[Any, ...]], str | None]


def compile_checks(
    specs: Sequence[ColumnSpec],
    rule: Callable[[dict[str, Any]], str | None] | None = None,
    *,
    sources: Sequence[ColumnSpec] | None = None,
) -> RowCheck | None:
    """:func:`check_row` for fixed specs, with each column's test decided once.

    The per-row work is one cheap test per value; a value that fails it (or that the
    quick test does not cover) goes through :func:`check_row`, which has the last word
    and the reason in words, so both always agree. ``sources`` are the source
    columns' own specs, when the source database enforces them: a column whose every
    possible value fits the target is not tested at all, and None means no row can
    fail (there is nothing to check).
    """
    tested = [
        (i, _quick_test(spec))
        for i, spec in enumerate(specs)
        if sources is None or not always_fits(sources[i], spec)
    ]
    if not tested and rule is None:
        return None
    names = [spec.name for spec in specs]

    def check(row: tuple[Any, ...]) -> str | None:
        for i, passes in tested:
            if not passes(row[i]):
                return check_row(row, specs, rule)
        return None if rule is None else rule(dict(zip(names, row, strict=True)))

    return check


def always_fits(source: ColumnSpec, target: ColumnSpec) -> bool:
    """Whether every value a source column can hold passes the target column's checks.

    Only for a source database that enforces its column types (not SQLite). Floats
    must come from a column that cannot hold NaN or infinities (a MySQL source's;
    PostgreSQL's can), and a double cannot be guaranteed to fit a single. Each other
    kind fits only from the same kind with no wider limits (integer range, decimal
    digits, bytes, fractional seconds, a duration into a time of day).
    """
    if source.nullable and not target.nullable:
        return False
    if target.kind == "string":
        return (
            source.kind == "string"
            and _within(source.length, target.length)
            and (source.forbids_nul or not target.forbids_nul)
        )
    if target.kind == "float":
        return (
            source.kind == "float"
            and source.finite_only
            and (source.single_precision or not target.single_precision)
        )
    if target.kind == "other":
        return True
    if target.kind == "integer" and source.kind == "boolean":
        return True
    if source.kind != target.kind:
        return False
    return _fits_kind(source, target)


def _fits_kind(source: ColumnSpec, target: ColumnSpec) -> bool:
    """:func:`always_fits` for two columns of one kind (not strings or floats)."""
    kind = target.kind
    if kind == "integer":
        return _at_least(target.low, source.low, below=True) and _at_least(
            target.high, source.high, below=False
        )
    if kind == "decimal":
        if target.precision is None:
            return source.finite_only or not target.finite_only
        return (
            source.precision is not None
            and (source.scale or 0) <= (target.scale or 0)
            and source.precision - (source.scale or 0) <= target.precision - (target.scale or 0)
            and (source.finite_only or not target.finite_only)
        )
    if kind == "bytes":
        return _within(source.length, target.length)
    if kind in ("datetime", "time"):
        fits = source.fraction <= target.fraction
        if kind == "time" and target.time_of_day and not source.time_of_day:
            return False
        if kind == "time" and not target.time_of_day and not source.time_of_day:
            fits = fits and source.max_hours <= target.max_hours
        return fits
    if kind == "json":
        return source.forbids_nul or not target.forbids_nul
    return True


def _within(source: int | None, target: int | None) -> bool:
    """A source length limit within the target's (None: no limit)."""
    return target is None or (source is not None and source <= target)


def _at_least(target: int | None, source: int | None, *, below: bool) -> bool:
    """Whether the target's bound reaches as far as the source's (None: unbounded)."""
    if target is None:
        return True
    if source is None:
        return False
    return target <= source if below else target >= source


def _quick_test(spec: ColumnSpec) -> Callable[[Any], bool]:
    """True where :func:`problem` would certainly find nothing; False means 'ask it'."""
    nullable = spec.nullable
    if spec.kind == "string":
        limit, nul = spec.length, spec.forbids_nul

        def string_fits(value: Any) -> bool:
            if value is None:
                return nullable
            return (
                type(value) is str
                and (limit is None or len(value) <= limit)
                and not (nul and "\x00" in value)
            )

        return string_fits
    if spec.kind == "float":
        bound = FLOAT32_MAX if spec.single_precision else FLOAT64_MAX

        def float_fits(value: Any) -> bool:
            if value is None:
                return nullable
            return type(value) is float and -bound <= value <= bound  # NaN compares False

        return float_fits
    if spec.kind == "integer":
        low = spec.low if spec.low is not None else -math.inf
        high = spec.high if spec.high is not None else math.inf

        def integer_fits(value: Any) -> bool:
            if value is None:
                return nullable
            return type(value) is int and low <= value <= high

        return integer_fits
    if spec.kind in PROBLEMS:

        def asks(value: Any) -> bool:
            if value is None:
                return nullable
            return problem(value, spec) is None

        return asks
    return lambda value: value is not None or nullable
