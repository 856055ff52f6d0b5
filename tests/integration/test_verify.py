"""``verify`` agrees with a naive full comparison, on every pairing, before and after repair."""

from __future__ import annotations

import subprocess

from etl.core.diff import diff_rows
from etl.engine.db import make_databases
from etl.engine.plan import make_plan
from etl.engine.verify import Report, describe, verify_job
from jobs.students import JOB
from tests.helpers.support import DatabasePair, python_m_etl

STUDENTS = [
    ("Ada", "Lovelace", "Mathematics", 99.5),
    ("Alan", "Turing", "Computer Science", 97.25),
    ("Grace", "Hopper", "Computer Science", 95.0),
    ("Zoë", "Dupré", "Art History", 61.5),
    ("Søren", "Kierkegaard", "Philosophy", None),
    ("Mei", "Chen", None, 72.0),
]


def many(count: int) -> list[tuple[str, str, str, float]]:
    return [(f"S{i:04d}", f"L{i % 7}", f"Course {i % 11}", i / 8) for i in range(count)]


def verify(dbs: DatabasePair, page_size: int = 7) -> Report:
    databases = make_databases(dbs.settings())
    try:
        return verify_job(JOB, databases, page_size=page_size, limit=10_000)
    finally:
        databases.dispose()


def naive(dbs: DatabasePair) -> set[tuple[str, tuple[object, ...]]]:
    """Every row of both sides in memory, compared by exact key with the sync's tolerances."""
    databases = make_databases(dbs.settings())
    try:
        plan = make_plan(
            JOB,
            databases.source_engine,
            databases.target_engine,
            source_name=None,
            target_name=None,
            create=False,
        )
    finally:
        databases.dispose()
    changes = diff_rows(
        dbs.rows("source"),
        dbs.rows("target") if plan.target_exists else [],
        key_length=2,
        equals=plan.equals,
        delete_missing=True,
    )
    return (
        {("missing", row[:2]) for row in changes.inserts}
        | {("changed", row[:2]) for row in changes.updates}
        | {("extra", key) for key in changes.deletes}
    )


def found(report: Report) -> set[tuple[str, tuple[object, ...]]]:
    assert report.drift == len(report.differences)
    return {(d.kind, d.key) for d in report.differences}


def test_a_synced_target_has_no_drift(dbs: DatabasePair) -> None:
    """After a run, verify finds nothing, as a full comparison does."""
    dbs.create_source([*STUDENTS, *many(60)])
    dbs.run(batch_size=20)
    report = verify(dbs)
    assert found(report) == naive(dbs) == set()
    assert (report.source_rows, report.target_rows) == (66, 66)
    if dbs.source_backend == dbs.target_backend != "sqlite":
        # Each database summarised its own ranges and they matched: no rows were fetched.
        assert report.ranges_compared == 0 < report.ranges
    assert "no drift" in describe(report)[-1]


def test_an_empty_or_missing_target_is_all_missing(dbs: DatabasePair) -> None:
    """Before the first run every source key is reported missing."""
    dbs.create_source([*STUDENTS, *many(10)])
    report = verify(dbs)
    assert report.counts["missing"] == 16
    assert found(report) == naive(dbs)


def test_hand_edits_are_reported_then_repaired(dbs: DatabasePair) -> None:
    """Changes, deletes and inserts on the target show up; the next run repairs them all."""
    dbs.create_source([*STUDENTS, *many(60)])
    dbs.run(batch_size=20)
    dbs.execute("target", "UPDATE students SET course = 'Forged' WHERE first_name = 'S0011'")
    dbs.execute("target", "UPDATE students SET score = 1.5 WHERE first_name = 'Ada'")
    dbs.execute("target", "UPDATE students SET course = NULL WHERE first_name = 'Alan'")
    dbs.execute("target", "DELETE FROM students WHERE first_name IN ('S0030', 'Mei')")
    dbs.insert("target", [("Intruder", "X", "None", 1.0), ("S0030x", "L2", "C", 2.0)])

    report = verify(dbs)

    assert found(report) == naive(dbs)
    assert report.counts == {"missing": 2, "extra": 2, "changed": 3}
    assert dbs.run(batch_size=20).status == "succeeded"
    assert found(verify(dbs)) == naive(dbs) == set()


def test_a_key_respelled_on_the_target_is_drift(dbs: DatabasePair) -> None:
    """'ada' on the target is not the source's 'Ada', even where the collation says equal."""
    dbs.create_source([*STUDENTS, *many(20)])
    dbs.run(batch_size=20)
    dbs.execute("target", "UPDATE students SET first_name = 'ada' WHERE first_name = 'Ada'")
    report = verify(dbs, page_size=3)
    assert (
        found(report)
        == naive(dbs)
        == {
            ("missing", ("Ada", "Lovelace")),
            ("extra", ("ada", "Lovelace")),
        }
    )
    dbs.run(batch_size=20)
    assert found(verify(dbs, page_size=3)) == set()


def test_the_limit_caps_printed_keys_not_the_count(dbs: DatabasePair) -> None:
    """With --limit 2 only two keys are listed but every difference is counted."""
    dbs.create_source(many(30))
    databases = make_databases(dbs.settings())
    try:
        report = verify_job(JOB, databases, page_size=4, limit=2)
    finally:
        databases.dispose()
    assert report.drift == 30
    assert len(report.differences) == 2
    assert describe(report)[2] == "... and 28 more"


def test_the_command_exits_5_on_drift_and_0_when_clean(lite: DatabasePair) -> None:
    """``python -m etl verify`` prints the differing keys and maps drift to exit code 5."""
    lite.create_source(many(12))
    env = lite.environ()
    drift = subprocess.run(
        python_m_etl("verify", "students", "--limit", "3"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert drift.returncode == 5, drift.stderr
    assert drift.stdout.splitlines()[0] == "missing  ['S0000', 'L0']"
    assert "12 keys differ" in drift.stdout
    lite.run()
    clean = subprocess.run(
        python_m_etl("verify"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert clean.returncode == 0, clean.stderr
    assert "no drift" in clean.stdout
