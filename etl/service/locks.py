"""One run of a job at a time across every process pointed at the same target.

The lock lives where every replica can see it, the target database, and is tied to
something the operating system or the database server cleans up when the holder dies
however it dies (SIGKILL, OOM, a pulled cable):

- MySQL/MariaDB: ``GET_LOCK`` on a dedicated connection; the server releases it when
  that connection ends.
- PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection, same.
- SQLite: ``flock`` on ``<database file>.<job>.lock``; the kernel releases it when the
  process's file descriptor closes, which death does.

A dedicated connection matters: the run's own sessions commit and roll back and return
their connections to the pool, and a session-level lock must not ride along with them.
If that connection ends mid-run (a server restart, a killed session, a cut network),
the server has released the lock and another process may take it: the run asks
before each batch that writes commits, and stops with LockLost (that batch rolls back).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import Connection, Engine, text

from etl.engine.db import connect, describe_error
from etl.errors import ConfigError, LockBusy, LockLost

log = structlog.get_logger("etl.service.locks")

MYSQL_LOCK_NAME_LIMIT = 64


class HeldLock:
    """A job's run lock while held: :meth:`verify` raises LockLost once it no longer is."""

    def __init__(self, job: str, still_held: Callable[[], bool] | None):
        self.job = job
        self._still_held = still_held

    def verify(self) -> None:
        """Ask the lock's connection (one round trip); raise LockLost if the lock is gone."""
        if self._still_held is None:
            return
        try:
            held = self._still_held()
        except Exception as error:  # the connection is gone: so is the lock
            log.error("lock_lost", job=self.job, error=describe_error(error))
            raise LockLost(self.job) from None
        if not held:
            log.error("lock_lost", job=self.job, error="no longer the holder")
            raise LockLost(self.job)


@contextmanager
def job_lock(engine: Engine, job: str) -> Iterator[HeldLock]:
    """Hold the job's run lock in the target for the block; LockBusy if another holds it."""
    backend = engine.dialect.name
    if backend in ("mysql", "mariadb"):
        lock = _server_lock(engine, job, *_mysql_statements(engine, job))
    elif backend == "postgresql":
        lock = _server_lock(engine, job, *_postgresql_statements(job))
    elif backend == "sqlite":
        lock = _file_lock(engine.url.database, job)
    else:
        raise ConfigError(f"no run lock for {backend!r} targets; use MySQL, PostgreSQL or SQLite")
    with lock as held:
        log.debug("lock_acquired", job=job)
        yield held
    log.debug("lock_released", job=job)


def mysql_lock_name(database: str | None, job: str) -> str:
    """The GET_LOCK name: locks are server-wide, so it names the target database too."""
    name = f"etl:{database or ''}:{job}"
    if len(name) <= MYSQL_LOCK_NAME_LIMIT:
        return name
    return "etl:" + hashlib.sha256(name.encode()).hexdigest()[: MYSQL_LOCK_NAME_LIMIT - 4]


def postgresql_lock_key(job: str) -> int:
    """The advisory lock key: a stable signed 64-bit hash (advisory keys are per database)."""
    digest = hashlib.sha256(f"etl:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _mysql_statements(engine: Engine, job: str) -> tuple[str, str, str, dict[str, object]]:
    params: dict[str, object] = {"name": mysql_lock_name(engine.url.database, job)}
    return (
        "SELECT GET_LOCK(:name, 0)",
        "SELECT IS_USED_LOCK(:name) = CONNECTION_ID()",
        "SELECT RELEASE_LOCK(:name)",
        params,
    )


def _postgresql_statements(job: str) -> tuple[str, str, str, dict[str, object]]:
    params: dict[str, object] = {"key": postgresql_lock_key(job)}
    # A session-level advisory lock lasts as long as its session: alive means held.
    return (
        "SELECT pg_try_advisory_lock(:key)",
        "SELECT true",
        "SELECT pg_advisory_unlock(:key)",
        params,
    )


@contextmanager
def _server_lock(
    engine: Engine, job: str, take: str, check: str, release: str, params: dict[str, object]
) -> Iterator[HeldLock]:
    # Autocommit: the lock connection must not hold a transaction (and its snapshot or
    # metadata locks) open for the whole run.
    connection = connect(engine, "target").execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = connection.execute(text(take), params).scalar()
        if not got:  # 0/false: held elsewhere; NULL: the server refused
            raise LockBusy(job)
        try:
            yield HeldLock(job, lambda: bool(connection.execute(text(check), params).scalar()))
        finally:
            _release(connection, release, params)
    finally:
        connection.close()


def _release(connection: Connection, release: str, params: dict[str, object]) -> None:
    """Release explicitly; if that fails, drop the connection so the server releases it."""
    try:
        connection.execute(text(release), params)
    except Exception as error:
        log.warning("lock_release_failed", error=describe_error(error))
        connection.invalidate()


@contextmanager
def _file_lock(database: str | None, job: str) -> Iterator[HeldLock]:
    # A lock held by a file descriptor of this process cannot be lost while it lives.
    if not database or database == ":memory:" or database.startswith("file:"):
        yield HeldLock(job, None)  # an in-memory database: no other process can reach it
        return
    path = f"{database}.{job}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(job) from None
        # The file stays: deleting it would let a waiter lock an unlinked inode.
        yield HeldLock(job, None)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
