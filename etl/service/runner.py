"""A run under the job's cross-process lock: the one path both ``run`` and the daemon take.

Holding the lock is what makes two things safe: no other process is writing this job's
batches, and any ``running`` row this job still has in the run history belongs to a
process that died (it would hold the lock otherwise), so it can be marked abandoned.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy import update

from etl.config import Settings
from etl.core.counts import Counts
from etl.engine import state
from etl.engine.cursors import cursor_of
from etl.engine.db import Databases, describe_error
from etl.engine.lifecycle import run_job
from etl.engine.results import BatchDone, Clock, IncrementalOptions, RunResult, SyncOptions, utc_now
from etl.engine.schema import table_exists
from etl.errors import ConfigError
from etl.job import Job
from etl.service.locks import HeldLock, job_lock

log = structlog.get_logger("etl.service.runner")


def run_exclusive(
    job: Job,
    dbs: Databases,
    options: SyncOptions,
    *,
    clock: Clock = utc_now,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
    incremental: IncrementalOptions | None = None,
) -> RunResult:
    """Run ``job`` while holding its lock; LockBusy when another process is running it.

    With ``incremental`` the run reads only rows changed since the job's watermark.
    Full and incremental runs of a job take the same lock, so they never overlap.

    A dry run writes nothing and so takes no lock: it may look while a real run works.
    A run that fails before it could record itself (the source is down, a table is
    missing) is recorded as failed here, then the error is raised on.
    """

    def run(held: HeldLock | None) -> RunResult:
        guard = held.verify if held is not None else None
        return run_job(
            job,
            dbs,
            options,
            incremental=incremental,
            clock=clock,
            stop=stop,
            on_batch=on_batch,
            guard=guard,
        )

    if options.dry_run:
        return run(None)
    with job_lock(dbs.target_engine, job.name) as held:
        abandon_stale_runs(dbs, job.name, clock())
        try:
            return run(held)
        except Exception as error:
            record_failed_start(dbs, job.name, clock(), describe_error(error))
            raise


def abandon_stale_runs(dbs: Databases, job: str, now: datetime) -> int:
    """Mark this job's ``running`` rows abandoned; only call while holding the job's lock."""
    with dbs.Target() as session:
        if not table_exists(session.connection(), state.runs.name):
            return 0
        result = session.execute(
            update(state.runs)
            .where(state.runs.c.job == job, state.runs.c.status == "running")
            .values(
                status="abandoned",
                finished_at=now,
                error="the process running it stopped without recording an end",
            )
        )
        marked = int(getattr(result, "rowcount", 0))
        session.commit()
    if marked:
        log.warning("stale_runs_abandoned", job=job, runs=marked)
    return marked


def record_failed_start(dbs: Databases, job: str, now: datetime, error: str) -> None:
    """Record a run that failed before run_job could record it; best effort."""
    run_id = str(uuid.uuid4())
    try:
        with dbs.Target() as session:
            # Bad configuration must leave a fresh target untouched: record the failure
            # only where this tool already keeps its run history.
            if not table_exists(session.connection(), state.runs.name):
                return
            state.start_run(session, run_id, job, "", now, None, socket.gethostname(), os.getpid())
            state.finish_run(session, run_id, "failed", now, Counts(), error)
            session.commit()
    except Exception as record_error:
        log.error("run_record_failed", job=job, error=describe_error(record_error))


def sync_options(
    job: Job,
    settings: Settings,
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
) -> SyncOptions:
    """How to run ``job``: its settings, then the sync defaults, under any command-line choices."""
    job_settings = settings.job(job.name)
    return SyncOptions(
        batch_size=batch_size or batch_size_of(job, settings),
        dry_run=dry_run,
        max_delete_fraction=settings.sync.max_delete_fraction,
        allow_mass_delete=allow_mass_delete or settings.sync.allow_mass_delete,
        pause_between_batches=settings.sync.pause_between_batches,
        source_table=job_settings.source_table,
        target_table=job_settings.target_table,
        retry=settings.retry,
        schema_drift=job_settings.schema_drift,
    )


def batch_size_of(job: Job, settings: Settings) -> int:
    """Rows per batch: the job's setting, else the job's own, else ``sync.batch_size``."""
    return settings.job(job.name).batch_size or job.batch_size or settings.sync.batch_size


def incremental_options(job: Job, settings: Settings) -> IncrementalOptions:
    """How ``job`` runs incrementally; ConfigError when it has no cursor column."""
    cursor_of(job)
    lookback = settings.job(job.name).incremental_lookback
    if lookback is None:
        lookback = job.lookback
    if lookback < 0:
        raise ConfigError(f"job {job.name!r} lookback must not be negative, got {lookback}")
    return IncrementalOptions(lookback=lookback)
