"""One run of a job from start to end, full or incremental: the same lifecycle for both.

Plan (check both databases, choose the mode), start (load the checkpoint or watermark,
record the run as running), do the pass, finish (record how it ended). Failures after
the start are recorded in the run history and returned as a result with status
``failed``, so a daemon can carry on with the next tick.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import structlog

from etl.core.diff import Key
from etl.core.keys import shown
from etl.core.policy import DeleteBudget
from etl.core.validate import compile_checks
from etl.engine import sizes, state, watermarks
from etl.engine.cursors import cursor_of
from etl.engine.db import Databases, describe_error
from etl.engine.passes import FullPass, IncrementalPass, usable_checkpoint
from etl.engine.plan import Plan, make_plan
from etl.engine.results import BatchDone, Clock, IncrementalOptions, RunResult, SyncOptions, utc_now
from etl.engine.run import Hooks, Run
from etl.engine.strategies.incremental import MODE, IncrementalPages
from etl.engine.unit_of_work import UnitOfWork
from etl.errors import Interrupted, MassDeleteRefused
from etl.job import Job

log = structlog.get_logger("etl.sync")


class Pass(Protocol):
    """What a run does between its start and its end."""

    def execute(self, run: Run) -> None: ...

    def log_fields(self, run: Run) -> dict[str, Any]: ...


def run_job(
    job: Job,
    dbs: Databases,
    options: SyncOptions,
    *,
    incremental: IncrementalOptions | None = None,
    clock: Clock = utc_now,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
    guard: Callable[[], None] | None = None,
) -> RunResult:
    """One run of ``job``; ConfigError before any write when the setup is wrong.

    With ``incremental``, only the rows changed since the job's watermark. ``stop``
    ends the run after the batch in flight; ``on_batch`` follows its progress;
    ``guard`` raises when the run may no longer write (see :class:`~etl.engine.run.Hooks`).
    """
    column = cursor_of(job) if incremental is not None else None
    run_id = str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(job=job.name, run_id=run_id):
        plan = plan_run(job, dbs, options)
        job = plan.job  # as the tables are now (schema drift)
        started = time.monotonic()
        mode = MODE if column is not None else plan.mode
        result = RunResult(job.name, run_id, "running", mode=mode, dry_run=options.dry_run)
        hooks = Hooks(stop=stop, on_batch=on_batch, guard=guard)
        run = _new_run(job, dbs, plan, options, run_id, clock, hooks)
        work: Pass
        if column is not None and incremental is not None:
            work = _start_incremental(run, column, incremental)
        else:
            work = _start_full(run, result)
        try:
            work.execute(run)
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
        _finish(run, result, work.log_fields(run))
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
        schema_drift=options.schema_drift,
    )


def _new_run(
    job: Job,
    dbs: Databases,
    plan: Plan,
    options: SyncOptions,
    run_id: str,
    clock: Clock,
    hooks: Hooks,
) -> Run:
    # A transform's output is not the source's: then every column is checked.
    sources = plan.source_specs if job.transform is None else None
    return Run(
        job=job,
        dbs=dbs,
        plan=plan,
        options=options,
        run_id=run_id,
        clock=clock,
        hooks=hooks,
        pass_name=state.pass_name(
            job.name, plan.source_table.name, plan.target_table.name, job.table.name
        ),
        check=compile_checks(plan.specs, job.validate, sources=sources),
        budget=DeleteBudget(job.name, 0, 1.0, unlimited=True),
    )


def _start_full(run: Run, result: RunResult) -> FullPass:
    """Size (or count) both sides, find the checkpoint, record the run as running."""
    plan, job, options = run.plan, run.job, run.options
    # Before the run is recorded: a source that cannot be counted leaves no run marked
    # running (the caller records the failure), and no write transaction waits on it.
    run.sizes = sizes.measure(run)
    deferred = sizes.deferred(run) and not run.sizes.target_empty  # counted by the pass
    checkpoint = None
    if plan.target_exists and run.write:
        with UnitOfWork(run) as uow:
            state.create_state_tables(uow.session)
            stored = state.load_checkpoint(uow.session, run.pass_name)
            run.checkpoint_stored = stored is not None
            checkpoint = usable_checkpoint(stored, plan.mode)
            result.resumed_from = checkpoint.last_key if checkpoint else None
            _record_start(run, uow, plan.mode, result.resumed_from)
    run.budget = DeleteBudget(
        job.name,
        run.sizes.target_rows,
        options.max_delete_fraction,
        unlimited=not sizes.guarded(run),
        count=partial(sizes.count_both, run) if deferred else None,
    )
    log.info(
        "run_started",
        mode=plan.mode,
        dry_run=options.dry_run,
        source_rows=run.sizes.source_rows,
        target_rows=run.sizes.target_rows,
        rows_counted=run.sizes.exact,
        batch_size=options.batch_size,
        resumed_from=shown(checkpoint.last_key) if checkpoint else None,
        phase=checkpoint.phase if checkpoint else None,
    )
    return FullPass(checkpoint)


def _start_incremental(run: Run, column: str, options: IncrementalOptions) -> IncrementalPass:
    """Load the watermark and record the run as running."""
    watermark = None
    if run.plan.target_exists:
        with UnitOfWork(run) as uow:
            if run.write:
                watermarks.create_tables(uow.session)
            watermark = watermarks.load(uow.session, run.pass_name)
            if run.write:
                _record_start(run, uow, MODE, None)
    log.info(
        "run_started",
        mode=MODE,
        dry_run=run.options.dry_run,
        watermark=shown(watermark),
        batch_size=run.options.batch_size,
    )
    return IncrementalPass(IncrementalPages(run, column, watermark), options.lookback)


def _record_start(run: Run, uow: UnitOfWork, mode: str, resumed_from: Key | None) -> None:
    state.start_run(
        uow.session,
        run.run_id,
        run.job.name,
        mode,
        run.clock(),
        resumed_from,
        socket.gethostname(),
        os.getpid(),
    )


def _finish(run: Run, result: RunResult, fields: dict[str, Any]) -> None:
    """Record the run's end; a failure to do so is logged, not raised over the cause."""
    rate = run.counts.rows_read / result.seconds if result.seconds else 0.0
    log.info(
        "run_finished",
        status=result.status,
        mode=result.mode,
        dry_run=run.options.dry_run,
        seconds=round(result.seconds, 3),
        rows_per_second=round(rate),
        error=result.error,
        **fields,
        **run.counts.as_dict(),
    )
    if not run.write or not run.plan.target_exists:
        return
    try:
        with UnitOfWork(run) as uow:
            state.finish_run(
                uow.session, run.run_id, result.status, run.clock(), run.counts, result.error
            )
    except Exception as error:
        log.error("run_record_failed", error=describe_error(error))
        return
    if result.status == "succeeded" and run.source_version is not None:
        try:  # a hint for the next run: its loss costs time, never the run's record
            with UnitOfWork(run) as uow:
                state.save_source_version(
                    uow.session, run.pass_name, run.source_version, run.run_id, run.clock()
                )
        except Exception as error:
            log.warning("source_version_not_saved", error=describe_error(error))
