"""The sync engine against real databases, for every source/target pairing that matters."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.engine.state import latest_rejects
from etl.engine.verify import verify_job
from etl.job import Job
from etl.service.runner import run_exclusive, sync_options
from jobs.students import JOB
from tests.conftest import _pair
from tests.helpers.support import DatabasePair, same_floats

STUDENTS = [
    ("Ada", "Lovelace", "Mathematics", 99.5),
    ("Alan", "Turing", "Computer Science", 97.25),
    ("Grace", "Hopper", "Computer Science", 95.0),
    ("Zoë", "Dupré", "Art History", 61.5),
    ("Søren", "Kierkegaard", "Philosophy", None),
    ("Mei", "Chen", None, 72.0),
]


def many(count: int, prefix: str = "S") -> list[tuple[str, str, str, float]]:
    return [(f"{prefix}{i:05d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(count)]


def test_initial_load_copies_every_row(dbs: DatabasePair) -> None:
    """An empty target (table not even created) ends equal to the source."""
    dbs.create_source([*STUDENTS, *many(250)])
    result = dbs.run(batch_size=40)
    assert result.status == "succeeded"
    assert result.counts.inserted == len(STUDENTS) + 250
    assert same_floats(dbs.rows("target"), dbs.rows("source"))


def test_rerun_without_changes_writes_nothing(dbs: DatabasePair) -> None:
    """A second run finds every row unchanged and writes none."""
    dbs.create_source([*STUDENTS, *many(120)])
    dbs.run(batch_size=50)
    again = dbs.run(batch_size=50)
    assert again.status == "succeeded"
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    assert again.counts.unchanged == len(STUDENTS) + 120


def test_inserts_updates_and_deletes_propagate(dbs: DatabasePair) -> None:
    """Changed, new and removed source rows all reach the target, and nothing else moves."""
    dbs.create_source([*STUDENTS, *many(100)])
    dbs.run(batch_size=30)
    dbs.execute("source", "UPDATE students SET score = 12.5 WHERE first_name = 'Ada'")
    dbs.execute("source", "UPDATE students SET course = 'Logic' WHERE first_name = 'S00007'")
    dbs.execute("source", "DELETE FROM students WHERE first_name IN ('Alan', 'S00050', 'S00099')")
    dbs.insert("source", [("Hedy", "Lamarr", "Physics", 88.0)])
    result = dbs.run(batch_size=30)
    counts = result.counts
    assert (counts.inserted, counts.updated, counts.deleted) == (1, 2, 3)
    assert counts.unchanged == len(STUDENTS) + 100 - 2 - 3
    assert same_floats(dbs.rows("target"), dbs.rows("source"))


def test_deletes_at_the_end_of_the_key_space_propagate(dbs: DatabasePair) -> None:
    """Rows after the source's last key are deleted too (the last range is open-ended)."""
    dbs.create_source(many(60))
    dbs.run(batch_size=20)
    dbs.execute("source", "DELETE FROM students WHERE first_name >= 'S00040'")
    result = dbs.run(batch_size=20)
    assert result.counts.deleted == 20
    assert same_floats(dbs.rows("target"), dbs.rows("source"))


def test_dry_run_reports_and_writes_nothing(dbs: DatabasePair) -> None:
    """--dry-run counts what would change but leaves the target exactly as it was."""
    dbs.create_source(many(30))
    dbs.run(batch_size=10)
    dbs.execute("source", "UPDATE students SET score = 1.5 WHERE first_name < 'S00005'")
    dbs.execute("source", "DELETE FROM students WHERE first_name = 'S00029'")
    before_rows, before_runs = dbs.rows("target"), dbs.runs()
    result = dbs.run(batch_size=10, dry_run=True)
    assert (result.counts.updated, result.counts.deleted) == (5, 1)
    assert dbs.rows("target") == before_rows
    assert dbs.runs() == before_runs


def test_dry_run_on_a_fresh_target_creates_nothing(lite: DatabasePair) -> None:
    """A dry run against an empty target reports inserts and creates no table at all."""
    lite.create_source(many(10))
    result = lite.run(dry_run=True)
    assert result.counts.inserted == 10
    from sqlalchemy import inspect

    assert inspect(lite.engine("target")).get_table_names() == []


@pytest.mark.parametrize("dbs", [("mariadb", "mariadb"), ("postgresql", "mariadb")], indirect=True)
def test_a_nullable_key_on_a_server_is_scanned_for_nulls(dbs: DatabasePair) -> None:
    """A key the job declares over nullable columns (a UNIQUE index, no primary key):
    its NULL-key rows are set aside and reported, not skipped by the key ranges."""
    dbs.execute(
        "source",
        "CREATE TABLE students (first_name VARCHAR(50) NULL, last_name VARCHAR(50) NOT NULL, "
        "course VARCHAR(50), score FLOAT, UNIQUE (first_name, last_name))",
    )
    dbs.execute("source", "INSERT INTO students VALUES ('A', 'B', 'C', 1.0)")
    dbs.execute("source", "INSERT INTO students VALUES (NULL, 'Orphan', 'c', 2.0)")
    result = dbs.run(batch_size=10)
    assert result.counts.rejected == 1, result.error
    assert [row[:2] for row in dbs.rows("target")] == [("A", "B")]


def test_empty_source_is_refused_by_the_mass_delete_guard(dbs: DatabasePair) -> None:
    """A suddenly empty source does not wipe the target; the run says why."""
    dbs.create_source(many(40))
    dbs.run(batch_size=10)
    dbs.execute("source", "DELETE FROM students")
    result = dbs.run(batch_size=10, max_delete_fraction=0.5)
    assert result.status == "refused"
    assert "refused to delete 40 of 40 target rows" in (result.error or "")
    assert len(dbs.rows("target")) == 40
    assert dbs.runs()[0]["status"] == "refused"


def test_mass_delete_guard_stops_mid_pass_before_going_over(maria: DatabasePair) -> None:
    """When deletes pile up batch after batch, the batch that would cross the limit rolls back."""
    maria.create_source(many(100))
    maria.run(batch_size=10)
    # Same row count, but the first 60 keys replaced: the counts alone cannot see it.
    maria.execute("source", "DELETE FROM students WHERE first_name < 'S00060'")
    maria.insert("source", many(60, prefix="T"))
    result = maria.run(batch_size=10, max_delete_fraction=0.3)
    assert result.status == "refused"
    assert result.counts.deleted <= 30
    assert len(maria.rows("target")) >= 70


def test_allow_mass_delete_lets_the_operator_proceed(maria: DatabasePair) -> None:
    """With the guard lifted, an emptied source empties the target."""
    maria.create_source(many(20))
    maria.run()
    maria.execute("source", "DELETE FROM students")
    result = maria.run(allow_mass_delete=True)
    assert result.status == "succeeded"
    assert maria.rows("target") == []


def test_rows_the_target_cannot_hold_are_set_aside(dbs: DatabasePair) -> None:
    """Too-long names and non-finite or out-of-range scores are rejected; the rest lands."""
    dbs.create_source(many(20))
    # Source columns wide enough to hold what the target cannot.
    dbs.execute("source", "DROP TABLE students")
    table = dbs.students_table()
    for column in table.columns:
        if column.name != "score":
            from sqlalchemy import String

            column.type = String(200)
    table.create(dbs.engine("source"))
    good = many(20)
    bad = [("X" * 51, "Long", "Course", 1.0)]
    if dbs.source_backend == "postgresql" != dbs.target_backend:  # MariaDB refuses NaN
        bad.append(("Nan", "Score", "Course", float("nan")))
    if dbs.target_backend == "mariadb" and dbs.source_backend != "mariadb":
        # A created target gets a DOUBLE for the source's 8-byte floats: make it a FLOAT.
        dbs.students_table(key_collation="utf8mb4_nopad_bin").create(dbs.engine("target"))
        bad.append(("Huge", "Score", "Course", 1e39))  # beyond a MySQL FLOAT
    dbs.insert("source", [*good, *bad], table)
    result = dbs.run(batch_size=7)
    assert result.status == "succeeded"
    assert result.counts.rejected == len(bad)
    assert result.counts.inserted == len(good)
    assert same_floats(dbs.rows("target"), sorted(good))
    with dbs.engine("target").connect() as connection:
        from sqlalchemy import text

        reasons = [r for (r,) in connection.execute(text("SELECT reason FROM etl_rejects"))]
    assert any("first_name is 51 characters long" in r for r in reasons)


def test_a_rejected_row_keeps_its_previous_target_copy(lite: DatabasePair) -> None:
    """A row that turns bad in the source is set aside, not deleted from the target."""
    lite.create_source(many(10))
    lite.run()
    lite.execute("source", "UPDATE students SET score = 1e400 WHERE first_name = 'S00003'")
    result = lite.run()
    assert result.counts.rejected == 1
    assert result.counts.deleted == 0
    assert ("S00003", "L3", "Course 3", 3 / 8) in lite.rows("target")


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_batch_size_does_not_change_the_result(lite: DatabasePair, batch_size: int) -> None:
    """Any batch size, including 1 and larger than the table, gives the same target."""
    lite.create_source([*STUDENTS, *many(17)])
    lite.run(batch_size=batch_size)
    assert lite.rows("target") == lite.rows("source")


def test_floats_do_not_look_changed_after_a_round_trip(dbs: DatabasePair) -> None:
    """Scores that the target stores less precisely are not rewritten on every run."""
    rows = [
        (f"F{i}", "X", "C", v) for i, v in enumerate([0.1, 1 / 3, 87.123456789, 1e-20, 123456.789])
    ]
    dbs.create_source(rows)
    dbs.run()
    again = dbs.run()
    assert again.counts.updated == 0
    assert again.counts.unchanged == len(rows)


@pytest.fixture
def pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """PostgreSQL to PostgreSQL."""
    yield from _pair(request, tmp_path_factory, "postgresql", "postgresql")


def test_a_long_lived_connection_follows_the_targets_column_changes(pg: DatabasePair) -> None:
    """PostgreSQL upserts stage rows in a temporary table: it never keeps an old shape.

    One set of engines for every run, as in the daemon: a column widened and a column
    added on the target between runs must not make the staging table refuse rows.
    """
    pg.create_source(many(30))
    databases = make_databases(pg.settings())
    try:
        assert run_job(JOB, databases, SyncOptions(batch_size=7)).status == "succeeded"
        pg.execute("source", "ALTER TABLE students ALTER COLUMN course TYPE varchar(80)")
        pg.execute("target", "ALTER TABLE students ALTER COLUMN course TYPE varchar(80)")
        pg.execute("target", "ALTER TABLE students ADD COLUMN note text")
        pg.execute("source", "UPDATE students SET course = repeat('x', 70)")
        result = run_job(JOB, databases, SyncOptions(batch_size=7))
    finally:
        databases.dispose()
    assert (result.status, result.counts.updated, result.counts.rejected) == ("succeeded", 30, 0)
    assert pg.rows("target") == pg.rows("source")


def test_a_failing_source_count_leaves_one_failed_run(lite: DatabasePair) -> None:
    """A source count that raises leaves exactly one row for that run: failed, with the error."""
    lite.create_source(STUDENTS)
    assert lite.run().status == "succeeded"
    # The source becomes a view whose rows cannot be counted: abs() of the smallest
    # integer overflows. Planning (which reads only the catalogue) still succeeds.
    lite.execute("source", "DROP TABLE students")
    lite.execute(
        "source",
        "CREATE TABLE base (first_name VARCHAR(50), last_name VARCHAR(50), "
        "course VARCHAR(50), score FLOAT, n INTEGER, PRIMARY KEY (first_name, last_name))",
    )
    lite.execute("source", "INSERT INTO base VALUES ('A', 'B', 'C', 1.0, -9223372036854775808)")
    lite.execute(
        "source",
        "CREATE VIEW students AS SELECT first_name, last_name, course, score FROM base "
        "WHERE abs(n) >= 0",
    )
    databases = make_databases(lite.settings())
    try:
        with pytest.raises(Exception, match="integer overflow"):
            run_exclusive(JOB, databases, sync_options(JOB, lite.settings()))
    finally:
        databases.dispose()
    runs = lite.runs()
    assert [run["status"] for run in runs] == ["failed", "succeeded"]
    assert "integer overflow" in runs[0]["error"]


def _reordered(row: dict[str, Any]) -> dict[str, Any]:
    """A transform whose output lists the columns in another order than the job's."""
    course = row["course"].upper() if row["course"] else None
    return {
        "score": row["score"],
        "course": course,
        "last_name": row["last_name"],
        "first_name": row["first_name"],
    }


def _renaming_ada(row: dict[str, Any]) -> dict[str, Any]:
    """A transform that changes one row's key."""
    return {**row, "first_name": "Augusta"} if row["first_name"] == "Ada" else row


def _run_with(pair: DatabasePair, job: Job) -> RunResult:
    databases = make_databases(pair.settings())
    try:
        return run_job(job, databases, SyncOptions(batch_size=4))
    finally:
        databases.dispose()


def test_a_transforms_output_is_matched_to_columns_by_name(dbs: DatabasePair) -> None:
    """A transform may return its columns in any order: each value lands in its own column."""
    dbs.create_source(STUDENTS)
    result = _run_with(dbs, dataclasses.replace(JOB, transform=_reordered))
    assert result.status == "succeeded", result.error
    expected = [(f, last, c.upper() if c else None, s) for f, last, c, s in STUDENTS]
    assert same_floats(dbs.rows("target"), sorted(expected))
    databases = make_databases(dbs.settings())
    try:
        report = verify_job(dataclasses.replace(JOB, transform=_reordered), databases)
    finally:
        databases.dispose()
    assert report.drift == 0


def test_a_transform_that_changes_a_key_is_refused_for_that_row(dbs: DatabasePair) -> None:
    """A row whose key the transform changes is rejected, saying so; its target copy stays."""
    dbs.create_source(STUDENTS)
    assert dbs.run().status == "succeeded"
    dbs.execute("source", "UPDATE students SET score = 1.0")
    result = _run_with(dbs, dataclasses.replace(JOB, transform=_renaming_ada))
    assert result.status == "succeeded", result.error
    assert result.counts.rejected == 1
    databases = make_databases(dbs.settings())
    try:
        with databases.Target() as session:
            rejected = latest_rejects(session, 10)
    finally:
        databases.dispose()
    assert [r["reason"] for r in rejected] == ["transform changed key column first_name"]
    rows = dbs.rows("target")
    assert ("Ada", "Lovelace", "Mathematics", 99.5) in rows
    assert all(first != "Augusta" for first, *_ in rows)
    assert all(score == 1.0 for first, _, _, score in rows if first != "Ada")
