"""Which rows the target can hold: checks from the target's column types."""

from __future__ import annotations

from etl.validate import ColumnSpec, check_row

SPECS = [
    ColumnSpec("first_name", "string", nullable=False, length=50),
    ColumnSpec("last_name", "string", nullable=False, length=50),
    ColumnSpec("course", "string", nullable=True, length=50, forbids_nul=True),
    ColumnSpec("score", "float", nullable=True, single_precision=True),
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
    from etl.validate import compile_checks

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
