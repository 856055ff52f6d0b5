"""Which database errors a retry can cure, and retrying a whole batch until a budget runs out.

Three kinds of failure matter to the engine:

* ``transient``: the database or the network had a bad moment (deadlock, lock wait
  timeout, lost or refused connection, server shutting down). Redoing the whole batch
  (source read and target transaction) is safe because writes are by key and the
  checkpoint commits with them; it is worth it because the next attempt usually works.
* ``data``: the target refused one or more rows (constraint, trigger, value out of
  range). Retrying the same rows cannot help; splitting the batch can (``etl.sync``).
* ``permanent``: everything else (syntax, permissions, missing tables, bugs): fail now.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from etl.config import RetrySettings
from etl.errors import EtlError

log = structlog.get_logger("etl.engine.retry")

Kind = Literal["transient", "data", "permanent"]
T = TypeVar("T")

# MySQL/MariaDB error numbers (server ER_* and client CR_*).
MYSQL_TRANSIENT = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN
        1158,  # ER_NET_READ_ERROR
        1159,  # ER_NET_READ_INTERRUPTED
        1160,  # ER_NET_ERROR_ON_WRITE
        1161,  # ER_NET_WRITE_INTERRUPTED
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2002,  # CR_CONNECTION_ERROR (socket)
        2003,  # CR_CONN_HOST_ERROR: connection refused
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2055,  # CR_SERVER_LOST_EXTENDED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT: idle connection closed by the server
    }
)
MYSQL_DATA = frozenset(
    {
        1048,  # column cannot be null
        1062,  # duplicate entry (a unique index besides the key)
        1264,  # out of range value
        1265,  # data truncated
        1292,  # incorrect value
        1366,  # incorrect string value
        1406,  # data too long
        1451,  # foreign key: row is referenced
        1452,  # foreign key: parent row missing
        1644,  # SIGNAL from a trigger or procedure
        3819,  # check constraint violated (MySQL)
        4025,  # CONSTRAINT ... failed (MariaDB)
    }
)
# PostgreSQL SQLSTATEs; whole classes are matched by their first two characters.
POSTGRES_TRANSIENT = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
)
POSTGRES_TRANSIENT_CLASSES = frozenset({"08"})  # connection exceptions
POSTGRES_DATA_CLASSES = frozenset({"22", "23"})  # data exception, integrity violation
POSTGRES_DATA = frozenset({"P0001"})  # RAISE EXCEPTION in a trigger


def classify(error: BaseException) -> Kind:
    """Whether a retry can help (``transient``), splitting the batch can (``data``), or neither."""
    if isinstance(error, EtlError):
        return "transient" if error.transient else "permanent"
    if isinstance(error, PoolTimeout):
        return "transient"
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return "transient"
        return _classify_driver(error.orig)
    return _classify_driver(error)


def _classify_driver(error: BaseException | None) -> Kind:
    if error is None:
        return "permanent"
    module = type(error).__module__
    if module.startswith("pymysql"):
        # Before the SQLSTATE: PyMySQL reports a generic one (HY000) for most errors.
        return _classify_mysql(error)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _classify_sqlstate(sqlstate)
    if module.startswith("psycopg"):
        # No SQLSTATE: the error came from the client library, e.g. the connection dropped.
        lost = type(error).__name__ in ("OperationalError", "InterfaceError")
        return "transient" if lost else "permanent"
    if isinstance(error, sqlite3.Error):
        return _classify_sqlite(error)
    if isinstance(error, ConnectionError | TimeoutError):
        return "transient"
    return "permanent"


def _classify_sqlstate(sqlstate: str) -> Kind:
    if sqlstate in POSTGRES_TRANSIENT or sqlstate[:2] in POSTGRES_TRANSIENT_CLASSES:
        return "transient"
    if sqlstate in POSTGRES_DATA or sqlstate[:2] in POSTGRES_DATA_CLASSES:
        return "data"
    return "permanent"


def _classify_mysql(error: BaseException) -> Kind:
    args: tuple[Any, ...] = getattr(error, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in MYSQL_TRANSIENT:
        return "transient"
    if code in MYSQL_DATA:
        return "data"
    # PyMySQL raises InterfaceError(0, '') on a connection it already knows is closed.
    if type(error).__name__ == "InterfaceError":
        return "transient"
    return "permanent"


def _classify_sqlite(error: sqlite3.Error) -> Kind:
    if isinstance(error, sqlite3.IntegrityError):
        return "data"
    message = str(error).lower()
    if isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return "transient"
    return "permanent"


def is_transient(error: BaseException) -> bool:
    """True when redoing the same work later may succeed."""
    return classify(error) == "transient"


def is_data_error(error: BaseException) -> bool:
    """True when the target refused some of the rows written."""
    return classify(error) == "data"


def with_retries(
    policy: RetrySettings,
    work: Callable[[], T],
    *,
    describe: Callable[[BaseException], str],
    sleep: Callable[[float], None] | None = None,
    **context: Any,
) -> T:
    """Run ``work``; after a transient error wait and run it again, within the policy's budget.

    Every retry is logged as ``batch_retry`` with ``context`` (phase, key range). The last
    error is re-raised as it was when the budget runs out or the error is not transient.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "batch_retry",
            attempt=state.attempt_number,
            error=describe(error) if error else None,
            sleep=round(state.upcoming_sleep, 3),
            **context,
        )

    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max(policy.attempts, 1)) | stop_before_delay(policy.total_seconds),
        wait=wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        + wait_random(0, policy.jitter),
        before_sleep=before_sleep,
        reraise=True,
        **extra,
    )
    return retrying(work)
