"""Rows the target refuses (a constraint the validator cannot see) never sink a batch."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from structlog.testing import capture_logs

from etl.engine.db import make_databases
from etl.engine.state import latest_rejects
from etl.engine.state import rejects as state_rejects
from tests.helpers.support import DatabasePair, same_floats


def forbid_negative_scores(dbs: DatabasePair) -> None:
    """A rule only the target knows: a CHECK constraint, or triggers on SQLite."""
    if dbs.target_backend == "sqlite":
        for event in ("INSERT", "UPDATE"):
            dbs.execute(
                "target",
                f"CREATE TRIGGER no_negative_{event.lower()} BEFORE {event} ON students "
                "WHEN NEW.score < 0 BEGIN SELECT RAISE(ABORT, 'score must not be negative'); END",
            )
        return
    dbs.execute("target", "ALTER TABLE students ADD CONSTRAINT ck_score CHECK (score >= 0)")


def rejects(dbs: DatabasePair) -> list[dict[str, object]]:
    databases = make_databases(dbs.settings())
    try:
        with databases.Target() as session:
            return latest_rejects(session, 100, "students")
    finally:
        databases.dispose()


def students(count: int) -> list[tuple[str, str, str, float]]:
    return [(f"S{i:04d}", f"L{i % 3}", f"Course {i % 5}", float(i)) for i in range(count)]


def test_refused_rows_are_set_aside_and_the_rest_commits(dbs: DatabasePair) -> None:
    """Rows the target refuses go to etl_rejects with its message; the rest of the batch lands."""
    dbs.create_source(students(90))
    assert dbs.run(batch_size=25).status == "succeeded"
    forbid_negative_scores(dbs)
    bad_updates = ("S0003", "S0040", "S0077")
    dbs.execute("source", "UPDATE students SET score = -1 WHERE first_name IN ('S0003', 'S0040')")
    dbs.execute("source", "UPDATE students SET score = -5 WHERE first_name = 'S0077'")
    dbs.execute("source", "UPDATE students SET course = 'Logic' WHERE first_name = 'S0041'")
    dbs.insert("source", [("New", "Bad", "X", -2.0), ("New", "Good", "Y", 2.0)])

    with capture_logs() as logs:
        result = dbs.run(batch_size=25)

    assert result.status == "succeeded", result.error
    assert result.counts.rejected == 4
    assert (result.counts.inserted, result.counts.updated) == (1, 1)
    assert any(entry["event"] == "batch_isolating_rows" for entry in logs)
    reasons = {str(r["row_key"]): str(r["reason"]) for r in rejects(dbs)}
    assert set(reasons) == {f'["{k}", "L{int(k[1:]) % 3}"]' for k in bad_updates} | {
        '["New", "Bad"]'
    }
    # The database's own words: the constraint's name, or the trigger's message.
    assert all("ck_score" in r or "negative" in r for r in reasons.values()), reasons
    expected = [
        row for row in dbs.rows("source") if row[0] not in bad_updates and row[:2] != ("New", "Bad")
    ]
    old = {row[:2]: row for row in students(90)}
    expected += [old[(k, f"L{int(k[1:]) % 3}")] for k in bad_updates]
    assert same_floats(dbs.rows("target"), sorted(expected, key=lambda r: (r[0], r[1])))


def test_fixed_rows_are_picked_up_by_the_next_run(dbs: DatabasePair) -> None:
    """Once the source is corrected, the next run writes the rows it set aside."""
    dbs.create_source(students(40))
    dbs.run(batch_size=15)
    forbid_negative_scores(dbs)
    dbs.execute("source", "UPDATE students SET score = -1 WHERE first_name IN ('S0001', 'S0020')")
    dbs.insert("source", [("New", "Bad", "X", -2.0)])
    assert dbs.run(batch_size=15).counts.rejected == 3

    dbs.execute("source", "UPDATE students SET score = 7.5 WHERE score < 0")
    result = dbs.run(batch_size=15)

    assert result.status == "succeeded"
    assert result.counts.rejected == 0
    assert (result.counts.inserted, result.counts.updated) == (1, 2)
    assert same_floats(dbs.rows("target"), dbs.rows("source"))


def test_a_batch_recorded_twice_keeps_one_reject_per_key(maria: DatabasePair) -> None:
    """A batch redone after a lost COMMIT records its rejects again: replaced, not doubled."""
    from etl.core.keys import decode_key
    from etl.engine.results import utc_now
    from etl.engine.state import create_state_tables, record_rejects

    columns = ("first_name", "last_name", "course", "score")
    bad = [(("A", "B", "x", -1.0), "score must not be negative"), (("C", "D", None, -2.0), "no")]
    databases = make_databases(maria.settings())
    try:
        for attempt in range(2):
            with databases.Target() as session:
                create_state_tables(session)
                record_rejects(session, "run-1", "students", columns, bad, 2, utc_now())
                if attempt:  # another run's record of the same key stays its own
                    record_rejects(session, "run-2", "students", columns, bad[:1], 2, utc_now())
                session.commit()
            with databases.Target() as session:  # keys equal only to a case-blind collation
                for first in ("Anna", "anna"):
                    row = ((first, "B", None, -1.0), "no")
                    record_rejects(session, "run-3", "students", columns, [row], 2, utc_now())
                session.commit()
    finally:
        databases.dispose()
    with maria.engine("target").connect() as connection:  # every run's, not only the latest
        recorded = connection.execute(select(state_rejects.c.run_id, state_rejects.c.row_key))
        found = sorted((run_id, decode_key(str(key))) for run_id, key in recorded)
    assert found == [
        ("run-1", ("A", "B")),
        ("run-1", ("C", "D")),
        ("run-2", ("A", "B")),
        ("run-3", ("Anna", "B")),
        ("run-3", ("anna", "B")),
    ]


def test_rejects_lists_each_jobs_latest_run_that_had_any(dbs: DatabasePair) -> None:
    """Only each job's most recent run with rejects is listed, newest first, up to the limit."""
    from etl.core.counts import Counts
    from etl.engine.results import utc_now
    from etl.engine.state import create_state_tables, finish_run, record_rejects, start_run

    columns = ("first_name", "last_name", "course", "score")
    runs = [  # oldest first: (run id, job, rejected first names)
        ("students-1", "students", ["Old1", "Old2"]),
        ("teachers-1", "teachers", ["T1", "T2"]),
        ("students-2", "students", ["New1"]),
        ("students-3", "students", []),  # a clean run since: its predecessor's are still news
    ]
    databases = make_databases(dbs.settings())
    try:
        with databases.Target() as session:
            create_state_tables(session)
            for number, (run_id, job, names) in enumerate(runs):
                now = utc_now() + timedelta(seconds=number)
                start_run(session, run_id, job, "range", now, None, "host", 1)
                bad = [((name, "x", "c", -1.0), f"bad {name}") for name in names]
                record_rejects(session, run_id, job, columns, bad, 2, now)
                finish_run(session, run_id, "succeeded", now, Counts(rejected=len(bad)), None)
                session.commit()
        with databases.Target() as session:
            every = [str(r["row_key"]) for r in latest_rejects(session, 100)]
            one_job = [str(r["row_key"]) for r in latest_rejects(session, 100, "students")]
            limited = [str(r["row_key"]) for r in latest_rejects(session, 2)]
    finally:
        databases.dispose()
    assert every == ['["New1", "x"]', '["T2", "x"]', '["T1", "x"]']
    assert one_job == ['["New1", "x"]']
    assert limited == ['["New1", "x"]', '["T2", "x"]']
