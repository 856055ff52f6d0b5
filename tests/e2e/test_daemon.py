"""The daemon end to end: real processes, real signals, real MariaDB, real HTTP."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers.daemon_support import (
    Launcher,
    Process,
    free_port,
    http_get,
    runs,
    students,
    target_count,
    wait_for,
)
from tests.helpers.support import REPO, DatabasePair, python_m_etl

pytestmark = pytest.mark.slow

BATCH = 100
STOP_TIMEOUT = 20


@contextmanager
def changing_source(pair: DatabasePair, every: float = 0.5) -> Iterator[None]:
    """Keep changing every source score, so each run has rows to write in every batch.

    An unchanged table is compared by checksums in a moment; runs that write keep
    going batch by batch, which is what tests that act mid-run need.
    """
    done = threading.Event()

    def touch() -> None:
        while not done.wait(every):
            pair.execute("source", "UPDATE students SET score = score + 1")

    thread = threading.Thread(target=touch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Starts ``python -m etl`` processes; kills any still running when the test ends."""
    processes = Launcher(tmp_path)
    yield processes
    processes.kill_all()


def daemon_env(pair: DatabasePair, *, pause: float = 0.0, **extra: str) -> dict[str, str]:
    """A one-second interval, small batches, an optional pause to make a run last."""
    settings = {
        "ETL_JOB_STUDENTS_INTERVAL": "1",
        "ETL_JOB_STUDENTS_BATCH_SIZE": str(BATCH),
        "ETL_SYNC_PAUSE_BETWEEN_BATCHES": str(pause),
        "ETL_DAEMON_HEALTH_PORT": "0",
        "ETL_DAEMON_STOP_TIMEOUT": str(STOP_TIMEOUT),
    }
    return pair.environ(**{**settings, **extra})


def running_run(pair: DatabasePair, min_rows: int = 1) -> dict[str, Any] | None:
    """The run in progress once it has committed ``min_rows`` rows, else None."""
    for run in runs(pair):
        if run["status"] == "running" and run["rows_read"] >= min_rows:
            return run
    return None


def succeeded(pair: DatabasePair) -> list[dict[str, Any]]:
    return [run for run in runs(pair) if run["status"] == "succeeded"]


def stop(process: Process, timeout: float = STOP_TIMEOUT + 10) -> tuple[int, float]:
    """SIGTERM, then the exit code and the seconds it took to exit."""
    sent = time.monotonic()
    process.signal(signal.SIGTERM)
    code = process.wait(timeout)
    return code, time.monotonic() - sent


def assert_no_overlap(history: list[dict[str, Any]]) -> None:
    """Every run ended before the next one started."""
    ordered = sorted(history, key=lambda run: run["started_at"])
    for before, after in itertools.pairwise(ordered):
        assert before["finished_at"] is not None, before
        assert before["finished_at"] <= after["started_at"], (before, after)


def test_daemon_runs_on_its_interval_and_converges(maria: DatabasePair, launcher: Launcher) -> None:
    """Runs land in the history every tick and the target follows source changes."""
    maria.create_source(students(250))
    daemon = launcher.start("daemon", env=daemon_env(maria))
    wait_for(lambda: len(succeeded(maria)) >= 2, 60, "two succeeded runs")
    assert maria.rows("target") == maria.rows("source")
    maria.execute("source", "DELETE FROM students WHERE first_name < 's00010'")
    maria.insert("source", [("new", "student", "art", 1.0)])
    wait_for(lambda: maria.rows("target") == maria.rows("source"), 60, "the change to arrive")
    code, _ = stop(daemon)
    assert code == 0, daemon.output()[-3000:]
    assert daemon.events("job_scheduled")[0]["schedule"] == "every 1s"


def test_sigterm_mid_run_commits_the_batch_and_exits_0(
    maria: DatabasePair, launcher: Launcher
) -> None:
    """SIGTERM mid-run: exit 0 within the bound, run interrupted, whole batches only."""
    source = students(2000)
    maria.create_source(source)
    daemon = launcher.start("daemon", env=daemon_env(maria, pause=0.3))
    wait_for(lambda: running_run(maria, min_rows=3 * BATCH), 60, "a run three batches in")
    code, seconds = stop(daemon)
    assert code == 0, daemon.output()[-3000:]
    assert seconds < STOP_TIMEOUT
    [run] = runs(maria)
    assert run["status"] == "interrupted"
    copied = target_count(maria)
    assert copied % BATCH == 0
    assert 0 < copied < len(source)
    assert copied == run["inserted"] == run["rows_read"]
    assert maria.rows("target") == sorted(source)[:copied]  # exactly the first batches
    with maria.engine("target").connect() as connection:
        last_key = connection.execute(text("SELECT last_key FROM etl_checkpoints")).scalar_one()
    assert json.loads(last_key) == list(sorted(source)[copied - 1][:2])
    print(f"SIGTERM to exit: {seconds:.2f}s")


def test_sigkill_mid_run_then_restart_converges(maria: DatabasePair, launcher: Launcher) -> None:
    """After SIGKILL a restarted daemon resumes, converges, and marks the dead run abandoned."""
    source = students(1500)
    maria.create_source(source)
    first = launcher.start("daemon", env=daemon_env(maria, pause=0.2))
    wait_for(lambda: running_run(maria, min_rows=2 * BATCH), 60, "a run two batches in")
    first.signal(signal.SIGKILL)
    first.wait(30)
    [dead] = runs(maria)
    assert dead["status"] == "running"
    second = launcher.start("daemon", env=daemon_env(maria))
    wait_for(lambda: succeeded(maria), 90, "a run to succeed after the restart")
    assert target_count(maria) == len(source)
    assert maria.rows("target") == sorted(source)
    statuses = {run["run_id"]: run["status"] for run in runs(maria)}
    assert statuses[dead["run_id"]] == "abandoned"
    assert stop(second)[0] == 0


def test_two_daemons_never_overlap_and_one_takes_over(
    maria: DatabasePair, launcher: Launcher
) -> None:
    """Two replicas: runs never overlap; when one is killed mid-run the other carries on."""
    maria.create_source(students(500))
    env = daemon_env(maria, pause=0.3)  # runs of ~2 s: the kill lands mid-run
    one, two = launcher.start("daemon", env=env), launcher.start("daemon", env=env)
    with changing_source(maria):
        wait_for(lambda: len(succeeded(maria)) >= 4, 90, "four succeeded runs")
        victim = wait_for(lambda: running_run(maria), 60, "a run in progress")
    killed, survivor = (one, two) if victim["pid"] == one.pid else (two, one)
    killed.signal(signal.SIGKILL)
    killed.wait(30)
    # The victim held the lock until it died: a survivor run that started later came after.
    wait_for(
        lambda: [
            run
            for run in succeeded(maria)
            if run["pid"] == survivor.pid and run["started_at"] > victim["started_at"]
        ],
        60,
        "the surviving daemon to run the job",
    )
    history = runs(maria)
    assert {run["pid"] for run in history} == {one.pid, two.pid}  # both did run it
    assert_no_overlap([run for run in history if run["status"] != "running"])
    assert {run["run_id"]: run["status"] for run in history}[victim["run_id"]] == "abandoned"
    assert stop(survivor)[0] == 0
    assert_no_overlap(runs(maria))
    skipped = [e for d in (one, two) for e in d.events("run_skipped") if e["reason"] == "locked"]
    assert skipped, "ticks while the other replica held the lock should have been skipped"


def test_one_shot_run_while_the_daemon_runs_exits_4(
    maria: DatabasePair, launcher: Launcher
) -> None:
    """``run`` during a daemon's run skips with exit code 4 and a clear line."""
    maria.create_source(students(2000))
    daemon = launcher.start("daemon", env=daemon_env(maria, pause=0.3))
    wait_for(lambda: running_run(maria), 60, "the daemon's run to start")
    result = subprocess.run(
        python_m_etl("run"),
        env=maria.environ(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert "etl: job 'students' is already running in another process; skipped" in result.stderr
    assert [run["pid"] for run in runs(maria)] == [daemon.pid]  # no run recorded by it
    assert stop(daemon)[0] == 0


def test_one_shot_run_stops_after_the_batch_on_sigterm(
    maria: DatabasePair, launcher: Launcher
) -> None:
    """SIGTERM to ``run``: the batch commits, the run is interrupted, exit code 130."""
    source = students(2000)
    maria.create_source(source)
    env = maria.environ(
        ETL_JOB_STUDENTS_BATCH_SIZE=str(BATCH), ETL_SYNC_PAUSE_BETWEEN_BATCHES="0.3"
    )
    one_shot = launcher.start("run", env=env)
    wait_for(lambda: running_run(maria, min_rows=2 * BATCH), 60, "the run two batches in")
    code, seconds = stop(one_shot)
    assert code == 130, one_shot.output()[-3000:]
    [run] = runs(maria)
    assert run["status"] == "interrupted"
    assert target_count(maria) == run["inserted"]
    assert target_count(maria) % BATCH == 0
    assert "students: interrupted" in one_shot.output()
    assert seconds < STOP_TIMEOUT


def test_healthz_and_metrics_over_http(maria: DatabasePair, launcher: Launcher) -> None:
    """``/healthz`` says ok with both databases reachable; ``/metrics`` counts runs and rows."""
    maria.create_source(students(120))
    port = free_port()
    daemon = launcher.start("daemon", env=daemon_env(maria, ETL_DAEMON_HEALTH_PORT=str(port)))
    wait_for(lambda: succeeded(maria), 60, "a succeeded run")

    def metrics() -> str:
        status, content_type, body = http_get(port, "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=")
        return body

    wait_for(lambda: 'etl_runs_total{job="students",status="succeeded"}' in metrics(), 30, "runs")
    body = metrics()
    assert 'etl_rows_total{job="students",kind="inserted"} 120.0' in body
    assert 'etl_rows_total{job="students",kind="unchanged"}' in body
    assert 'etl_last_success_timestamp_seconds{job="students"}' in body
    assert 'etl_run_duration_seconds_count{job="students"}' in body
    status, content_type, health = http_get(port, "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(health) == {
        "status": "ok",
        "scheduler": "running",
        "databases": {"source": {"reachable": True}, "target": {"reachable": True}},
    }
    assert http_get(port, "/nothing")[0] == 404
    assert stop(daemon)[0] == 0


def test_daemon_survives_an_unreachable_database(maria: DatabasePair, launcher: Launcher) -> None:
    """Target down: each tick logs the failure, /healthz says 503, the daemon keeps going."""
    port = free_port()
    closed = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nowhere"
    env = daemon_env(
        maria,
        ETL_TARGET_URL=closed,
        ETL_DAEMON_HEALTH_PORT=str(port),
        ETL_TARGET_CONNECT_TIMEOUT="1",
    )
    daemon = launcher.start("daemon", env=env)
    wait_for(lambda: len(daemon.events("run_failed")) >= 2, 60, "two failed ticks")
    assert daemon.alive()
    assert "Can't connect" in daemon.events("run_failed")[0]["error"]
    status, _, body = http_get(port, "/healthz")
    assert status == 503
    details = json.loads(body)
    assert details["status"] == "unhealthy"
    assert details["databases"]["target"]["reachable"] is False
    assert details["databases"]["source"] == {"reachable": True}
    assert stop(daemon)[0] == 0


def test_source_down_runs_are_recorded_failed_and_retried(
    maria: DatabasePair, launcher: Launcher
) -> None:
    """With the target up, a failing source is recorded as failed runs, one per tick."""
    maria.create_source(students(10))
    daemon = launcher.start("daemon", env=daemon_env(maria))
    wait_for(lambda: succeeded(maria), 60, "a first run (it creates the run history)")
    maria.execute("source", "RENAME TABLE students TO students_gone")
    wait_for(
        lambda: len([r for r in runs(maria) if r["status"] == "failed"]) >= 2,
        60,
        "two failed runs",
    )
    assert daemon.alive()
    maria.execute("source", "RENAME TABLE students_gone TO students")
    count = len(succeeded(maria))
    wait_for(lambda: len(succeeded(maria)) > count, 60, "recovery at a later tick")
    assert stop(daemon)[0] == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ETL_JOB_STUDENTS_SCHEDULE", "every five minutes", "is not a cron expression"),
        ("ETL_JOB_STUDENTS_SCHEDULE", "*/5 25 * * *", "is not valid"),
        ("ETL_JOB_STUDENTS_TIMEZONE", "Europe/Atlantis", "is not a known time zone"),
    ],
)
def test_bad_schedule_is_a_start_up_error(
    lite: DatabasePair, variable: str, value: str, message: str
) -> None:
    """A bad cron expression or time zone: exit 2 at once with one clear line."""
    result = subprocess.run(
        python_m_etl("daemon"),
        env=lite.environ(**{variable: value}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("etl: error: [jobs.students] ")
    assert message in lines[0]


def test_jobs_lists_schedule_and_next_run(lite: DatabasePair) -> None:
    """``jobs`` prints each job with its schedule and next fire time."""
    result = subprocess.run(
        python_m_etl("jobs"),
        env=lite.environ(ETL_JOB_STUDENTS_SCHEDULE="0 6 * * 1-5", ETL_JOB_STUDENTS_TIMEZONE="UTC"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    header, line = result.stdout.splitlines()
    assert header.split() == ["JOB", "ENABLED", "TABLE", "KEY", "SCHEDULE", "NEXT", "RUN", "(UTC)"]
    assert line.startswith("students  yes      students  first_name, last_name  cron '0 6 * * 1-5'")
    assert line.endswith(" 06:00:00")
