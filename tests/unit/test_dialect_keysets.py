"""Key range predicates: the SQL each dialect writes for (lo, hi]."""

from __future__ import annotations

from sqlalchemy.dialects import mysql, postgresql

from etl.dialects import MARIADB, POSTGRESQL
from jobs.students import JOB

KEY = JOB.key


def sql(clause: object, dialect: object) -> str:
    return str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def test_mysql_gets_the_expanded_form_its_optimiser_can_range_scan() -> None:
    text = sql(MARIADB.after(JOB.table, KEY, ("Ada", "L")), mysql.dialect())
    assert text == (
        "students.first_name > 'Ada' OR students.first_name = 'Ada' AND students.last_name > 'L'"
    )
    upper = sql(MARIADB.up_to(JOB.table, KEY, ("Zoe", "M")), mysql.dialect())
    assert upper == (
        "students.first_name < 'Zoe' OR students.first_name = 'Zoe' AND students.last_name <= 'M'"
    )


def test_postgresql_gets_a_row_comparison() -> None:
    text = sql(POSTGRESQL.after(JOB.table, KEY, ("Ada", "L")), postgresql.dialect())
    assert text == "(students.first_name, students.last_name) > ('Ada', 'L')"


def test_open_ends_exclude_only_null_keys() -> None:
    """From the start means every non-NULL key; to the end is no condition at all."""
    start = sql(MARIADB.after(JOB.table, KEY, None), mysql.dialect())
    assert start == "students.first_name IS NOT NULL AND students.last_name IS NOT NULL"
    assert sql(MARIADB.up_to(JOB.table, KEY, None), mysql.dialect()) == "true"
