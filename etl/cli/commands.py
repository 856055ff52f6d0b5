"""The subcommands: each reads its arguments and settings, does its work, returns an exit code."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from etl.cli.catalog import Catalog, configured_sections, known_names, load_catalog
from etl.cli.progress import progress_reporter
from etl.cli.report import jobs_summary, rejects_table, runs_table, summary
from etl.config import Settings
from etl.engine import state
from etl.engine.db import (
    Databases,
    connect,
    describe_error,
    make_databases,
    make_engine,
    writers,
)
from etl.engine.results import RunResult, SyncOptions, utc_now
from etl.engine.schema import table_exists
from etl.engine.verify import describe as describe_verify
from etl.engine.verify import verify_job
from etl.errors import (
    EXIT_CONFIG,
    EXIT_DRIFT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REJECTED,
    ConfigError,
    EtlError,
    LockBusy,
    UnknownJob,
)
from etl.job import Job
from etl.logs import Redactor
from etl.service.parallel import run_concurrently
from etl.service.runner import batch_size_of, incremental_options, run_exclusive, sync_options
from etl.service.schedule import JobLine, job_schedules, jobs_table
from etl.service.stopping import GracefulStop
from jobs import REGISTRY, get_job

log = structlog.get_logger("etl.cli")


def cmd_run(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    dbs = make_databases(settings)
    try:
        catalog = load_catalog(settings, dbs.source_engine)
        return _run_jobs(args, catalog, dbs, redactor)
    finally:
        dbs.dispose()


def _run_jobs(
    args: argparse.Namespace, catalog: Catalog, dbs: Databases, redactor: Redactor
) -> int:
    settings = catalog.settings
    jobs = catalog.select(args.jobs)
    # Checked for every job before any runs: a job without a cursor column is a usage error.
    incremental = (
        {job.name: incremental_options(job, settings) for job in _incremental_jobs(jobs, args)}
        if args.incremental
        else {}
    )
    if args.incremental:
        jobs = [job for job in jobs if job.name in incremental]
    workers = writers(settings, dbs.target_engine)
    alone = len(jobs) == 1 or workers == 1

    def run_one(job: Job) -> RunResult:
        stream = sys.stderr if alone else io.StringIO()  # one progress bar at a time
        with progress_reporter(stream, job.name) as on_batch:
            return run_exclusive(
                job,
                dbs,
                _options(job, settings, args),
                stop=stop,
                on_batch=on_batch,
                incremental=incremental.get(job.name),
            )

    results: list[RunResult] = []
    locked, errors, skipped = 0, [], []
    # SIGTERM/SIGINT: finish the batches in flight, record those runs interrupted, start no more.
    stopper = GracefulStop(settings.daemon.stop_timeout)
    with stopper.installed() as stop:
        for outcome in run_concurrently(jobs, run_one, workers=workers, stop=stop):
            if isinstance(outcome.error, LockBusy):  # another process runs it: not our failure
                print(redactor(f"etl: {outcome.error}"), file=sys.stderr)
                locked += 1
            elif outcome.error is not None:
                if len(jobs) == 1:
                    raise outcome.error  # one job: its error is the command's, as ever
                errors.append(outcome.error)
                results.append(_failed(outcome.job, outcome.error))
                print(
                    redactor(f"etl: error: {outcome.job.name}: {results[-1].error}"),
                    file=sys.stderr,
                )
                print(redactor(summary(results[-1])))
            elif outcome.result is not None:
                results.append(outcome.result)
                print(redactor(summary(outcome.result)))
            else:
                skipped.append(outcome.job.name)
    if skipped:
        print(f"not started (stop requested): {', '.join(sorted(skipped))}")
    if errors and len(errors) == len(jobs) and all(isinstance(e, ConfigError) for e in errors):
        return EXIT_CONFIG  # nothing could run: the configuration is what is wrong
    if len(jobs) > 1:
        print(jobs_summary(results, len(jobs)))
    return run_exit_code(results, locked=locked)


def _failed(job: Job, error: BaseException) -> RunResult:
    """The result of a job that failed before its run could start (setup, tables)."""
    text = str(error) if isinstance(error, EtlError) else describe_error(error)
    return RunResult(job.name, "", "failed", error=text)


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

    catalog = _catalog(settings)
    return serve(catalog.settings, catalog.select([]))


def cmd_jobs(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    catalog = _catalog(settings)
    now = utc_now()
    rows: list[JobLine] = []
    for name, job in catalog.jobs.items():
        job_settings = catalog.settings.job(name)
        table = job.table_named(job_settings.source_table).name
        if job_settings.target_table and job_settings.target_table != table:
            table += f" > {job_settings.target_table}"
        key = ", ".join(job.key)
        for schedule in job_schedules(job, job_settings, now):  # full, then incremental
            fire = schedule.next_fire_time(now) if job_settings.enabled else None
            rows.append((name, job_settings.enabled, table, key, schedule.description, fire))
    print(redactor(jobs_table(rows)))
    return EXIT_OK


def _catalog(settings: Settings) -> Catalog:
    """Every job; the source is reached only when configuration defines jobs to reflect."""
    if not configured_sections(settings):
        return load_catalog(settings, None)
    engine = make_engine(settings.source, "source")
    try:
        return load_catalog(settings, engine)
    finally:
        engine.dispose()


def _options(job: Job, settings: Settings, args: argparse.Namespace) -> SyncOptions:
    return sync_options(
        job,
        settings,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        allow_mass_delete=args.allow_mass_delete,
    )


def cmd_status(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    runs = _read_state(settings, lambda s: state.recent_runs(s, args.limit, args.job))
    print(redactor(runs_table(runs)) if runs else "no runs recorded yet")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    dbs = make_databases(settings)
    drift = False
    try:
        catalog = load_catalog(settings, dbs.source_engine)
        settings = catalog.settings
        for job in catalog.select(args.jobs):
            job_settings = settings.job(job.name)
            report = verify_job(
                job,
                dbs,
                page_size=args.batch_size or batch_size_of(job, settings),
                limit=args.limit,
                source_table=job_settings.source_table,
                target_table=job_settings.target_table,
                schema_drift=job_settings.schema_drift,
            )
            print(redactor("\n".join(describe_verify(report))))
            drift = drift or report.drift > 0
    finally:
        dbs.dispose()
    return EXIT_DRIFT if drift else EXIT_OK


def cmd_rejects(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    if args.job:
        _known_job(args.job, settings)
    rows = _read_state(settings, lambda s: state.latest_rejects(s, args.limit, args.job))
    print(redactor(rejects_table(rows)) if rows else "no rejected rows recorded")
    return EXIT_OK


def _known_job(name: str, settings: Settings) -> None:
    """UnknownJob unless ``name`` is or could be a job (expanded names need the source)."""
    known = known_names(settings)
    if name in known or f"{name.partition('.')[0]}.*" in known:
        return
    raise UnknownJob(name, known)


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
