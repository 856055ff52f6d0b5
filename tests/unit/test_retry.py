"""Error classification and the retry loop: pure, no database."""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import pytest
from sqlalchemy.exc import OperationalError as SAOperationalError
from structlog.testing import capture_logs

from etl.config import RetrySettings
from etl.engine.db import describe_error
from etl.engine.retry import classify, with_retries
from etl.errors import ConfigError, DatabaseUnreachable

FAST = RetrySettings(attempts=4, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found"), "transient"),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), "transient"),
        (pymysql.err.OperationalError(2006, "MySQL server has gone away"), "transient"),
        (pymysql.err.OperationalError(2013, "Lost connection"), "transient"),
        (pymysql.err.OperationalError(2003, "Can't connect"), "transient"),
        (pymysql.err.OperationalError(1927, "Connection was killed"), "transient"),
        (pymysql.err.OperationalError(4031, "Disconnected by the server"), "transient"),
        (pymysql.err.InterfaceError(0, ""), "transient"),
        (pymysql.err.IntegrityError(4025, "CONSTRAINT `ck` failed"), "data"),
        (pymysql.err.DataError(1406, "Data too long"), "data"),
        (pymysql.err.OperationalError(1644, "signalled"), "data"),
        (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), "permanent"),
        (pymysql.err.OperationalError(1045, "Access denied"), "permanent"),
        (pymysql.err.ProgrammingError(1146, "Table doesn't exist"), "permanent"),
        (psycopg.errors.lookup("40001")("could not serialize"), "transient"),
        (psycopg.errors.lookup("40P01")("deadlock detected"), "transient"),
        (psycopg.errors.lookup("57P01")("terminating connection"), "transient"),
        (psycopg.errors.lookup("08006")("connection failure"), "transient"),
        (psycopg.OperationalError("server closed the connection unexpectedly"), "transient"),
        (psycopg.errors.lookup("23514")("violates check constraint"), "data"),
        (psycopg.errors.lookup("22001")("value too long"), "data"),
        (psycopg.errors.lookup("P0001")("raised by trigger"), "data"),
        (psycopg.errors.lookup("42601")("syntax error"), "permanent"),
        (psycopg.errors.lookup("42501")("permission denied"), "permanent"),
        (sqlite3.OperationalError("database is locked"), "transient"),
        (sqlite3.IntegrityError("CHECK constraint failed"), "data"),
        (sqlite3.OperationalError("no such table: students"), "permanent"),
        (DatabaseUnreachable("target", "mysql://db", "refused"), "transient"),
        (ConfigError("bad"), "permanent"),
        (ValueError("a bug"), "permanent"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value,
)
def test_errors_are_classified(error: BaseException, kind: str) -> None:
    """Each driver's error codes map to transient, data or permanent."""
    assert classify(error) == kind


def test_wrapped_errors_are_classified_by_their_cause() -> None:
    """SQLAlchemy's wrapper is judged by the driver error inside it."""
    wrapped = SAOperationalError("SELECT 1", {}, pymysql.err.OperationalError(1213, "Deadlock"))
    assert classify(wrapped) == "transient"


def test_transient_errors_are_retried_with_backoff_and_logged() -> None:
    """Two deadlocks, then success: three attempts, two ``batch_retry`` events, two sleeps."""
    calls: list[int] = []
    sleeps: list[float] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise pymysql.err.OperationalError(1213, "Deadlock found")
        return "done"

    with capture_logs() as logs:
        result = with_retries(FAST, work, describe=describe_error, sleep=sleeps.append, phase="x")
    assert result == "done"
    assert len(calls) == 3
    assert sleeps == [0.01, 0.02]
    retries = [entry for entry in logs if entry["event"] == "batch_retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert all("1213" in entry["error"] and entry["phase"] == "x" for entry in retries)


def test_permanent_errors_fail_at_once() -> None:
    """A syntax error is not retried."""
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise pymysql.err.ProgrammingError(1064, "syntax")

    with pytest.raises(pymysql.err.ProgrammingError):
        with_retries(FAST, work, describe=describe_error, sleep=lambda _: None)
    assert len(calls) == 1


def test_retries_stop_after_the_configured_attempts() -> None:
    """The last transient error is raised once the attempts are spent."""
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise pymysql.err.OperationalError(2013, "Lost connection")

    with pytest.raises(pymysql.err.OperationalError):
        with_retries(FAST, work, describe=describe_error, sleep=lambda _: None)
    assert len(calls) == FAST.attempts


def test_retries_stop_before_the_time_budget_would_pass() -> None:
    """No attempt is started once waiting for it would exceed ``total_seconds``."""
    policy = RetrySettings(
        attempts=100, initial_backoff=0.2, max_backoff=0.2, total_seconds=0.5, jitter=0.0
    )
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise pymysql.err.OperationalError(2003, "refused")

    with pytest.raises(pymysql.err.OperationalError):
        with_retries(policy, work, describe=describe_error)
    assert 2 <= len(calls) <= 3


def test_mysql_error_numbers_win_over_the_generic_sqlstate() -> None:
    """PyMySQL tags most errors HY000; the error number decides (1205 is transient)."""
    error = pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
    error.sqlstate = "HY000"  # type: ignore[attr-defined]
    assert classify(error) == "transient"
