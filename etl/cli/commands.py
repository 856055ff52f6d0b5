"""The subcommands but ``run`` (:mod:`etl.cli.run`): each reads its arguments and settings,
does its work, returns an exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.orm import Session

from etl.cli.catalog import Catalog, known_names, load_catalog, needs_source
from etl.cli.report import rejects_table, runs_table
from etl.config import Settings
from etl.engine import state
from etl.engine.db import (
    connect,
    make_databases,
    make_engine,
)
from etl.engine.results import utc_now
from etl.engine.schema import table_exists
from etl.engine.verify import describe as describe_verify
from etl.engine.verify import verify_job
from etl.errors import (
    EXIT_DRIFT,
    EXIT_OK,
    ConfigError,
    UnknownJob,
)
from etl.job import Job
from etl.logs import Redactor
from etl.service.runner import batch_size_of
from etl.service.schedule import JobLine, job_schedules, jobs_table
from jobs import REGISTRY, get_job

log = structlog.get_logger("etl.cli")


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
    """Every job; the source is reached only when the configuration needs it."""
    if not needs_source(settings):
        return load_catalog(settings, None)
    engine = make_engine(settings.source, "source")
    try:
        return load_catalog(settings, engine)
    finally:
        engine.dispose()


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
