"""Incremental settings and schedules: parsed, checked at start-up, a second daemon entry."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from etl.config import DaemonSettings, DatabaseSettings, JobSettings, Settings, load_settings
from etl.core.keys import decode_key, encode_key
from etl.engine.cursors import cursor_of
from etl.engine.strategies.incremental import later, rewind
from etl.errors import ConfigError
from etl.service.daemon import Daemon
from etl.service.runner import incremental_options
from etl.service.schedule import incremental_schedule, job_schedules
from jobs.students import JOB as STUDENTS

NOW = datetime(2024, 3, 1, 10, 7, 30, tzinfo=UTC)  # a Friday
CHANGES = dataclasses.replace(STUDENTS, name="students", cursor_column="course", lookback=5)
"""A stand-in job with a cursor column (the schedule code only asks whether it has one)."""


def settings(tmp_path: Path, **job: object) -> Settings:
    return Settings(
        source=DatabaseSettings(url=f"sqlite:///{tmp_path / 'source.db'}"),
        target=DatabaseSettings(url=f"sqlite:///{tmp_path / 'target.db'}"),
        daemon=DaemonSettings(health_port=0),
        jobs={"students": JobSettings(**job)},  # type: ignore[arg-type]
    )


def test_no_incremental_settings_means_one_schedule() -> None:
    """Without incremental_schedule or incremental_interval only the full run is scheduled."""
    assert [s.incremental for s in job_schedules(CHANGES, JobSettings(), NOW)] == [False]


def test_incremental_interval_adds_a_second_schedule_one_interval_after_now() -> None:
    """``incremental_interval`` ticks every N seconds, the first N seconds after start-up."""
    full, incremental = job_schedules(CHANGES, JobSettings(incremental_interval=60), NOW)
    assert not full.incremental
    assert incremental.incremental
    assert incremental.id == "students:incremental"
    assert full.id == "students"
    assert incremental.next_fire_time(NOW) == NOW + timedelta(seconds=60)
    assert incremental.description == "incremental every 60s"


def test_incremental_cron_is_read_in_the_jobs_time_zone() -> None:
    """``incremental_schedule`` is a crontab line in the job's ``timezone``."""
    schedule = incremental_schedule(
        CHANGES, JobSettings(incremental_schedule="*/5 * * * *", timezone="Europe/Berlin"), NOW
    )
    assert schedule is not None
    fire = schedule.next_fire_time(NOW)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2024, 3, 1, 10, 10, tzinfo=UTC)


def test_bad_incremental_cron_is_a_configuration_error() -> None:
    """A malformed incremental cron expression is refused before anything starts."""
    with pytest.raises(ConfigError, match=r"\[jobs.students\] incremental schedule"):
        incremental_schedule(CHANGES, JobSettings(incremental_schedule="every minute"), NOW)


def test_incremental_schedule_for_a_job_without_cursor_column_is_refused() -> None:
    """Scheduling incremental runs of a job that has no cursor column is a ConfigError."""
    with pytest.raises(ConfigError, match="has no cursor column"):
        incremental_schedule(STUDENTS, JobSettings(incremental_interval=60), NOW)


def test_incremental_settings_come_from_the_environment() -> None:
    """``ETL_JOB_<JOB>_INCREMENTAL_*`` variables set the job's incremental settings."""
    loaded = load_settings(
        None,
        {
            "ETL_JOB_STUDENTS_INCREMENTAL_SCHEDULE": "*/5 * * * *",
            "ETL_JOB_STUDENTS_INCREMENTAL_INTERVAL": "90",
            "ETL_JOB_STUDENTS_INCREMENTAL_LOOKBACK": "120",
        },
    )
    job = loaded.job("students")
    assert job.incremental_schedule == "*/5 * * * *"
    assert job.incremental_interval == 90.0
    assert job.incremental_lookback == 120.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INCREMENTAL_INTERVAL", "0", "incremental_interval must be more than 0"),
        ("INCREMENTAL_LOOKBACK", "-1", "incremental_lookback must not be negative"),
        ("INCREMENTAL_LOOKBACK", "soon", "must be a number"),
    ],
)
def test_bad_incremental_settings_are_refused(name: str, value: str, message: str) -> None:
    """Out-of-range or mistyped incremental settings fail at load time, naming the setting."""
    with pytest.raises(ConfigError, match=message):
        load_settings(None, {f"ETL_JOB_STUDENTS_{name}": value})


def test_lookback_setting_overrides_the_jobs_default(tmp_path: Path) -> None:
    """``incremental_lookback`` wins over ``Job.lookback``; without it the job's applies."""
    assert incremental_options(CHANGES, settings(tmp_path)).lookback == 5
    chosen = incremental_options(CHANGES, settings(tmp_path, incremental_lookback=0))
    assert chosen.lookback == 0


def test_cursor_column_must_be_a_non_key_column_of_the_table() -> None:
    """A cursor column that is missing or part of the key is a configuration error."""
    with pytest.raises(ConfigError, match="not in its table"):
        cursor_of(dataclasses.replace(CHANGES, cursor_column="nope"))
    with pytest.raises(ConfigError, match="must not be a key column"):
        cursor_of(dataclasses.replace(CHANGES, cursor_column="first_name"))


def test_daemon_schedules_full_and_incremental_entries(tmp_path: Path) -> None:
    """With an incremental interval the scheduler holds two entries for the job."""
    config = settings(tmp_path, interval=3600, incremental_interval=600)
    planned = [(CHANGES, s) for s in job_schedules(CHANGES, config.job("students"), NOW)]
    daemon = Daemon(config, planned, threading.Event(), lambda: NOW)
    try:
        daemon.start()
        entries = {job.id: job.args for job in daemon.scheduler.get_jobs()}
    finally:
        daemon.shutdown()
    assert entries == {"students": (CHANGES, False), "students:incremental": (CHANGES, True)}


def test_rewind_moves_timestamps_dates_and_numbers_back() -> None:
    """The look-back is seconds for timestamps (whole days for dates), units for numbers."""
    assert rewind(NOW, 90) == NOW - timedelta(seconds=90)
    assert rewind(date(2024, 3, 2), 3600) == date(2024, 3, 1)
    assert rewind(Decimal("10.5"), 2) == Decimal("8.5")
    assert rewind(100, 0) == 100
    with pytest.raises(ConfigError, match="cannot be rewound"):
        rewind("abc", 1)


def test_watermark_never_moves_back() -> None:
    """A page inside the look-back window leaves the stored watermark where it is."""
    stored = (NOW, "b")
    assert later(stored, (NOW - timedelta(seconds=1), "z")) == stored
    assert later(stored, (NOW + timedelta(seconds=1), "a")) == (NOW + timedelta(seconds=1), "a")
    assert later(None, (NOW, "a")) == (NOW, "a")
    assert later(stored, None) == stored


@pytest.mark.parametrize(
    "position",
    [
        (NOW, "Anna", "Ü"),
        # A plain MySQL DATETIME cursor comes back naive: it must stay naive.
        (datetime(2024, 1, 1, 0, 0, 0, 123456), "naive"),  # noqa: DTZ001
        (date(2024, 1, 1), 7),
        (Decimal("1.10"), None),
        (42, 1.5),
        (time(23, 59, 59, 999999), b"\x00\\\xff", UUID(int=7), timedelta(hours=-1)),
        (float("nan"), -(2**63), 2**64 - 1),
    ],
)
def test_watermark_positions_round_trip_through_json(position: tuple[object, ...]) -> None:
    """A stored position comes back with the same values and types (aware stays aware)."""
    back = decode_key(encode_key(position))
    assert [repr(v) for v in back] == [repr(v) for v in position]  # NaN != NaN
    assert [type(v) for v in back] == [type(v) for v in position]
    first = back[0]
    if isinstance(first, datetime):
        assert first.tzinfo == position[0].tzinfo  # type: ignore[union-attr]
