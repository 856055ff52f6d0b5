"""One run of a job at a time across every process pointed at the same target.

The lock lives where every replica can see it, the target database, and is tied to
something the operating system or the database server cleans up when the holder dies
however it dies (SIGKILL, OOM, a pulled cable):

Each dialect says how (:meth:`~etl.dialects.base.Dialect.run_lock`); this module holds it:

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
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import Connection, Engine, text

from etl.dialects import dialect_of
from etl.dialects.types import FileLock, ServerLock
from etl.engine.db import connect, describe_error
from etl.errors import LockBusy, LockLost

log = structlog.get_logger("etl.service.locks")


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
    how = dialect_of(engine).run_lock(engine.url, job)
    if isinstance(how, FileLock):
        lock = _file_lock(how.path, job)
    else:
        lock = _server_lock(engine, job, how)
    with lock as held:
        log.debug("lock_acquired", job=job)
        yield held
    log.debug("lock_released", job=job)


@contextmanager
def _server_lock(engine: Engine, job: str, how: ServerLock) -> Iterator[HeldLock]:
    # Autocommit: the lock connection must not hold a transaction (and its snapshot or
    # metadata locks) open for the whole run.
    connection = connect(engine, "target").execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = connection.execute(text(how.take), how.params).scalar()
        if not got:  # 0/false: held elsewhere; NULL: the server refused
            raise LockBusy(job)
        try:
            yield HeldLock(
                job, lambda: bool(connection.execute(text(how.check), how.params).scalar())
            )
        finally:
            _release(connection, how.release, how.params)
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
def _file_lock(path: str | None, job: str) -> Iterator[HeldLock]:
    # A lock held by a file descriptor of this process cannot be lost while it lives.
    if path is None:
        yield HeldLock(job, None)  # an in-memory database: no other process can reach it
        return
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
