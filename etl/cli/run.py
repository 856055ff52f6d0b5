"""``run``: every selected job once, side by side, and the worst outcome as the exit code.

Its own module so that ``python -m etl run`` imports what a run needs and nothing of the
other commands (the verifier, the scheduler's triggers, the status reports).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from etl.cli.catalog import Catalog, load_catalog
from etl.cli.progress import progress_reporter
from etl.cli.report import jobs_summary, summary
from etl.config import Settings
from etl.engine.db import Databases, describe_error, make_databases, writers
from etl.engine.results import RunResult, SyncOptions
from etl.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REJECTED,
    ConfigError,
    EtlError,
    LockBusy,
)
from etl.job import Job
from etl.logs import Redactor
from etl.service.parallel import run_concurrently
from etl.service.runner import incremental_options, run_exclusive, sync_options
from etl.service.stopping import GracefulStop


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


def _options(job: Job, settings: Settings, args: argparse.Namespace) -> SyncOptions:
    return sync_options(
        job,
        settings,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        allow_mass_delete=args.allow_mass_delete,
    )
