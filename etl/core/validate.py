"""Which source rows the target can hold: pure checks against the target's column types.

A row that fails is set aside with a reason instead of failing the batch; these checks
catch what would otherwise be a database error (or, worse, silent truncation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ColumnKind = Literal["string", "float", "integer", "other"]

FLOAT32_MAX = 3.4028234663852886e38
FLOAT64_MAX = 1.7976931348623157e308


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
            return f"{spec.name} is {value}, which the target cannot store"
        limit = FLOAT32_MAX if spec.single_precision else FLOAT64_MAX
        if abs(value) > limit:
            return f"{spec.name} is {value}, out of the target column's range (±{limit:.4g})"
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
    PostgreSQL's can), and a double cannot be guaranteed to fit a single.
    """
    if source.nullable and not target.nullable:
        return False
    if target.kind == "string":
        return (
            source.kind == "string"
            and (target.length is None or (source.length or target.length + 1) <= target.length)
            and (source.forbids_nul or not target.forbids_nul)
        )
    if target.kind == "float":
        return (
            source.kind == "float"
            and source.finite_only
            and (source.single_precision or not target.single_precision)
        )
    return True


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
    return lambda value: value is not None or nullable
