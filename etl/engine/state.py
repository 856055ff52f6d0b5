"""The tool's own tables in the target: run history, checkpoints, rejected rows.

They live in the target so that a batch and its checkpoint commit in one transaction:
after a crash the checkpoint says exactly which batches are in the target.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.core.counts import COUNTERS, Checkpoint, Counts
from etl.core.diff import Key
from etl.core.keys import decode_key, encode_key, encode_row
from etl.dialects import dialect_of


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    MySQL's DATETIME has no time zone, so values are stored as naive UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        # With microseconds: runs started in the same second would otherwise have no order.
        return dialect.type_descriptor(dialect_of(dialect).precise_datetime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class LongText(TypeDecorator[str]):
    """Text as long as the dialect's ``long_text`` holds (MEDIUMTEXT on MySQL)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(dialect_of(dialect).long_text())


metadata = MetaData()

runs = Table(
    "etl_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("job", String(100), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(20), nullable=False),
    Column("mode", String(20)),  # range, lookup, incremental
    Column("resumed_from", Text),
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("inserted", BigInteger, nullable=False, default=0),
    Column("updated", BigInteger, nullable=False, default=0),
    Column("deleted", BigInteger, nullable=False, default=0),
    Column("unchanged", BigInteger, nullable=False, default=0),
    Column("rejected", BigInteger, nullable=False, default=0),
    Column("error", LongText),
    Column("host", String(255)),
    Column("pid", Integer),
    Index("ix_etl_runs_job_started", "job", "started_at"),
)

NAME_LENGTH = 100
"""Longest job (or pass) name the state tables hold."""

checkpoints = Table(
    "etl_checkpoints",
    metadata,
    Column("job", String(NAME_LENGTH), primary_key=True),
    Column("phase", String(10), nullable=False),
    Column("last_key", Text, nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

rejects = Table(
    "etl_rejects",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(36), nullable=False),
    Column("job", String(100), nullable=False),
    Column("row_key", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("row_data", LongText, nullable=False),
    Column("rejected_at", UTCDateTime(), nullable=False),
    Index("ix_etl_rejects_job_run", "job", "run_id"),
)


source_versions = Table(
    "etl_source_versions",
    metadata,
    Column("job", String(NAME_LENGTH), primary_key=True),
    Column("version", String(200), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
)
"""Each pass's source write version as its last succeeded run started: a hint of whether
the source changed since (PostgreSQL keeps write counters, not a write time)."""


_CREATING = threading.Lock()


def create_state_tables(session: Session) -> None:
    """Create the state tables if they do not exist yet.

    Jobs running at once may all find them missing on a fresh target: they are created
    one thread at a time on a connection of their own, committed at once, and a
    creation another process won meanwhile counts as done.
    """
    connection = session.connection()
    names = [table.name for table in metadata.sorted_tables]
    if all(inspect(connection).has_table(name) for name in names):
        return
    if not dialect_of(connection).concurrent_writers:  # one writer: no race to lose
        metadata.create_all(connection, checkfirst=True)
        return
    with _CREATING, connection.engine.connect() as ddl:
        try:
            metadata.create_all(ddl, checkfirst=True)
            ddl.commit()
        except DBAPIError:
            ddl.rollback()
            if not all(inspect(ddl).has_table(name) for name in names):
                raise


def start_run(
    session: Session,
    run_id: str,
    job: str,
    mode: str,
    now: datetime,
    resumed_from: Key | None,
    host: str,
    pid: int,
) -> None:
    """Record a run as running."""
    session.execute(
        insert(runs).values(
            run_id=run_id,
            job=job,
            started_at=now,
            status="running",
            mode=mode,
            resumed_from=encode_key(resumed_from) if resumed_from else None,
            host=host,
            pid=pid,
            **Counts().as_dict(),
        )
    )


def save_counts(session: Session, run_id: str, counts: Counts) -> None:
    """Store the run's totals so far (in the batch's transaction)."""
    session.execute(update(runs).where(runs.c.run_id == run_id).values(**counts.as_dict()))


def finish_run(
    session: Session, run_id: str, status: str, now: datetime, counts: Counts, error: str | None
) -> None:
    """Record how a run ended."""
    session.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(status=status, finished_at=now, error=error, **counts.as_dict())
    )


def pass_name(job: str, source_table: str, target_table: str, own_table: str) -> str:
    """The name a job's checkpoint (and watermark) is kept under.

    A job run against other tables (``source_table``/``target_table`` settings) keeps
    its own: resuming one table pair's pass after another pair's key would skip rows.
    """
    if source_table == target_table == own_table:
        return job
    digest = hashlib.sha256("\0".join((job, source_table, target_table)).encode()).hexdigest()
    name = f"{job}:{source_table}>{target_table}#{digest[:8]}"  # readable, and unambiguous
    if len(name) <= NAME_LENGTH:
        return name
    return f"{job[: NAME_LENGTH - 17]}#{digest[:16]}"


def load_checkpoint(session: Session, job: str) -> Checkpoint | None:
    """The unfinished pass of this job, if any."""
    row = session.execute(
        select(checkpoints.c.phase, checkpoints.c.last_key, checkpoints.c.run_id).where(
            checkpoints.c.job == job
        )
    ).one_or_none()
    return Checkpoint(row.phase, decode_key(row.last_key), row.run_id) if row else None


def save_checkpoint(
    session: Session, job: str, checkpoint: Checkpoint | None, now: datetime
) -> None:
    """Move the checkpoint (in the batch's transaction); None marks the pass complete."""
    session.execute(checkpoints.delete().where(checkpoints.c.job == job))
    if checkpoint is not None:
        session.execute(
            insert(checkpoints).values(
                job=job,
                phase=checkpoint.phase,
                last_key=encode_key(checkpoint.last_key),
                run_id=checkpoint.run_id,
                updated_at=now,
            )
        )


def record_rejects(
    session: Session,
    run_id: str,
    job: str,
    columns: Sequence[str],
    rejected: Sequence[tuple[tuple[Any, ...], str]],
    key_length: int,
    now: datetime,
) -> None:
    """Set rows aside with their reasons and raw values, once per run and key.

    A batch redone after a lost COMMIT (which may in fact have succeeded) records its
    rejects again: the run's earlier records of the same keys are replaced, not doubled.
    """
    if not rejected:
        return
    keys = sorted({encode_key(row[:key_length]) for row, _ in rejected})
    wanted = set(keys)
    earlier: list[int] = []
    for start in range(0, len(keys), 1000):
        # The database may compare keys ignoring case ('Anna' = 'anna'): it only narrows
        # the search, and the exact comparison here decides which records are the same.
        found = session.execute(
            select(rejects.c.id, rejects.c.row_key).where(
                rejects.c.job == job,
                rejects.c.run_id == run_id,
                rejects.c.row_key.in_(keys[start : start + 1000]),
            )
        )
        earlier.extend(record_id for record_id, key in found if key in wanted)
    for start in range(0, len(earlier), 1000):
        session.execute(delete(rejects).where(rejects.c.id.in_(earlier[start : start + 1000])))
    session.execute(
        insert(rejects),
        [
            {
                "run_id": run_id,
                "job": job,
                "row_key": encode_key(row[:key_length]),
                "reason": reason,
                "row_data": encode_row(columns, row),
                "rejected_at": now,
            }
            for row, reason in rejected
        ],
    )


def recent_runs(session: Session, limit: int, job: str | None = None) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    query = select(runs).order_by(runs.c.started_at.desc()).limit(limit)
    if job:
        query = query.where(runs.c.job == job)
    return [dict(row._mapping) for row in session.execute(query)]


def load_source_version(session: Session, job: str) -> str | None:
    """The source write version the pass's last succeeded run started from, if stored."""
    found = session.execute(
        select(source_versions.c.version).where(source_versions.c.job == job)
    ).scalar()
    return None if found is None else str(found)


def save_source_version(
    session: Session, job: str, version: str, run_id: str, now: datetime
) -> None:
    """Replace the pass's stored source write version."""
    session.execute(delete(source_versions).where(source_versions.c.job == job))
    session.execute(
        insert(source_versions).values(job=job, version=version, run_id=run_id, recorded_at=now)
    )


@dataclass(frozen=True)
class PreviousRun:
    """The job's latest succeeded run before this one: when it started, what it did."""

    started_at: datetime
    counts: Counts


def previous_run(session: Session, job: str, run_id: str) -> PreviousRun | None:
    """The job's latest succeeded run before ``run_id``; None: no such run."""
    query = (
        select(runs.c.started_at, *[runs.c[name] for name in COUNTERS])
        .where(runs.c.job == job, runs.c.run_id != run_id, runs.c.status == "succeeded")
        .order_by(runs.c.started_at.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    if row is None:
        return None
    found = dict(row._mapping)
    return PreviousRun(found.pop("started_at"), Counts(**found))


def latest_rejects(session: Session, limit: int, job: str | None = None) -> list[dict[str, Any]]:
    """Rejected rows of each job's most recent run that had any, newest first."""
    # A job's runs never overlap (its lock), so its newest reject is its latest such run's.
    newest = select(func.max(rejects.c.id)).group_by(rejects.c.job)
    if job:
        newest = newest.where(rejects.c.job == job)
    latest_runs = select(rejects.c.run_id).where(rejects.c.id.in_(newest))
    query = (
        select(rejects)
        .where(rejects.c.run_id.in_(latest_runs))
        .order_by(rejects.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in session.execute(query)]
