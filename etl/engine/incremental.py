"""Incremental mode: sync only the source rows changed since the job's watermark.

A job with a change-tracking column (``Job.cursor_column``, e.g. ``updated_at``) can
read just the rows whose cursor is past its watermark, in (cursor, key) order, a page
at a time by keyset on both (never OFFSET: a page starts right after the last row of
the previous one, so rows with equal cursors across a page boundary are neither lost
nor read twice). Each page is compared with the target's rows for the same keys, as
lookup mode does, so unchanged rows cause no write; bad rows are set aside as in a
full run. The watermark moves in the same target transaction as the page's writes.

Why a look-back: a row's cursor is set when its transaction writes it, but the row
becomes visible only when that transaction commits. A long transaction can commit a
row stamped earlier than rows already synced; re-reading ``lookback`` behind the
watermark picks such rows up (they compare unchanged when nothing is new, so the
re-read costs reads, not writes).

What it cannot see: deleted rows leave no cursor behind, and a row stamped further
back than the look-back is skipped. The periodic full run reconciles both, so a job
runs incrementally often and in full now and then (see docs/incremental.md).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Float, Table, literal, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.core.diff import Key, Row
from etl.engine import state, store, sync, watermarks
from etl.engine.db import Databases, describe_error
from etl.engine.retry import is_data_error
from etl.engine.state import Counts
from etl.engine.sync import BatchDone, Clock, RunResult, SyncOptions, utc_now
from etl.errors import ConfigError, Interrupted
from etl.job import Job

log = structlog.get_logger("etl.engine.incremental")

MODE = "incremental"
"""The mode recorded in ``etl_runs`` and on log lines."""


@dataclass(frozen=True)
class IncrementalOptions:
    """How far an incremental run looks back (from the job and its settings)."""

    lookback: float
    """Re-read this far behind the watermark: seconds for a timestamp cursor."""


def cursor_of(job: Job) -> str:
    """The job's cursor column; ConfigError when the job cannot run incrementally."""
    column = job.cursor_column
    if not column:
        raise ConfigError(
            f"job {job.name!r} has no cursor column, so it cannot run incrementally "
            "(set cursor_column on the job, e.g. 'updated_at')"
        )
    if column not in job.table.columns:
        raise ConfigError(f"job {job.name!r} cursor column {column!r} is not in its table")
    if column in job.key:
        raise ConfigError(f"job {job.name!r} cursor column {column!r} must not be a key column")
    if isinstance(job.table.columns[column].type, Float):
        # A 4-byte FLOAT never equals the double it is compared with (0.1 > 0.1 is true
        # in MySQL), so keyset paging on it would read the same page forever.
        raise ConfigError(
            f"job {job.name!r} cursor column {column!r} is a float: use a timestamp, "
            "a date or an integer version column"
        )
    return column


@dataclass
class _Track:
    """Where this run reads from and what watermark is committed."""

    order: tuple[str, ...]
    """The cursor column, then the key columns: the read order and the keyset."""
    cursor_index: int
    """Where the cursor value sits in a row (rows are in ``Job.columns`` order)."""
    watermark: Key | None

    def position(self, row: Row, key_length: int) -> Key:
        return (row[self.cursor_index], *row[:key_length])


@dataclass(frozen=True)
class _Page:
    """What one committed page did: its last position, whether more may follow, counts."""

    end: Key | None
    watermark: Key | None
    full: bool
    counts: Counts
    rejected: list[tuple[Row, str]]


def run_incremental(
    job: Job,
    dbs: Databases,
    options: SyncOptions,
    incremental: IncrementalOptions,
    *,
    clock: Clock = utc_now,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
    guard: Callable[[], None] | None = None,
) -> RunResult:
    """One incremental run of ``job``; ConfigError before any write when the setup is wrong.

    Like a full run, failures after the start are recorded and returned as ``failed``.
    """
    column = cursor_of(job)
    run_id = str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(job=job.name, run_id=run_id):
        plan = sync.plan_run(job, dbs, options)
        started = time.monotonic()
        result = RunResult(job.name, run_id, "running", mode=MODE, dry_run=options.dry_run)
        budget = sync._DeleteBudget(job.name, 0, 1.0, unlimited=True)
        run = sync._Run(job, dbs, plan, options, run_id, clock, budget, total_source_rows=0)
        run.on_batch, run.stop, run.guard = on_batch, stop, guard
        track = _Track((column, *job.key), job.columns.index(column), None)
        track.watermark = _prepare(run, result)
        try:
            _pass(run, track, incremental.lookback)
            result.status = "succeeded"
        except Interrupted as error:
            result.status, result.error = "interrupted", str(error)
            log.warning("run_interrupted", **run.counts.as_dict())
        except Exception as error:  # recorded and reported, never swallowed silently
            result.status, result.error = "failed", describe_error(error)
            log.exception("run_failed", error=result.error, **run.counts.as_dict())
        result.counts, result.seconds = run.counts, time.monotonic() - started
        _finish(run, result, track)
        return result


def _prepare(run: sync._Run, result: RunResult) -> Key | None:
    """Load the watermark and record the run as started (nothing is written in a dry run)."""
    watermark = None
    if run.plan.target_exists:
        with sync._target_transaction(run.dbs, write=run.write) as target:
            if run.write:
                watermarks.create_tables(target)
            watermark = watermarks.load(target, run.pass_name)
            if run.write:
                state.start_run(
                    target,
                    run.run_id,
                    run.job.name,
                    MODE,
                    run.clock(),
                    None,
                    socket.gethostname(),
                    os.getpid(),
                )
    log.info(
        "run_started",
        mode=MODE,
        dry_run=run.options.dry_run,
        watermark=watermarks.shown(watermark),
        batch_size=run.options.batch_size,
    )
    return watermark


def _pass(run: sync._Run, track: _Track, lookback: float) -> None:
    """Pages from the watermark less the look-back to the newest change, each committed."""
    lo = None
    if track.watermark is not None:
        cursor, *key = track.watermark
        lo = (rewind(cursor, lookback), *key)
    while True:
        started = time.monotonic()
        page = _page(run, track, lo)
        run.counts.add(page.counts)  # only now: a failed attempt's counts never commit
        track.watermark = page.watermark
        hi = page.end if page.full else None
        sync._batch_done(run, MODE, _logged(lo), _logged(hi), page.counts, started, page.rejected)
        if hi is None:
            return
        lo = hi


def _logged(position: Key | None) -> Key | None:
    shown = watermarks.shown(position)
    return tuple(shown) if shown is not None else None


def _page(run: sync._Run, track: _Track, lo: Key | None) -> _Page:
    """One page, retried after transient errors; redone isolating rows on a data error."""
    try:
        return sync._retrying(run, MODE, _logged(lo), partial(_page_work, run, track, lo, False))
    except DBAPIError as error:
        if not is_data_error(error):
            raise
        log.warning("batch_isolating_rows", phase=MODE, error=describe_error(error))
        return sync._retrying(run, MODE, _logged(lo), partial(_page_work, run, track, lo, True))


def _page_work(run: sync._Run, track: _Track, lo: Key | None, isolate: bool) -> _Page:
    """Read a page of changes, write what differs, move the watermark: one transaction."""
    plan, job, size, width = run.plan, run.job, run.options.batch_size, run.key_length
    with run.dbs.Source() as source:
        rows = read_changes(
            source, plan.source_table, job.columns, track.order, lo, size, plan.source_backend
        )
    valid, rejected = sync._check(run, rows)
    end = track.position(rows[-1], width) if rows else None
    mark = later(track.watermark, end)
    with sync._target_transaction(run.dbs, write=run.write) as target:
        # The lookup returns rows whose key the target calls equal to a source key. One
        # that is not spelled exactly alike ('anna' for 'Anna' under a case-insensitive
        # collation) is the same row respelled: deleting it before the upsert leaves the
        # source's spelling, as a full run would. With an exact collation there are none.
        changes = sync.lookup_changes(
            run,
            target,
            valid,
            delete_missing=job.delete_policy == "propagate",
            protected=sync.protected_keys(run, target, rejected),
        )
        rejected += sync._apply(run, target, changes, isolate=isolate)
        counts = sync._counts(len(rows), changes, rejected)
        if run.write and mark is not None and mark != track.watermark:
            watermarks.save(target, run.pass_name, mark, run.run_id, run.clock())
        sync._record(run, target, rejected, counts, None, move_checkpoint=False)
    return _Page(end, mark, len(rows) == size, counts, rejected)


def read_changes(
    session: Session,
    table: Table,
    columns: Sequence[str],
    order: Sequence[str],
    lo: Key | None,
    limit: int,
    backend: str,
) -> list[Row]:
    """The first ``limit`` rows after position ``lo`` in (cursor, key) order."""
    ordered = [table.c[name] for name in order]
    query = (
        select(*[table.c[name] for name in columns])
        .where(after_position(table, order, lo, backend))
        .order_by(*ordered)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]


def after_position(
    table: Table, order: Sequence[str], lo: Key | None, backend: str
) -> ColumnElement[bool]:
    """Rows strictly after ``lo`` in (cursor, key) order; rows with a NULL part never match.

    Each value is bound with its column's type, so a timestamp is compared the way the
    column stores it (naive UTC in MySQL's DATETIME), not as Python's default type.
    """
    if lo is None or backend == "mysql":
        # store.after compares column to value (typed) and, on MySQL, in the expanded
        # form the range optimiser can use on a (cursor, key) index.
        return store.after(table, order, lo, backend)
    columns = [table.c[name] for name in order]
    bounds = [literal(value, column.type) for column, value in zip(columns, lo, strict=True)]
    return tuple_(*columns) > tuple_(*bounds)


def rewind(cursor: Any, lookback: float) -> Any:
    """The cursor value ``lookback`` before ``cursor`` (seconds for times and dates)."""
    if not lookback:
        return cursor
    if isinstance(cursor, datetime):
        return cursor - timedelta(seconds=lookback)
    if isinstance(cursor, date):
        return cursor - timedelta(days=math.ceil(lookback / 86400))
    if isinstance(cursor, Decimal):
        return cursor - Decimal(str(lookback))
    if isinstance(cursor, int | float):
        return cursor - lookback
    raise ConfigError(
        f"cursor value {cursor!r} ({type(cursor).__name__}) cannot be rewound: "
        "use a timestamp or number cursor, or a look-back of 0"
    )


def later(watermark: Key | None, end: Key | None) -> Key | None:
    """The watermark after a page ending at ``end``: it never moves back.

    A page inside the look-back window ends before the stored watermark; keeping the
    larger one means a crash there does not make the next run re-read more.
    """
    if end is None:
        return watermark
    if watermark is None or end[0] >= watermark[0]:
        return end
    return watermark


def _finish(run: sync._Run, result: RunResult, track: _Track) -> None:
    """Record the run's end; a failure to do so is logged, not raised over the cause."""
    log.info(
        "run_finished",
        status=result.status,
        mode=MODE,
        dry_run=run.options.dry_run,
        seconds=round(result.seconds, 3),
        watermark=watermarks.shown(track.watermark),
        error=result.error,
        **run.counts.as_dict(),
    )
    if not run.write or not run.plan.target_exists:
        return
    try:
        with sync._target_transaction(run.dbs, write=True) as target:
            state.finish_run(
                target, run.run_id, result.status, run.clock(), run.counts, result.error
            )
    except Exception as error:
        log.error("run_record_failed", error=describe_error(error))
