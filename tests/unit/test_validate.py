"""Which rows the target can hold: checks from the target's column types."""

from __future__ import annotations

from etl.core.validate import ColumnSpec, check_row

SPECS = [
    ColumnSpec("first_name", "string", nullable=False, length=50),
    ColumnSpec("last_name", "string", nullable=False, length=50),
    ColumnSpec("course", "string", nullable=True, length=50, forbids_nul=True),
    ColumnSpec("score", "float", nullable=True, single_precision=True, finite_only=True),
]


def test_a_good_row_passes() -> None:
    assert check_row(("Ada", "Lovelace", "Maths", 99.0), SPECS) is None
    assert check_row(("Ada", "Lovelace", None, None), SPECS) is None


def test_length_counts_characters_not_bytes() -> None:
    assert check_row(("é" * 50, "x", None, None), SPECS) is None
    assert "51 characters long" in (check_row(("é" * 51, "x", None, None), SPECS) or "")


def test_null_key_part_is_named() -> None:
    assert check_row((None, "x", None, None), SPECS) == "first_name is NULL"


def test_non_finite_and_out_of_range_scores() -> None:
    assert "nan" in (check_row(("a", "b", None, float("nan")), SPECS) or "")
    assert "inf" in (check_row(("a", "b", None, float("-inf")), SPECS) or "")
    assert "out of the target column's range" in (check_row(("a", "b", None, 1e39), SPECS) or "")
    double = [*SPECS[:3], ColumnSpec("score", "float", nullable=True)]
    assert check_row(("a", "b", None, 1e39), double) is None


def test_nul_character_where_the_target_cannot_store_it() -> None:
    assert "NUL character" in (check_row(("a", "b", "x\x00y", 1.0), SPECS) or "")


def test_a_job_rule_runs_after_the_type_checks() -> None:
    def rule(row: dict[str, object]) -> str | None:
        return "score below zero" if (row["score"] or 0) < 0 else None  # type: ignore[operator]

    assert check_row(("a", "b", None, -1.0), SPECS, rule) == "score below zero"


def test_compiled_checks_agree_with_check_row() -> None:
    """The precompiled per-column checks give exactly check_row's verdict and reason."""
    from etl.core.validate import compile_checks

    def rule(row: dict[str, object]) -> str | None:
        return "no Bobs" if row["first_name"] == "Bob" else None

    rows = [
        ("Ada", "Lovelace", "Maths", 99.0),
        ("Ada", "Lovelace", None, None),
        ("é" * 51, "x", None, None),
        (None, "x", None, None),
        ("a", "b", "x\x00y", 1.0),
        ("a", "b", None, float("nan")),
        ("a", "b", None, float("inf")),
        ("a", "b", None, 1e39),
        ("a", "b", None, 7),
        ("Bob", "b", None, None),
    ]
    for specs_rule in (None, rule):
        check = compile_checks(SPECS, specs_rule)
        for row in rows:
            assert check(row) == check_row(row, SPECS, specs_rule), row


def test_columns_the_source_types_guarantee_are_not_checked() -> None:
    """A check goes only where the source column's own type proves every value fits."""
    from etl.core.validate import always_fits, compile_checks

    def string(length: int | None, nullable: bool = False, nul: bool = False) -> ColumnSpec:
        return ColumnSpec("s", "string", nullable, length, forbids_nul=nul)

    def real(single: bool, finite: bool = True) -> ColumnSpec:
        return ColumnSpec("f", "float", True, single_precision=single, finite_only=finite)

    assert always_fits(string(50), string(50))
    assert always_fits(string(20), string(None))
    assert not always_fits(string(51), string(50))
    assert not always_fits(string(None), string(50))  # TEXT into VARCHAR
    assert not always_fits(string(50, nullable=True), string(50))
    assert not always_fits(string(50), string(50, nul=True))  # MySQL text into PostgreSQL
    assert always_fits(string(50, nul=True), string(50, nul=True))
    assert always_fits(real(single=True), real(single=False))
    assert not always_fits(real(single=False), real(single=True))  # a double may not fit
    assert not always_fits(real(single=False, finite=False), real(single=False))  # NaN
    assert not always_fits(ColumnSpec("f", "other", True), real(single=False))

    mysql_source = [*SPECS[:3], real(single=True)]  # MySQL's FLOAT holds no NaN
    assert compile_checks(SPECS, None, sources=mysql_source) is None
    postgresql_source = [*SPECS[:3], real(single=True, finite=False)]
    assert compile_checks(SPECS, None, sources=postgresql_source) is not None  # REAL may
    wider = [*SPECS[:3], real(single=False)]
    check = compile_checks(SPECS, None, sources=wider)
    assert check is not None
    assert check(("a", "b", None, 1e39)) == check_row(("a", "b", None, 1e39), SPECS)
    assert check(("a", "b", None, 1.0)) is None
    assert compile_checks(SPECS, lambda row: None, sources=mysql_source) is not None  # a rule
