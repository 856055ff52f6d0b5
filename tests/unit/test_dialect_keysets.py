"""Key range predicates: the SQL each dialect writes for (lo, hi]."""

from __future__ import annotations

from sqlalchemy import Column, Enum, MetaData, Table
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


def test_postgresql_looks_keys_up_in_unsized_typed_arrays() -> None:
    """One array per key column, without a length (a cast to VARCHAR(50) would cut keys)."""
    clause = POSTGRESQL.keys_in(JOB.table, KEY, [("Ada", "L"), ("Bob", "M")])
    text = str(clause.compile(dialect=postgresql.psycopg.dialect()))
    assert "unnest(CAST(" in text
    assert "AS TEXT[])" in text
    assert "VARCHAR(50)" not in text
    assert text.startswith("(students.first_name, students.last_name) IN (SELECT")


def test_postgresql_keeps_the_generic_list_for_an_enum_key() -> None:
    table = Table("e", MetaData(), Column("k", Enum("a", "b", name="k_kind"), primary_key=True))
    text = str(POSTGRESQL.keys_in(table, ["k"], [("a",)]).compile(dialect=postgresql.dialect()))
    assert "unnest" not in text


def test_mysql_keeps_the_in_list_its_optimiser_turns_into_lookups() -> None:
    text = sql(MARIADB.keys_in(JOB.table, KEY, [("Ada", "L")]), mysql.dialect())
    assert text == "(students.first_name, students.last_name) IN (('Ada', 'L'))"
