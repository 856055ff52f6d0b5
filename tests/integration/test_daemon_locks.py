"""The per-job run lock in the target, and the locked run path both ``run`` and the daemon take."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, make_url, text

from etl.config import DatabaseSettings
from etl.dialects.mysql import lock_name as mysql_lock_name
from etl.engine.db import make_databases, make_engine
from etl.engine.results import RunResult, SyncOptions, utc_now
from etl.engine.state import create_state_tables, start_run
from etl.errors import LockBusy, TableMissing
from etl.service.locks import job_lock
from etl.service.runner import run_exclusive, sync_options
from jobs.students import JOB
from tests.helpers.daemon_support import runs, students, wait_for
from tests.helpers.support import REPO, DatabasePair


@pytest.fixture
def engines(dbs: DatabasePair) -> Iterator[tuple[Engine, Engine]]:
    """Two independent engines on the target, as two processes would have."""
    pair = tuple(make_engine(DatabaseSettings(url=dbs.target_url), "target") for _ in range(2))
    yield pair  # type: ignore[misc]
    for engine in pair:
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        engine.dispose()


def test_lock_is_exclusive_while_held(engines: tuple[Engine, Engine]) -> None:
    """While one holder has the job's lock another gets LockBusy; after release it can take it."""
    first, second = engines
    busy = pytest.raises(LockBusy, match="'students' is already running in another process")
    with job_lock(first, "students"), busy, job_lock(second, "students"):
        pass  # pragma: no cover
    with job_lock(second, "students"):
        pass


def test_locks_of_different_jobs_are_independent(engines: tuple[Engine, Engine]) -> None:
    """Each job has its own lock."""
    first, second = engines
    with job_lock(first, "students"), job_lock(second, "teachers"):
        pass


def test_lock_is_released_when_its_holder_is_killed(dbs: DatabasePair) -> None:
    """SIGKILL of the holding process frees the lock: the server or kernel cleans up."""
    holder = textwrap.dedent(
        f"""
        import sys, time
        from etl.config import DatabaseSettings
        from etl.engine.db import make_engine
        from etl.service.locks import job_lock
        with job_lock(make_engine(DatabaseSettings(url={dbs.target_url!r}), "target"), "students"):
            print("locked", flush=True)
            time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    engine = make_engine(DatabaseSettings(url=dbs.target_url), "target")
    try:
        assert process.stdout is not None
        lines = iter(process.stdout.readline, "")
        assert any(line.strip() == "locked" for line in lines)  # after structlog's own lines
        with pytest.raises(LockBusy), job_lock(engine, "students"):
            pass  # pragma: no cover
        process.kill()
        process.wait(30)

        def free() -> bool:
            try:
                with job_lock(engine, "students"):
                    return True
            except LockBusy:
                return False

        wait_for(free, 15, "the dead holder's lock to be released")
    finally:
        process.kill()
        process.wait(30)
        engine.dispose()


def test_mysql_lock_names_fit_the_server_limit() -> None:
    """GET_LOCK names are at most 64 characters and name the database (locks are server-wide)."""
    assert mysql_lock_name("school", "students") == "etl:school:students"
    long_name = mysql_lock_name("d" * 60, "students")
    assert len(long_name) == 64
    assert long_name != mysql_lock_name("e" * 60, "students")


def test_locked_run_marks_this_jobs_stale_running_runs_abandoned(maria: DatabasePair) -> None:
    """A ``running`` row left by a dead process becomes ``abandoned`` when the lock is taken."""
    maria.create_source(students(10))
    databases = make_databases(maria.settings())
    try:
        with databases.Target() as session:
            create_state_tables(session)
            start_run(session, "dead-run", "students", "range", utc_now(), None, "gone", 1)
            start_run(session, "other-job", "teachers", "range", utc_now(), None, "gone", 1)
            session.commit()
        result = run_exclusive(JOB, databases, SyncOptions(batch_size=4))
    finally:
        databases.dispose()
    assert result.status == "succeeded"
    by_id = {run["run_id"]: run for run in runs(maria)}
    assert by_id["dead-run"]["status"] == "abandoned"
    assert by_id["dead-run"]["finished_at"] is not None
    assert by_id["other-job"]["status"] == "running"  # another job's runs are not ours to judge
    assert by_id[result.run_id]["status"] == "succeeded"


def test_run_that_fails_before_starting_is_recorded_failed(maria: DatabasePair) -> None:
    """A source table gone since the last run raises as before, and the history shows it failed."""
    maria.create_source(students(3))
    databases = make_databases(maria.settings())
    try:
        assert run_exclusive(JOB, databases, SyncOptions()).status == "succeeded"
        maria.execute("source", "DROP TABLE students")
        with pytest.raises(TableMissing):
            run_exclusive(JOB, databases, sync_options(JOB, maria.settings()))
    finally:
        databases.dispose()
    [_, failed] = runs(maria)
    assert failed["status"] == "failed"
    assert "students" in failed["error"]


def test_dry_run_takes_no_lock(maria: DatabasePair) -> None:
    """A dry run writes nothing, so it may look while another process holds the lock."""
    maria.create_source(students(5))
    databases = make_databases(maria.settings())
    holder = make_engine(DatabaseSettings(url=maria.target_url), "target")
    try:
        with job_lock(holder, "students"):
            result = run_exclusive(JOB, databases, SyncOptions(dry_run=True))
            with pytest.raises(LockBusy):
                run_exclusive(JOB, databases, SyncOptions())
    finally:
        databases.dispose()
        holder.dispose()
    assert result.status == "succeeded"
    assert result.counts.inserted == 5


def committed_rows(pair: DatabasePair) -> int:
    """Rows a run has committed to the target so far (0 before it made the table)."""
    try:
        return len(pair.rows("target"))
    except Exception:  # the table does not exist yet
        return 0


def test_a_run_whose_lock_connection_dies_stops_failed(maria: DatabasePair) -> None:
    """The lock's session killed mid-run: the batch in flight rolls back, the run says why."""
    maria.create_source(students(60))
    databases = make_databases(maria.settings())
    name = mysql_lock_name(make_url(maria.target_url).database, "students")
    found: list[RunResult] = []
    options = SyncOptions(batch_size=4, pause_between_batches=0.2)
    worker = threading.Thread(target=lambda: found.append(run_exclusive(JOB, databases, options)))
    worker.start()
    try:
        with maria.engine("target").connect() as admin:
            holder = wait_for(
                lambda: admin.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar(),
                10,
                "the run to take its lock",
            )
            wait_for(lambda: committed_rows(maria), 10, "a first batch to commit")
            admin.execute(text(f"KILL {int(holder)}"))
        worker.join(30)
    finally:
        databases.dispose()
    [result] = found
    assert result.status == "failed"
    assert "lost its run lock" in (result.error or "")
    assert 0 < result.counts.inserted < 60
    assert set(maria.rows("target")) <= set(maria.rows("source"))
    assert maria.run().status == "succeeded"  # the next run, with the lock, completes it
    assert maria.rows("target") == maria.rows("source")
