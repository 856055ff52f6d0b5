"""``python -m etl daemon``: the configured jobs on their schedules, in the foreground.

APScheduler's BackgroundScheduler runs the ticks on worker threads while the main
thread waits for a stop signal; only the main thread may handle signals, and keeping
it free means a signal is acted on at once. Each tick takes the same path as the
one-shot ``run`` (:func:`etl.service.runner.run_exclusive`), so the cross-process lock, the
run history and the stop handling are the same in both.

Overlap and missed ticks: ``max_instances=1`` makes a tick that arrives while the
job is still running here be skipped (APScheduler reports EVENT_JOB_MAX_INSTANCES,
logged and counted); ``coalesce`` turns ticks missed while the process was busy or
asleep into one run, if it is no later than ``misfire_grace_time``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import UTC
from http.server import ThreadingHTTPServer
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from etl.config import Settings
from etl.engine.db import Databases, describe_error, make_databases, make_engine, writers
from etl.engine.results import Clock, utc_now
from etl.errors import EXIT_OK, ConfigError, LockBusy
from etl.job import Job
from etl.service import health
from etl.service.metrics import RunMetrics
from etl.service.runner import incremental_options, run_exclusive, sync_options
from etl.service.schedule import Schedule, job_schedules
from etl.service.stopping import GracefulStop

log = structlog.get_logger("etl.service.daemon")


def serve(settings: Settings, jobs: Sequence[Job], *, clock: Clock = utc_now) -> int:
    """Run until SIGTERM/SIGINT; exit code 0 once the run in flight has stopped cleanly."""
    now = clock()
    # Every trigger is built (and so checked) before anything starts.
    planned = [
        (job, schedule)
        for job in jobs
        for schedule in job_schedules(job, settings.job(job.name), now)
    ]
    if not planned:
        raise ConfigError("no enabled jobs to schedule: enable one under [jobs.<name>]")
    stopper = GracefulStop(settings.daemon.stop_timeout)
    with stopper.installed() as stop:
        daemon = Daemon(settings, planned, stop, clock)
        try:
            daemon.start()
            while not stop.wait(0.5):  # a timeout keeps the wait responsive to signals
                pass
        finally:
            daemon.shutdown()
    return EXIT_OK


class Daemon:
    """The scheduler, the databases, the metrics and the health endpoint of one process."""

    def __init__(
        self,
        settings: Settings,
        planned: Sequence[tuple[Job, Schedule]],
        stop: threading.Event,
        clock: Clock,
    ) -> None:
        self.settings, self.planned, self.stop, self.clock = settings, planned, stop, clock
        self.dbs: Databases = make_databases(settings)
        self.metrics = RunMetrics()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            # Up to sync.workers jobs at once (the engines' pools are sized for as many);
            # a tick finding every thread busy waits, up to misfire_grace_time.
            executors={
                "default": ThreadPoolExecutor(
                    max_workers=max(1, min(len(planned), writers(settings, self.dbs.target_engine)))
                )
            },
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        self.server: ThreadingHTTPServer | None = None
        self.probe: health.DatabaseProbe | None = None

    def start(self) -> None:
        """Schedule every job, start the scheduler, then the health endpoint."""
        now = self.clock()
        for job, schedule in self.planned:
            self.metrics.declare(job.name)
            extra: dict[str, Any] = {"next_run_time": now} if schedule.run_at_start else {}
            self.scheduler.add_job(
                self._tick,
                trigger=schedule.trigger,
                args=[job, schedule.incremental],
                id=schedule.id,
                name=schedule.id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=self.settings.daemon.misfire_grace_time,
                **extra,
            )
        self.scheduler.start()
        self._start_health()
        for job, schedule in self.planned:
            fire = self.scheduler.get_job(schedule.id).next_run_time
            log.info(
                "job_scheduled",
                job=job.name,
                incremental=schedule.incremental,
                schedule=schedule.description,
                next_run=fire.isoformat() if fire else None,
            )

    def shutdown(self) -> None:
        """Stop ticking, wait for the run in flight (it stops after its batch), close up."""
        log.info("daemon_stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self.server is not None:
            health.stop_server(self.server)
        if self.probe is not None:
            self.probe.dispose()
        self.dbs.dispose()
        log.info("daemon_stopped")

    def _tick(self, job: Job, incremental: bool = False) -> None:
        """One scheduled run; every failure is logged and counted, never raised.

        A full and an incremental tick of one job take the same run lock: whichever
        comes second while the other runs is skipped as ``locked``.
        """
        if self.stop.is_set():
            return
        options = sync_options(job, self.settings)
        try:
            result = run_exclusive(
                job,
                self.dbs,
                options,
                clock=self.clock,
                stop=self.stop,
                incremental=incremental_options(job, self.settings) if incremental else None,
            )
        except LockBusy as busy:
            log.info(
                "run_skipped",
                job=job.name,
                incremental=incremental,
                reason="locked",
                detail=str(busy),
            )
            self.metrics.record_skip(job.name, "locked")
            return
        except Exception as error:  # database down, table missing: try again next tick
            log.error("run_failed", job=job.name, error=describe_error(error))
            self.metrics.record_failure(job.name)
            return
        self.metrics.record(result, self.clock().timestamp())

    def _on_event(self, event: Any) -> None:
        # Metrics are per job: an incremental entry's ticks count under the job's name.
        job = str(event.job_id).removesuffix(":incremental")
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("tick_skipped", job=job, entry=event.job_id, reason="still running")
            self.metrics.record_skip(job, "overlap")
        elif event.code == EVENT_JOB_MISSED:
            log.warning(
                "tick_missed", job=job, entry=event.job_id, due=str(event.scheduled_run_time)
            )
        else:
            log.error(
                "tick_crashed", job=job, entry=event.job_id, error=describe_error(event.exception)
            )

    def _start_health(self) -> None:
        daemon = self.settings.daemon
        if not daemon.health_port:
            return
        engines = {
            role: make_engine(dataclasses.replace(db, connect_timeout=daemon.probe_timeout), role)
            for role, db in (("source", self.settings.source), ("target", self.settings.target))
        }
        self.probe = health.DatabaseProbe(engines, daemon.probe_cache_seconds)
        self.server = health.start_server(
            daemon.health_host, daemon.health_port, self._health, self.metrics.render
        )

    def _health(self) -> tuple[bool, dict[str, Any]]:
        scheduling = self.scheduler.running and not self.stop.is_set()
        databases = self.probe.check() if self.probe is not None else {}
        healthy = scheduling and all(d["reachable"] for d in databases.values())
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "scheduler": "running" if scheduling else "stopping",
            "databases": databases,
        }
