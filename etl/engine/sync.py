"""The sync engine: one pass of a job, batch by batch, each batch one target transaction.

Why committing per batch is safe: a batch's rows, its rejected rows, the run's totals
and the checkpoint (the last key done) commit together. A crash at any instant leaves
the target with whole batches only and a checkpoint naming the last of them, so the
next run resumes right after it; rows are written by key (upsert/delete), so even
redoing a batch would change nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any, Literal, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.config import RetrySettings
from etl.core.diff import Changes, Key, Row, diff_rows, missing_keys
from etl.core.validate import RowCheck, compile_checks
from etl.engine import checksum, state, store, textcopy
from etl.engine.db import Databases, describe_error
from etl.engine.plan import Plan, make_plan
from etl.engine.retry import is_data_error, is_transient, with_retries
from etl.engine.state import Checkpoint, Counts
from etl.errors import EtlError, Interrupted, MassDeleteRefused
from etl.job import Job

log = structlog.get_logger("etl.engine.sync")

Clock = Callable[[], datetime]
T = TypeVar("T")
U = TypeVar("U")

MAX_SPAN = 32768
"""Most keys in one checksummed range: bounds the row tokens a range holds in memory."""


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncOptions:
    """How to run a job this time (from settings and the command line)."""

    batch_size: int = 5000
    dry_run: bool = False
    max_delete_fraction: float = 0.5
    allow_mass_delete: bool = False
    pause_between_batches: float = 0.0
    source_table: str | None = None
    target_table: str | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    """How a batch is retried after a transient error."""


@dataclass(frozen=True)
class BatchDone:
    """What one batch did, for progress displays."""

    phase: str
    counts: Counts
    seconds: float
    total_source_rows: int


@dataclass
class RunResult:
    """How a run ended, for the summary line, the exit code and the daemon's metrics."""

    job: str
    run_id: str
    status: str
    """succeeded, failed, interrupted (stop requested) or refused (mass-delete guard)."""
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    mode: str = ""
    dry_run: bool = False
    resumed_from: Key | None = None
    error: str | None = None


@dataclass
class _DeleteBudget:
    """The mass-delete guard: how many target rows this run may still delete."""

    job: str
    target_rows: int
    limit: float
    unlimited: bool
    used: int = 0

    def take(self, deletes: int) -> None:
        if self.unlimited or deletes == 0:
            self.used += deletes
            return
        if self.used + deletes > self.limit * self.target_rows:
            raise MassDeleteRefused(self.job, self.used + deletes, self.target_rows, self.limit)
        self.used += deletes


@dataclass
class _Run:
    """Everything one run carries from batch to batch."""

    job: Job
    dbs: Databases
    plan: Plan
    options: SyncOptions
    run_id: str
    clock: Clock
    budget: _DeleteBudget
    total_source_rows: int
    checkpoint: Checkpoint | None = None
    counts: Counts = field(default_factory=Counts)
    on_batch: Callable[[BatchDone], None] | None = None
    stop: threading.Event | None = None
    guard: Callable[[], None] | None = None
    """Raises when this run may no longer write (its lock is lost): asked before each
    batch that writes commits, inside its transaction, so such a batch rolls back."""
    checkpoint_stored: bool = False
    """A checkpoint row may exist for this job: the pass must clear it when complete."""
    span: int = 0
    """Keys in the next checksummed range: grows while ranges need few writes."""
    pool: ThreadPoolExecutor | None = None
    """Workers for the source's half of a checksum (while the target does its own) and
    for the next range's end."""
    scopes: tuple[checksum.Scope, checksum.Scope] | None = None
    """What the checksums cover on the source and on the target (range mode, same kind)."""
    dense: bool = False
    """The last checksummed range had changes: go straight to row tokens."""
    prefetched: tuple[Key | None, int, Future[Key | None]] | None = None
    """The next range's end being found ahead: (after key, span, result)."""
    ahead: tuple[str, Key, Future[Any]] | None = None
    """The next source read under way: (what, after key, result); see :func:`_read_ahead`."""
    copy_limit: int = 0
    """Longest values text the target takes in one statement (text copies; 0: not asked)."""

    @cached_property
    def check(self) -> RowCheck | None:
        """The row checks for the target's columns, compiled once per run; None: none needed.

        A transform's output is not the source's: then every column is checked.
        """
        sources = self.plan.source_specs if self.job.transform is None else None
        return compile_checks(self.plan.specs, self.job.validate, sources=sources)

    @cached_property
    def copies_text(self) -> bool:
        """Whether empty target ranges may be filled by text copies (:mod:`etl.textcopy`)."""
        plan = self.plan
        return (
            self.write
            and plan.source_backend == plan.target_backend == "mysql"
            and self.check is None  # no transform or rule; every row is known to fit
            and textcopy.copyable(plan.source_specs, plan.specs)
        )

    @cached_property
    def pass_name(self) -> str:
        """What this job's checkpoint is kept under, for this pair of tables."""
        return _pass_name(self.job, self.plan)

    @property
    def key_length(self) -> int:
        return len(self.job.key)

    @property
    def write(self) -> bool:
        return not self.options.dry_run


def run_job(
    job: Job,
    dbs: Databases,
    options: SyncOptions,
    *,
    clock: Clock = utc_now,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
    guard: Callable[[], None] | None = None,
) -> RunResult:
    """Run one pass of ``job``; ConfigError before any write when the setup is wrong.

    Failures after the run has started are recorded in the run history and returned
    as a result with status ``failed``, so a daemon can carry on with the next tick.
    """
    run_id = str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(job=job.name, run_id=run_id):
        plan = plan_run(job, dbs, options)
        started = time.monotonic()
        result = RunResult(job.name, run_id, "running", mode=plan.mode, dry_run=options.dry_run)
        run = _prepare(job, dbs, plan, options, run_id, clock, result)
        run.on_batch, run.stop, run.guard = on_batch, stop, guard
        try:
            _refuse_obvious_mass_delete(run)
            _reject_null_keys(run)
            _run_pass(run)
            result.status = "succeeded"
        except Interrupted as error:
            result.status, result.error = "interrupted", str(error)
            log.warning("run_interrupted", **run.counts.as_dict())
        except MassDeleteRefused as error:
            result.status, result.error = "refused", str(error)
            log.error("run_refused", reason=str(error), **run.counts.as_dict())
        except Exception as error:  # recorded and reported, never swallowed silently
            result.status, result.error = "failed", describe_error(error)
            log.exception("run_failed", error=result.error, **run.counts.as_dict())
        result.counts, result.seconds = run.counts, time.monotonic() - started
        _finish(run, result)
        return result


def plan_run(job: Job, dbs: Databases, options: SyncOptions) -> Plan:
    """Check both databases and choose the mode; a dry run creates no table."""
    return make_plan(
        job,
        dbs.source_engine,
        dbs.target_engine,
        source_name=options.source_table,
        target_name=options.target_table,
        create=not options.dry_run,
    )


def _prepare(
    job: Job,
    dbs: Databases,
    plan: Plan,
    options: SyncOptions,
    run_id: str,
    clock: Clock,
    result: RunResult,
) -> _Run:
    def count_source() -> int:
        with dbs.Source() as source:
            return store.count_rows(source, plan.source_table)

    # Both counts are full index scans (about 0.5 s each per million rows): at once.
    counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-count")
    source_count = counting.submit(count_source)
    counting.shutdown(wait=False)
    target_rows = 0
    checkpoint = stored = None
    if plan.target_exists:
        with _target_transaction(dbs, write=not options.dry_run) as target:
            target_rows = store.count_rows(target, plan.target_table)
            if not options.dry_run:
                state.create_state_tables(target)
                stored = state.load_checkpoint(target, _pass_name(job, plan))
                checkpoint = _usable_checkpoint(stored, plan)
                result.resumed_from = checkpoint.last_key if checkpoint else None
                state.start_run(
                    target,
                    run_id,
                    job.name,
                    plan.mode,
                    clock(),
                    result.resumed_from,
                    socket.gethostname(),
                    os.getpid(),
                )
    source_rows = source_count.result()
    budget = _DeleteBudget(
        job.name,
        target_rows,
        options.max_delete_fraction,
        unlimited=options.allow_mass_delete or job.delete_policy == "keep",
    )
    log.info(
        "run_started",
        mode=plan.mode,
        dry_run=options.dry_run,
        source_rows=source_rows,
        target_rows=target_rows,
        batch_size=options.batch_size,
        resumed_from=list(checkpoint.last_key) if checkpoint else None,
        phase=checkpoint.phase if checkpoint else None,
    )
    run = _Run(job, dbs, plan, options, run_id, clock, budget, source_rows, checkpoint)
    run.checkpoint_stored = plan.target_exists and not options.dry_run and stored is not None
    return run


def _pass_name(job: Job, plan: Plan) -> str:
    return state.pass_name(job.name, plan.source_table.name, plan.target_table.name, job.table.name)


def _usable_checkpoint(checkpoint: Checkpoint | None, plan: Plan) -> Checkpoint | None:
    """A checkpoint left by a run in another mode cannot be resumed: start over."""
    if checkpoint is None:
        return None
    phases = ("range",) if plan.mode == "range" else ("upsert", "sweep")
    return checkpoint if checkpoint.phase in phases else None


def _refuse_obvious_mass_delete(run: _Run) -> None:
    """Stop before the first batch when the counts alone show the guard would trip.

    An emptied or truncated source is the classic way to wipe a target; the per-batch
    check would catch it too, but only after the first deletes had committed.
    """
    budget = run.budget
    shortfall = budget.target_rows - run.total_source_rows
    if budget.unlimited or budget.target_rows == 0 or shortfall <= 0:
        return
    if shortfall > budget.limit * budget.target_rows:
        raise MassDeleteRefused(run.job.name, shortfall, budget.target_rows, budget.limit)


def _reject_null_keys(run: _Run) -> None:
    """Set aside source rows with a NULL key part: no key range contains them."""
    plan, job = run.plan, run.job
    with run.dbs.Source() as source:
        rows = store.read_null_keys(source, plan.source_table, job.columns, job.key)
    if not rows:
        return
    rejected = [(row, _null_key_reason(job, row)) for row in rows]
    counts = Counts(rows_read=len(rows), rejected=len(rows))

    def record() -> None:
        with _target_transaction(run.dbs, write=run.write) as target:
            _record(run, target, rejected, counts, checkpoint=None, move_checkpoint=False)

    _retrying(run, "null_keys", None, record)
    run.counts.add(counts)
    _log_rejects(rejected, job.columns)


def _null_key_reason(job: Job, row: Row) -> str:
    nulls = [name for name, value in zip(job.key, row, strict=False) if value is None]
    return f"key column {', '.join(nulls)} is NULL"


def _run_pass(run: _Run) -> None:
    """The whole pass, from the checkpoint (if any) to the end of the key space."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="etl-source")
    run.pool = pool
    try:
        _run_phases(run)
    finally:
        # A read started ahead that no batch will use: cancelled if it has not begun,
        # waited for if it has (no query may outlive the run).
        for pending in (run.ahead, run.prefetched):
            if pending is not None:
                pending[2].cancel()
        run.ahead = run.prefetched = None
        pool.shutdown(wait=True, cancel_futures=True)


def _run_phases(run: _Run) -> None:
    checkpoint = run.checkpoint
    if run.plan.mode == "range":
        lo = checkpoint.last_key if checkpoint else None
        if not _checksums_usable(run):
            _phase(run, "range", lo, _range_batch)
            return
        run.span = run.options.batch_size
        run.scopes = _scopes(run)
        _phase(run, "range", lo, _checksum_batch)
        return
    if checkpoint is None or checkpoint.phase == "upsert":
        _phase(run, "upsert", checkpoint.last_key if checkpoint else None, _upsert_batch)
        checkpoint = None
    if run.job.delete_policy == "propagate":
        lo = checkpoint.last_key if checkpoint and checkpoint.last_key else None
        _phase(run, "sweep", lo, _sweep_batch)
    elif run.write and run.checkpoint_stored:

        def complete() -> None:
            with _target_transaction(run.dbs, write=True) as target:
                state.save_checkpoint(target, run.pass_name, None, run.clock())

        _retrying(run, "complete", None, complete)


@dataclass(frozen=True)
class _Batch:
    """What one committed batch did: where it ended, its counts, the rows it set aside."""

    hi: Key | None
    counts: Counts
    rejected: list[tuple[Row, str]]
    via: str = "rows"
    """How the rows were compared or written: ``rows``, ``checksum`` (equal summaries,
    nothing read) or ``text`` (an empty target range filled by :mod:`etl.textcopy`)."""


BatchWork = Callable[[_Run, Key | None, bool], _Batch]
"""One batch from ``lo``: read, compare, write, commit; ``isolate`` splits refused writes."""


def _phase(run: _Run, phase: str, lo: Key | None, work: BatchWork) -> None:
    """Run batches from ``lo`` to the end of the key space, each retried as a whole."""
    while True:
        started = time.monotonic()
        done = _batch(run, phase, lo, work)
        run.counts.add(done.counts)  # only now: a failed attempt's counts never commit
        _batch_done(run, phase, lo, done.hi, done.counts, started, done.rejected, via=done.via)
        if done.hi is None:
            return
        lo = done.hi


def _batch(run: _Run, phase: str, lo: Key | None, work: BatchWork) -> _Batch:
    """One batch, retried after transient errors; split up when the target refuses rows.

    A data error (a constraint or trigger the validator could not know about) would
    fail every retry alike, so the batch is redone once with ``isolate``: its writes go
    in halves under savepoints until the refused rows are found and set aside.
    """
    try:
        return _retrying(run, phase, lo, partial(work, run, lo, False))
    except DBAPIError as error:
        if not is_data_error(error):
            raise
        log.warning(
            "batch_isolating_rows",
            phase=phase,
            lo=list(lo) if lo else None,
            error=describe_error(error),
        )
        return _retrying(run, phase, lo, partial(work, run, lo, True))


def _retrying(run: _Run, phase: str, lo: Key | None, work: Callable[[], T]) -> T:
    """``work`` (a whole transaction) retried per the run's policy after transient errors."""

    def attempt() -> T:
        used = run.budget.used  # a rolled-back attempt deleted nothing
        try:
            return work()
        except BaseException:
            run.budget.used = used
            raise

    return with_retries(
        run.options.retry,
        attempt,
        describe=describe_error,
        phase=phase,
        lo=list(lo) if lo else None,
    )


def protected_keys(run: _Run, target: Session, rejected: list[tuple[Row, str]]) -> set[Key]:
    """Keys whose target copy must stay: the rejected rows' keys, as the target spells them.

    A case-insensitive target may hold 'Anna' for a rejected source row 'anna'; only the
    target can say which of its keys equal a rejected one, so it is asked (rejects are
    rare, so this costs nothing on the usual batch).
    """
    keys = {row[: run.key_length] for row, _ in rejected}
    askable = [
        key for key in keys if all(part is not None and "\x00" not in str(part) for part in key)
    ]
    if askable and run.plan.target_exists:
        plan, job = run.plan, run.job
        found = store.read_keys(target, plan.target_table, job.key, job.key, askable)
        keys.update(tuple(row) for row in found)
    return keys


def _range_batch(run: _Run, lo: Key | None, isolate: bool) -> _Batch:
    """Range mode: the source's batch (lo, hi] against the target's rows in (lo, hi]."""
    if run.copies_text and not isolate:
        copied = _copy_batch(run, lo)
        if copied is not None:
            return copied
    plan, job, size = run.plan, run.job, run.options.batch_size
    page = _read_source_page(run, lo)
    hi = page[-1][: run.key_length] if len(page) == size else None
    valid, rejected = _check(run, page)
    with _target_transaction(run.dbs, write=run.write) as target:
        current = (
            store.read_range(
                target, plan.target_table, job.columns, job.key, lo, hi, plan.target_backend
            )
            if plan.target_exists
            else []
        )
        changes = diff_rows(
            valid,
            current,
            key_length=run.key_length,
            equals=plan.equals,
            delete_missing=job.delete_policy == "propagate",
            protected=protected_keys(run, target, rejected),
        )
        run.budget.take(len(changes.deletes))
        rejected += _apply(run, target, changes, isolate=isolate)
        counts = _counts(len(page), changes, rejected)
        next_checkpoint = Checkpoint("range", hi, run.run_id) if hi else None
        _record(run, target, rejected, counts, next_checkpoint, move_checkpoint=True)
    return _Batch(hi, counts, rejected)


def _copy_batch(run: _Run, lo: Key | None) -> _Batch | None:
    """A batch of source rows into an empty target range as source-written SQL text.

    None (the caller goes row by row) when the target already holds rows in the range,
    the text is too long for one statement, or the copy cannot be made at all (then
    not again this run; a transient error is retried like any other).
    """
    plan, job = run.plan, run.job
    if not run.copy_limit:
        with run.dbs.Target() as target:
            if store.no_backslash_escapes(target):  # QUOTE's escapes would be misread
                run.copies_text = False
                return None
            run.copy_limit = store.statement_limit(target)
    try:
        hi, values = _read_ahead(run, "text", lo, _fetch_text, lambda fetched: fetched[0])
    except DBAPIError as error:
        if is_transient(error):
            raise
        log.warning("text_copy_off", error=describe_error(error))
        run.copies_text = False
        return None
    if values is None:  # rows too wide for whole batches in one statement: not worth asking
        log.info("text_copy_off", reason="a batch's text is too long for one statement")
        run.copies_text = False
        return None
    with _target_transaction(run.dbs, write=True) as target:
        if store.any_rows(target, plan.target_table, job.key, lo, hi, plan.target_backend):
            return None
        if values.rows:
            store.upsert_values(target, plan.target_table, job.columns, job.key, values.text)
        counts = Counts(rows_read=values.rows, inserted=values.rows)
        next_checkpoint = Checkpoint("range", hi, run.run_id) if hi else None
        _record(run, target, [], counts, next_checkpoint, move_checkpoint=True)
    return _Batch(hi, counts, [], via="text")


def _fetch_text(run: _Run, lo: Key | None) -> tuple[Key | None, textcopy.Values | None]:
    """The end of the batch after ``lo`` and its rows as values text, from the source."""
    plan, job = run.plan, run.job
    with run.dbs.Source() as source:
        hi = checksum.boundary(source, _scopes(run)[0], lo, run.options.batch_size)
        found = textcopy.values(
            source, plan.source_table, job.columns, job.key, lo, hi, run.copy_limit
        )
    return hi, found


def _checksums_usable(run: _Run) -> bool:
    """Whether range batches can let both databases checksum their rows first.

    Only between two databases of the same kind (each kind prints values its own way)
    and only when a source row goes to the target as it is: with a transform or a
    business rule, an unchanged checksum would not prove the row need not be checked.
    An empty target has nothing to compare: the plain batches load it.
    """
    plan, job = run.plan, run.job
    return (
        plan.source_backend == plan.target_backend
        and plan.source_backend in checksum.BACKENDS
        and plan.target_exists
        and run.budget.target_rows > 0
        and job.transform is None
        and job.validate is None
    )


def _checksum_batch(run: _Run, lo: Key | None, isolate: bool) -> _Batch:
    """Range mode, same kind of database: rows are read only where the checksums differ.

    The range (lo, hi] holds ``run.span`` source keys. Equal summaries (count and
    checksum) end it there; otherwise row tokens name the keys whose rows differ,
    and only those rows are read from both sides and compared by the usual rules.
    """
    source_scope, target_scope = _scopes(run)
    hi = _boundary(run, lo, run.span)
    if hi is not None:
        _prefetch_boundary(run, hi, _grown(run))
    if not run.dense:
        theirs, ours = _on_both(
            run,
            lambda s: checksum.summary(s, source_scope, lo, hi),
            lambda t: checksum.summary(t, target_scope, lo, hi),
        )
        if theirs == ours:
            run.span = _grown(run)
            counts = Counts(rows_read=theirs[0], unchanged=theirs[0])
            if hi is None and run.write and run.checkpoint_stored:
                with _target_transaction(run.dbs, write=True) as target:
                    _record(run, target, [], counts, None, move_checkpoint=True)
            return _Batch(hi, counts, [], via="checksum")
        if ours[0] == 0:
            run.span = run.options.batch_size
            return _range_batch(run, lo, isolate)  # nothing there yet: load a batch as it is
    found = _differing_key_hashes(run, lo, hi)
    if found is not None and found.target_rows == 0 < found.source_rows:
        run.span, run.dense = run.options.batch_size, False
        return _range_batch(run, lo, isolate)
    changed = len(found.hashes) if found is not None else run.span
    # Changes come in clusters or everywhere: after a range with some, the next one
    # most likely has some too, and its summaries would only repeat the token scan.
    run.dense = changed > 0
    grow = changed <= run.options.batch_size // 2
    run.span = _grown(run) if grow else run.options.batch_size
    if found is None:
        return _write_differences(run, lo, hi, 0, None, isolate)
    return _write_differences(run, lo, hi, found.source_rows, found.hashes, isolate)


def _boundary(run: _Run, lo: Key | None, span: int) -> Key | None:
    """The end of the range of ``span`` source keys after ``lo``, prefetched if guessed."""
    prefetched, run.prefetched = run.prefetched, None
    if prefetched is not None and prefetched[:2] == (lo, span):
        return prefetched[2].result()
    with run.dbs.Source() as source:
        return checksum.boundary(source, _scopes(run)[0], lo, span)


def _prefetch_boundary(run: _Run, lo: Key, span: int) -> None:
    """Start finding the next range's end while this range is checksummed.

    The guess (this range is unchanged, so the next one is twice as long) is right
    for every range of an unchanged table; a wrong guess costs one index scan.
    """

    def find() -> Key | None:
        with run.dbs.Source() as source:
            return checksum.boundary(source, _scopes(run)[0], lo, span)

    assert run.pool is not None
    run.prefetched = (lo, span, run.pool.submit(find))


def _grown(run: _Run) -> int:
    return min(run.span * 2, max(MAX_SPAN, run.options.batch_size))


@dataclass(frozen=True)
class _Tokens:
    """What the row tokens of a range showed."""

    hashes: list[str]
    """Key hashes of rows that differ (present on one side, or with other values)."""
    source_rows: int
    target_rows: int


def _scopes(run: _Run) -> tuple[checksum.Scope, checksum.Scope]:
    if run.scopes is not None:
        return run.scopes
    plan, job = run.plan, run.job
    hashing = checksum.hash_kind(run.dbs.source_engine, run.dbs.target_engine)
    return (
        checksum.Scope(plan.source_table, job.columns, job.key, plan.source_backend, hashing),
        checksum.Scope(plan.target_table, job.columns, job.key, plan.target_backend, hashing),
    )


def _differing_key_hashes(run: _Run, lo: Key | None, hi: Key | None) -> _Tokens | None:
    """Key hashes whose rows differ in (lo, hi]; None when the range must be read whole."""
    source_scope, target_scope = _scopes(run)
    try:
        theirs, ours = _on_both(
            run,
            lambda s: checksum.row_tokens(s, source_scope, lo, hi),
            lambda t: checksum.row_tokens(t, target_scope, lo, hi),
        )
    except checksum.TokensTruncated as error:
        log.warning("row_tokens_truncated", rows=error.rows, tokens=error.tokens)
        return None
    # A token is key hash + row hash: one missing on either side names a key to compare.
    hashes = sorted(checksum.key_hashes(set(theirs).symmetric_difference(ours)))
    return _Tokens(hashes, len(theirs), len(ours))


def _write_differences(
    run: _Run,
    lo: Key | None,
    hi: Key | None,
    source_rows: int,
    hashes: list[str] | None,
    isolate: bool,
) -> _Batch:
    """Compare and write the rows of (lo, hi] with these key hashes (None: every row).

    Keys go in chunks of a batch, so memory holds a batch's rows however many differ;
    the whole range is still one target transaction with its checkpoint.
    """
    counts, rejected = Counts(), list[tuple[Row, str]]()
    chunks = (
        [None]
        if hashes is None
        else [
            hashes[i : i + run.options.batch_size]
            for i in range(0, len(hashes), run.options.batch_size)
        ]
    )
    with _target_transaction(run.dbs, write=run.write) as target:
        if len(chunks) == 1:
            counts, rejected = _compare_and_write(run, target, lo, hi, chunks[0], isolate)
        else:
            # A key respelled under the collation ('Anna' for 'anna') has two key hashes
            # that may fall in different chunks: every delete must precede every upsert,
            # or a later chunk's delete would remove the row an earlier chunk upserted.
            for chunk in chunks:
                counts.add(_compare_and_write(run, target, lo, hi, chunk, isolate, "deletes")[0])
            for chunk in chunks:
                done, refused = _compare_and_write(run, target, lo, hi, chunk, isolate, "upserts")
                counts.add(done)
                rejected += refused
        # Rows outside the differing keys have equal tokens on both sides: unchanged.
        untouched = source_rows - counts.rows_read if hashes is not None else 0
        counts.rows_read += untouched
        counts.unchanged += untouched
        next_checkpoint = Checkpoint("range", hi, run.run_id) if hi else None
        _record(run, target, rejected, counts, next_checkpoint, move_checkpoint=True)
    return _Batch(hi, counts, rejected)


def _compare_and_write(
    run: _Run,
    target: Session,
    lo: Key | None,
    hi: Key | None,
    hashes: list[str] | None,
    isolate: bool,
    only: Literal["deletes", "upserts"] | None = None,
) -> tuple[Counts, list[tuple[Row, str]]]:
    """One chunk of differing keys: read both sides' rows, diff, validate, write.

    ``only`` writes just the deletes (counting only them) or just the upserts.
    """
    source_scope, target_scope = _scopes(run)

    def read(session: Session, scope: checksum.Scope) -> list[Row]:
        if hashes is None:
            return store.read_range(
                session, scope.table, scope.columns, scope.key, lo, hi, scope.backend
            )
        return checksum.rows_by_key_hash(session, scope, lo, hi, hashes)

    page, current = _on_both(
        run, lambda s: read(s, source_scope), lambda t: read(t, target_scope), target=target
    )
    valid, rejected = _check(run, page)
    changes = diff_rows(
        valid,
        current,
        key_length=run.key_length,
        equals=run.plan.equals,
        delete_missing=run.job.delete_policy == "propagate",
        protected=protected_keys(run, target, rejected),
    )
    if only == "deletes":
        changes = Changes(deletes=changes.deletes)
    elif only == "upserts":
        changes.deletes = []  # the deletes pass removed them already
    run.budget.take(len(changes.deletes))
    rejected += _apply(run, target, changes, isolate=isolate)
    if only == "deletes":
        return Counts(deleted=len(changes.deletes)), []
    return _counts(len(page), changes, rejected), rejected


def _on_both(
    run: _Run,
    on_source: Callable[[Session], T],
    on_target: Callable[[Session], U],
    *,
    target: Session | None = None,
) -> tuple[T, U]:
    """The source's work in the worker thread while the target's runs here.

    Two databases (or two cores of one server) work at once, and the client's share,
    mostly waiting on sockets, releases the GIL. Each side has its own session.
    """

    def source_side() -> T:
        with run.dbs.Source() as source:
            return on_source(source)

    assert run.pool is not None
    future = run.pool.submit(source_side)
    try:
        if target is not None:
            ours = on_target(target)
        else:
            with run.dbs.Target() as session:
                ours = on_target(session)
    except BaseException:
        future.exception()  # wait for it: no query may outlive the attempt
        raise
    return future.result(), ours


def lookup_changes(
    run: _Run,
    target: Session,
    valid: list[Row],
    *,
    delete_missing: bool,
    protected: Collection[Key] = (),
) -> Changes:
    """Compare rows with the target rows found by their keys: no key range needed."""
    plan, job = run.plan, run.job
    keys = [row[: run.key_length] for row in valid]
    current = (
        store.read_keys(target, plan.target_table, job.columns, job.key, keys)
        if plan.target_exists
        else []
    )
    return diff_rows(
        valid,
        current,
        key_length=run.key_length,
        equals=plan.equals,
        delete_missing=delete_missing,
        protected=protected,
    )


def _upsert_batch(run: _Run, lo: Key | None, isolate: bool) -> _Batch:
    """Lookup mode, phase 1: write each source batch's rows, found by key on the target."""
    size = run.options.batch_size
    page = _read_source_page(run, lo)
    hi = page[-1][: run.key_length] if len(page) == size else None
    valid, rejected = _check(run, page)
    with _target_transaction(run.dbs, write=run.write) as target:
        # The target's collation is exact here, so what it returns matches by bytes.
        changes = lookup_changes(run, target, valid, delete_missing=False)
        rejected += _apply(run, target, changes, isolate=isolate)
        counts = _counts(len(page), changes, rejected)
        following = (
            Checkpoint("upsert", hi, run.run_id) if hi else Checkpoint("sweep", (), run.run_id)
        )
        _record(run, target, rejected, counts, following, move_checkpoint=True)
    return _Batch(hi, counts, rejected)


def _sweep_batch(run: _Run, lo: Key | None, isolate: bool) -> _Batch:
    """Lookup mode, phase 2: walk the target's keys and delete those the source lacks."""
    plan, job, size = run.plan, run.job, run.options.batch_size
    with _target_transaction(run.dbs, write=run.write) as target:
        keys = (
            store.read_page(
                target, plan.target_table, job.key, job.key, lo, size, plan.target_backend
            )
            if plan.target_exists
            else []
        )
        hi = keys[-1] if len(keys) == size else None
        with run.dbs.Source() as source:
            found = store.read_keys(source, plan.source_table, job.key, job.key, keys)
        # The source may call 'anna' and 'Anna' equal; only an identical key counts.
        deletes = missing_keys(keys, set(found))
        run.budget.take(len(deletes))
        _apply(run, target, Changes(deletes=deletes), isolate=False)
        counts = Counts(deleted=len(deletes))
        following = Checkpoint("sweep", hi, run.run_id) if hi else None
        _record(run, target, [], counts, following, move_checkpoint=True)
    return _Batch(hi, counts, [])


def _read_source_page(run: _Run, lo: Key | None) -> list[Row]:
    """The source page after ``lo``; the page after it starts reading in the background."""
    size, length = run.options.batch_size, run.key_length
    return _read_ahead(
        run, "rows", lo, _fetch_page, lambda page: page[-1][:length] if len(page) == size else None
    )


def _read_ahead(
    run: _Run,
    what: str,
    lo: Key | None,
    fetch: Callable[[_Run, Key | None], T],
    following: Callable[[T], Key | None],
) -> T:
    """``fetch(run, lo)``, and the read after it (from ``following(result)``) started.

    The next read runs while this batch is checked and written: the target's server
    works on the write while the client takes in the next rows (waiting on a socket
    releases the GIL). A read done ahead is used only for the ``lo`` it was made
    from; a retried batch that ends elsewhere reads afresh.
    """
    ahead, run.ahead = run.ahead, None
    if ahead is not None and ahead[:2] == (what, lo):
        result: T = ahead[2].result()
    else:
        result = fetch(run, lo)
    after = following(result)
    if after is not None and run.pool is not None:
        run.ahead = (what, after, run.pool.submit(fetch, run, after))
    return result


def _fetch_page(run: _Run, lo: Key | None) -> list[Row]:
    """One page of source rows, in its own short read transaction."""
    plan, job = run.plan, run.job
    with run.dbs.Source() as source:
        return store.read_page(
            source,
            plan.source_table,
            job.columns,
            job.key,
            lo,
            run.options.batch_size,
            plan.source_backend,
        )


def _check(run: _Run, page: Sequence[Row]) -> tuple[list[Row], list[tuple[Row, str]]]:
    """Split a page into rows the target can hold and rows set aside with a reason."""
    job, check = run.job, run.check
    if check is None:  # no transform or rule, and the source's types guarantee every row fits
        return list(page), []
    valid: list[Row] = []
    rejected: list[tuple[Row, str]] = []
    for raw in page:
        row = raw
        if job.transform is not None:
            row = tuple(job.transform(dict(zip(job.columns, raw, strict=True))).values())
        reason = check(row)
        if reason:
            rejected.append((raw, reason))
        else:
            valid.append(row)
    return valid, rejected


def _apply(run: _Run, target: Session, changes: Changes, *, isolate: bool) -> list[tuple[Row, str]]:
    """Deletes first, then upserts (see the note on key spelling in ``etl.diff``).

    Returns the rows the target refused, with its own error message: always none
    unless ``isolate``, when a refused row no longer fails the whole batch.
    """
    if not run.write:
        return []
    plan, job = run.plan, run.job
    store.delete_keys(target, plan.target_table, job.key, changes.deletes)
    rows = [*changes.inserts, *changes.updates]
    if isolate:
        return _upsert_isolating(run, target, rows)
    store.upsert(target, plan.target_table, job.columns, job.key, rows, plan.target_backend)
    return []


def _upsert_isolating(run: _Run, target: Session, rows: list[Row]) -> list[tuple[Row, str]]:
    """Upsert under a savepoint; on a data error split in halves until single rows fail.

    k refused rows among n cost about 2·k·log2(n) statements, and only in the rare
    batch that has them; the good rows still commit with the batch's checkpoint.
    """
    if not rows:
        return []
    plan, job = run.plan, run.job
    try:
        with target.begin_nested():
            store.upsert(target, plan.target_table, job.columns, job.key, rows, plan.target_backend)
        return []
    except DBAPIError as error:
        if not is_data_error(error):
            raise
        if len(rows) == 1:
            return [(rows[0], describe_error(error))]
    middle = len(rows) // 2
    return _upsert_isolating(run, target, rows[:middle]) + _upsert_isolating(
        run, target, rows[middle:]
    )


def _record(
    run: _Run,
    target: Session,
    rejected: list[tuple[Row, str]],
    counts: Counts,
    checkpoint: Checkpoint | None,
    *,
    move_checkpoint: bool,
) -> None:
    """Rejects, totals and checkpoint, in the batch's own transaction.

    The stored totals include this batch; ``run.counts`` itself grows only after the
    commit, so a batch that is rolled back and retried is not counted twice.
    """
    if not run.write:
        return
    now = run.clock()
    if not (counts.inserted or counts.updated or counts.deleted or counts.rejected):
        # Nothing written: redoing this batch after a crash is as harmless as skipping
        # it, so the checkpoint stays (and finish_run stores the totals). Only the end
        # of a pass must clear a checkpoint, or the next run would resume from it.
        if move_checkpoint and checkpoint is None and run.checkpoint_stored:
            _guard(run)
            state.save_checkpoint(target, run.pass_name, None, now)
        return
    _guard(run)
    totals = Counts(**run.counts.as_dict())
    totals.add(counts)
    state.record_rejects(
        target, run.run_id, run.job.name, run.job.columns, rejected, run.key_length, now
    )
    state.save_counts(target, run.run_id, totals)
    if move_checkpoint:
        state.save_checkpoint(target, run.pass_name, checkpoint, now)
        run.checkpoint_stored = True  # kept even if this transaction rolls back: harmless


def _guard(run: _Run) -> None:
    """Before a batch that writes commits: raise if this run may no longer write."""
    if run.guard is not None:
        run.guard()


def _counts(read: int, changes: Changes, rejected: list[tuple[Row, str]]) -> Counts:
    """A batch's counts; rows the target refused count as rejected, not written."""
    refused = {id(row) for row, _ in rejected}
    return Counts(
        rows_read=read,
        inserted=sum(1 for row in changes.inserts if id(row) not in refused),
        updated=sum(1 for row in changes.updates if id(row) not in refused),
        deleted=len(changes.deletes),
        unchanged=changes.unchanged,
        rejected=len(rejected),
    )


def _batch_done(
    run: _Run,
    phase: str,
    lo: Key | None,
    hi: Key | None,
    counts: Counts,
    started: float,
    rejected: list[tuple[Row, str]],
    *,
    via: str = "rows",
) -> None:
    seconds = time.monotonic() - started
    log.info(
        "batch_committed" if run.write else "batch_compared",
        phase=phase,
        via=via,
        lo=list(lo) if lo else None,
        hi=list(hi) if hi else None,
        seconds=round(seconds, 4),
        **counts.as_dict(),
    )
    _log_rejects(rejected, run.job.columns)
    if run.on_batch is not None:
        run.on_batch(BatchDone(phase, counts, seconds, run.total_source_rows))
    if hi is None:
        return  # the phase is complete: a stop asked for now is honoured after it
    stop, pause = run.stop, run.options.pause_between_batches
    # A stop that arrives during the pause ends the run now, not after one more batch.
    if stop is not None and (stop.is_set() or (pause > 0 and stop.wait(pause))):
        raise Interrupted(run.job.name)
    if stop is None and pause > 0:
        time.sleep(pause)


def _log_rejects(rejected: list[tuple[Row, str]], columns: Sequence[str]) -> None:
    for row, reason in rejected:
        log.warning("row_rejected", reason=reason, row=state.encode_row(columns, row))


def _finish(run: _Run, result: RunResult) -> None:
    """Record the run's end; a failure to do so is logged, not raised over the cause."""
    rate = run.counts.rows_read / result.seconds if result.seconds else 0.0
    log.info(
        "run_finished",
        status=result.status,
        mode=run.plan.mode,
        dry_run=run.options.dry_run,
        seconds=round(result.seconds, 3),
        rows_per_second=round(rate),
        error=result.error,
        **run.counts.as_dict(),
    )
    if not run.write or not run.plan.target_exists:
        return
    try:
        with _target_transaction(run.dbs, write=True) as target:
            state.finish_run(
                target, run.run_id, result.status, run.clock(), run.counts, result.error
            )
    except Exception as error:
        log.error("run_record_failed", error=describe_error(error))


@contextmanager
def _target_transaction(dbs: Databases, *, write: bool) -> Iterator[Session]:
    """One target transaction: committed when writing, always rolled back in a dry run."""
    with dbs.Target() as session:
        if write:
            with session.begin():
                yield session
        else:
            try:
                yield session
            finally:
                session.rollback()


__all__ = ["BatchDone", "EtlError", "RunResult", "SyncOptions", "run_job", "utc_now"]
