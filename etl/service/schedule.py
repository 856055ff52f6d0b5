"""When each job runs: APScheduler triggers built from configuration, checked at start-up.

A trigger is a pure function of time (``get_next_fire_time(previous, now)``), so the
``jobs`` listing and the tests pass ``now`` instead of reading a clock. Building every
trigger before the scheduler starts turns a bad cron expression or time zone into a
configuration error at start-up rather than a failure at the first tick.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from etl.config import JobSettings
from etl.errors import ConfigError
from etl.job import Job

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Schedule:
    """One job's trigger and how to describe it to a person."""

    job: str
    trigger: Any
    """An APScheduler 3.x trigger (untyped library)."""
    description: str
    run_at_start: bool = False
    incremental: bool = False
    """Ticks run the job incrementally (its second schedule) rather than in full."""

    @property
    def id(self) -> str:
        """The scheduler's id for these ticks: a job may have a full and an incremental one."""
        return f"{self.job}:incremental" if self.incremental else self.job

    def next_fire_time(self, now: datetime, previous: datetime | None = None) -> datetime | None:
        """The first tick after ``previous`` (or from ``now``); None if it never fires again."""
        fire: datetime | None = self.trigger.get_next_fire_time(previous, now)
        return fire


def job_schedule(job: Job, settings: JobSettings, now: datetime) -> Schedule:
    """The job's schedule from its settings, else its default cron; ConfigError if invalid.

    ``now`` anchors an interval trigger's first tick (one interval after start-up).
    """
    where = f"[jobs.{job.name}]"
    zone = _zone(settings.timezone, where)
    if settings.interval is not None:
        trigger = IntervalTrigger(
            seconds=settings.interval,
            start_date=now + timedelta(seconds=settings.interval),
            timezone=zone,
            jitter=settings.jitter or None,
        )
        return Schedule(job.name, trigger, f"every {settings.interval:g}s", settings.run_at_start)
    expression = settings.schedule or job.schedule
    if not expression:
        raise ConfigError(f"{where} has no schedule: set schedule (cron) or interval (seconds)")
    trigger = cron_trigger(expression, zone, settings.jitter, where)
    description = f"cron {expression!r} ({settings.timezone})"
    return Schedule(job.name, trigger, description, settings.run_at_start)


def incremental_schedule(job: Job, settings: JobSettings, now: datetime) -> Schedule | None:
    """The job's incremental schedule, None when it has none; ConfigError if invalid.

    A job with a cursor column may run incrementally often and in full now and then:
    the two schedules are separate scheduler entries, kept from overlapping by the job's
    run lock. Settings read like the full run's (interval wins over cron; same time
    zone and jitter).
    """
    if settings.incremental_interval is None and not settings.incremental_schedule:
        return None
    where = f"[jobs.{job.name}]"
    if not job.cursor_column:
        raise ConfigError(
            f"{where} sets an incremental schedule but job {job.name!r} has no cursor column"
        )
    zone = _zone(settings.timezone, where)
    if settings.incremental_interval is not None:
        seconds = settings.incremental_interval
        trigger = IntervalTrigger(
            seconds=seconds,
            start_date=now + timedelta(seconds=seconds),
            timezone=zone,
            jitter=settings.jitter or None,
        )
        return Schedule(job.name, trigger, f"incremental every {seconds:g}s", incremental=True)
    expression = str(settings.incremental_schedule)
    trigger = cron_trigger(expression, zone, settings.jitter, f"{where} incremental")
    description = f"incremental cron {expression!r} ({settings.timezone})"
    return Schedule(job.name, trigger, description, incremental=True)


def job_schedules(job: Job, settings: JobSettings, now: datetime) -> list[Schedule]:
    """Every schedule of the job: the full run's, then the incremental one if configured."""
    full = job_schedule(job, settings, now)
    incremental = incremental_schedule(job, settings, now)
    return [full] if incremental is None else [full, incremental]


def cron_trigger(expression: str, zone: tzinfo, jitter: float, where: str) -> Any:
    """A trigger for a standard five-field crontab line; ConfigError if it is not one."""
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{where} schedule {expression!r} is not a cron expression: "
            f"expected 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekday),
            timezone=zone,
            jitter=jitter or None,
        )
    except ValueError as error:
        raise ConfigError(f"{where} schedule {expression!r} is not valid: {error}") from None


def crontab_weekdays(field: str) -> str:
    """Translate crontab weekday numbers (0 or 7 = Sunday) into names APScheduler reads.

    APScheduler 3.x counts 0 as Monday, so ``1-5`` would silently mean Tuesday to
    Saturday; names mean the same to both. Numbers, ranges and steps of numbers are
    expanded to the days they select; names and ``*`` pass through unchanged.
    """
    parts: list[str] = []
    for part in field.split(","):
        days = _crontab_days(part)
        parts.append(part if days is None else ",".join(_WEEKDAYS[d] for d in days))
    return ",".join(parts)


def _crontab_days(part: str) -> list[int] | None:
    """The Sunday-based day numbers a numeric weekday part selects, or None if not numeric."""
    body, _, step_text = part.partition("/")
    if body == "*" and step_text:
        low, high = 0, 6
    elif body.isdigit():
        low = int(body)
        high = 6 if step_text else low
    elif body.count("-") == 1 and all(p.isdigit() for p in body.split("-")):
        low, high = (int(p) for p in body.split("-"))
    else:
        return None
    if not step_text.isdigit() and step_text:
        return None
    step = int(step_text) if step_text else 1
    if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high and step >= 1):
        return None  # left for APScheduler to reject with its own message
    return sorted({day % 7 for day in range(low, high + 1, step)})


def _zone(name: str, where: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where} timezone {name!r} is not a known time zone (use an IANA name "
            "such as UTC or Europe/Berlin)"
        ) from None


JobLine = tuple[str, bool, str, str, str, datetime | None]
"""A ``jobs`` line: name, enabled, table, key, schedule and next fire time."""


def jobs_table(rows: list[JobLine]) -> str:
    """The ``jobs`` listing: one aligned line per job and schedule."""
    header = ("JOB", "ENABLED", "TABLE", "KEY", "SCHEDULE", "NEXT RUN (UTC)")
    cells = [
        (name, "yes" if enabled else "no", table, key, description, _utc_text(fire))
        for name, enabled, table, key, description, fire in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


def _utc_text(fire: datetime | None) -> str:
    if fire is None:
        return "never"
    return fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
