"""The subcommands: each reads its arguments and settings, does its work, returns an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from etl.cli.progress import progress_reporter
from etl.cli.report import rejects_table, runs_table, summary
from etl.config import Settings
from etl.engine import state
from etl.engine.db import connect, make_databases, make_engine
from etl.engine.results import RunResult, SyncOptions, utc_now
from etl.engine.schema import table_exists
from etl.engine.verify import describe as describe_verify
from etl.engine.verify import verify_job
from etl.errors import (
    EXIT_DRIFT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REJECTED,
    ConfigError,
    LockBusy,
)
from etl.job import Job
from etl.logs import Redactor
from etl.service.runner import batch_size_of, incremental_options, run_exclusive, sync_options
from etl.service.schedule import job_schedules, jobs_table
from etl.service.stopping import GracefulStop
from jobs import REGISTRY, get_job

log = structlog.get_logger("etl.cli")


def cmd_run(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    jobs = _selected_jobs(args.jobs, settings)
    # Checked for every job before any runs: a job without a cursor column is a usage error.
    incremental = (
        {job.name: incremental_options(job, settings) for job in _incremental_jobs(jobs, args)}
        if args.incremental
        else {}
    )
    if args.incremental:
        jobs = [job for job in jobs if job.name in incremental]
    dbs = make_databases(settings)
    results: list[RunResult] = []
    locked = 0
    # SIGTERM/SIGINT: finish the batch in flight, record the run interrupted, run no more jobs.
    stopper = GracefulStop(settings.daemon.stop_timeout)
    try:
        with stopper.installed() as stop:
            for job in jobs:
                if stop.is_set():
                    break
                options = _options(job, settings, args)
                try:
                    with progress_reporter(sys.stderr, job.name) as on_batch:
                        result = run_exclusive(
                            job,
                            dbs,
                            options,
                            stop=stop,
                            on_batch=on_batch,
                            incremental=incremental.get(job.name),
                        )
                except LockBusy as busy:  # another process runs it: not a failure of ours
                    print(redactor(f"etl: {busy}"), file=sys.stderr)
                    locked += 1
                    continue
                results.append(result)
                print(redactor(summary(result)))
    finally:
        dbs.dispose()
    return run_exit_code(results, locked=locked)


def _incremental_jobs(jobs: Sequence[Job], args: argparse.Namespace) -> list[Job]:
    """The jobs to run incrementally: all named ones, else the enabled ones that can."""
    if args.jobs:
        return list(jobs)
    able = [job for job in jobs if job.cursor_column]
    if not able:
        raise ConfigError("--incremental: no enabled job has a cursor column")
    return able


def run_exit_code(results: Sequence[RunResult], locked: int = 0) -> int:
    """The worst outcome wins: failed, interrupted, locked elsewhere, rejected rows, success."""
    if any(r.status not in ("succeeded", "interrupted") for r in results):
        return EXIT_FAILURE
    if any(r.status == "interrupted" for r in results):
        return EXIT_INTERRUPTED
    if locked:
        return EXIT_LOCKED
    if any(r.counts.rejected for r in results):
        return EXIT_REJECTED
    return EXIT_OK


def cmd_daemon(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    # Imported here: the scheduler and the metrics client cost a one-shot run start-up time.
    from etl.service.daemon import serve

    return serve(settings, _selected_jobs([], settings))


def cmd_jobs(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    _selected_jobs([], settings)  # a [jobs.<name>] section naming no job is an error here too
    now = utc_now()
    rows = []
    for name, job in REGISTRY.items():
        job_settings = settings.job(name)
        for schedule in job_schedules(job, job_settings, now):  # full, then incremental
            fire = schedule.next_fire_time(now) if job_settings.enabled else None
            rows.append((name, job_settings.enabled, schedule.description, fire))
    print(jobs_table(rows))
    return EXIT_OK


def _options(job: Job, settings: Settings, args: argparse.Namespace) -> SyncOptions:
    return sync_options(
        job,
        settings,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        allow_mass_delete=args.allow_mass_delete,
    )


def _selected_jobs(names: Sequence[str], settings: Settings) -> list[Job]:
    """The named jobs (all must exist), or every enabled one."""
    if names:
        return [get_job(name) for name in dict.fromkeys(names)]
    unknown = sorted(set(settings.jobs) - set(REGISTRY))
    if unknown:
        where = settings.config_path or "environment"
        raise ConfigError(
            f"{where}: [jobs.{unknown[0]}] names no known job; "
            f"known jobs: {', '.join(sorted(REGISTRY))}"
        )
    return [job for name, job in REGISTRY.items() if settings.job(name).enabled]


def cmd_status(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    runs = _read_state(settings, lambda s: state.recent_runs(s, args.limit, args.job))
    print(redactor(runs_table(runs)) if runs else "no runs recorded yet")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    dbs = make_databases(settings)
    drift = False
    try:
        for job in _selected_jobs(args.jobs, settings):
            job_settings = settings.job(job.name)
            report = verify_job(
                job,
                dbs,
                page_size=args.batch_size or batch_size_of(job, settings),
                limit=args.limit,
                source_table=job_settings.source_table,
                target_table=job_settings.target_table,
            )
            print(redactor("\n".join(describe_verify(report))))
            drift = drift or report.drift > 0
    finally:
        dbs.dispose()
    return EXIT_DRIFT if drift else EXIT_OK


def cmd_rejects(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    if args.job:
        get_job(args.job)
    rows = _read_state(settings, lambda s: state.latest_rejects(s, args.limit, args.job))
    print(redactor(rejects_table(rows)) if rows else "no rejected rows recorded")
    return EXIT_OK


def _read_state(
    settings: Settings, query: Callable[[Session], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Query the state tables in the target; an empty list if no run ever created them."""
    engine = make_engine(settings.target, "target")
    try:
        with connect(engine, "target") as connection:
            if not table_exists(connection, state.runs.name):
                return []
            with Session(bind=connection) as session:
                return query(session)
    finally:
        engine.dispose()


def cmd_demo(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    job = _demo_job(args.job)
    assert job.demo is not None
    engine = make_engine(settings.source, "source")
    try:
        table = job.table_named(settings.job(job.name).source_table)
        count = job.demo(engine, table, args.rows, args.seed, args.replace)
    finally:
        engine.dispose()
    print(
        redactor(
            f"demo: wrote {count:,} {job.name} rows to {table.name} in the source "
            f"({engine.url.render_as_string(hide_password=True)})"
        )
    )
    return EXIT_OK


def _demo_job(name: str | None) -> Job:
    """The named job, or the first registered one that has demo data."""
    if name:
        job = get_job(name)
        if job.demo is None:
            raise ConfigError(f"job {name!r} has no demo data")
        return job
    for job in REGISTRY.values():
        if job.demo is not None:
            return job
    raise ConfigError("no registered job has demo data")
