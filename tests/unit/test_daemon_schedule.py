"""Schedules: triggers from configuration, next fire times given ``now``, bad ones refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from etl.config import JobSettings, load_settings
from etl.errors import ConfigError
from etl.service.schedule import crontab_weekdays, job_schedule, jobs_table
from jobs.students import JOB

# A Friday, 10:07 UTC.
NOW = datetime(2024, 3, 1, 10, 7, 30, tzinfo=UTC)


def next_fire(settings: JobSettings, now: datetime = NOW) -> datetime:
    fire = job_schedule(JOB, settings, now).next_fire_time(now)
    assert fire is not None
    return fire


def test_default_schedule_is_the_jobs_own_cron() -> None:
    """With no schedule configured the job's ``schedule`` (every 15 minutes) applies."""
    schedule = job_schedule(JOB, JobSettings(), NOW)
    assert schedule.description == "cron '*/15 * * * *' (UTC)"
    assert next_fire(JobSettings()) == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)


def test_configured_cron_overrides_the_default() -> None:
    """``schedule`` replaces the job's cron expression."""
    assert next_fire(JobSettings(schedule="30 2 * * *")) == datetime(2024, 3, 2, 2, 30, tzinfo=UTC)


def test_cron_is_read_in_its_time_zone() -> None:
    """09:00 in Berlin is 08:00 UTC in winter."""
    fire = next_fire(JobSettings(schedule="0 9 * * *", timezone="Europe/Berlin"))
    assert fire == datetime(2024, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert fire.astimezone(UTC) == datetime(2024, 3, 2, 8, 0, tzinfo=UTC)


def test_cron_follows_daylight_saving_time() -> None:
    """After the spring change 09:00 Berlin is 07:00 UTC."""
    late_march = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
    fire = next_fire(JobSettings(schedule="0 9 * * *", timezone="Europe/Berlin"), late_march)
    assert fire.astimezone(UTC) == datetime(2024, 3, 31, 7, 0, tzinfo=UTC)


def test_weekday_numbers_mean_what_they_mean_in_crontab() -> None:
    """``1-5`` is Monday to Friday (APScheduler 3 alone would read Tuesday to Saturday)."""
    fire = next_fire(JobSettings(schedule="0 9 * * 1-5"))  # Friday 10:07 -> Monday 09:00
    assert fire == datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    assert next_fire(JobSettings(schedule="0 9 * * 0")).weekday() == 6  # Sunday
    assert next_fire(JobSettings(schedule="0 9 * * 7")).weekday() == 6  # Sunday too


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("*/2", "sun,tue,thu,sat"),
        ("1,3", "mon,wed"),
        ("mon-fri", "mon-fri"),
        ("5-7", "sun,fri,sat"),
    ],
)
def test_crontab_weekdays_translation(field: str, expected: str) -> None:
    """Numeric weekday parts become day names APScheduler reads the same way."""
    assert crontab_weekdays(field) == expected


def test_interval_fires_one_interval_after_start() -> None:
    """An interval schedule's first tick is one interval after ``now``, then every interval."""
    schedule = job_schedule(JOB, JobSettings(interval=90), NOW)
    first = schedule.next_fire_time(NOW)
    assert first == NOW + timedelta(seconds=90)
    assert schedule.next_fire_time(first, previous=first) == NOW + timedelta(seconds=180)
    assert schedule.description == "every 90s"


def test_interval_wins_over_cron() -> None:
    """When both are set the interval is used."""
    schedule = job_schedule(JOB, JobSettings(interval=1, schedule="0 0 * * *"), NOW)
    assert schedule.description == "every 1s"


def test_jitter_delays_ticks_by_at_most_the_jitter() -> None:
    """Jitter adds between 0 and ``jitter`` seconds to each tick."""
    settings = JobSettings(schedule="0 * * * *", jitter=30)
    for _ in range(20):
        fire = next_fire(settings)
        assert datetime(2024, 3, 1, 11, 0, tzinfo=UTC) <= fire
        assert fire <= datetime(2024, 3, 1, 11, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (JobSettings(schedule="every minute"), "is not a cron expression: expected 5 fields"),
        (JobSettings(schedule="61 * * * *"), "schedule '61 * * * *' is not valid"),
        (JobSettings(schedule="* * * * funday"), "is not valid"),
        (JobSettings(timezone="Mars/Olympus_Mons"), "'Mars/Olympus_Mons' is not a known time zone"),
        (JobSettings(timezone=""), "is not a known time zone"),
    ],
)
def test_bad_schedules_are_configuration_errors(settings: JobSettings, message: str) -> None:
    """Invalid cron expressions and unknown time zones raise one-line ConfigErrors."""
    with pytest.raises(ConfigError) as raised:
        job_schedule(JOB, settings, NOW)
    assert message in str(raised.value)
    assert str(raised.value).startswith("[jobs.students] ")
    assert "\n" not in str(raised.value)


def test_schedule_settings_come_from_the_environment() -> None:
    """``ETL_JOB_<JOB>_<KEY>`` and ``ETL_DAEMON_<KEY>`` set the new fields, typed."""
    settings = load_settings(
        None,
        {
            "ETL_JOB_STUDENTS_INTERVAL": "1.5",
            "ETL_JOB_STUDENTS_RUN_AT_START": "yes",
            "ETL_JOB_STUDENTS_TIMEZONE": "Asia/Tokyo",
            "ETL_DAEMON_HEALTH_PORT": "0",
            "ETL_DAEMON_STOP_TIMEOUT": "7",
        },
    )
    job = settings.job("students")
    assert (job.interval, job.run_at_start, job.timezone) == (1.5, True, "Asia/Tokyo")
    assert (settings.daemon.health_port, settings.daemon.stop_timeout) == (0, 7.0)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ETL_JOB_STUDENTS_INTERVAL": "0"}, "interval must be more than 0"),
        ({"ETL_JOB_STUDENTS_JITTER": "-1"}, "jitter must not be negative"),
        ({"ETL_DAEMON_HEALTH_PORT": "70000"}, "health_port must be 0 (off) to 65535"),
        ({"ETL_DAEMON_STOP_TIMEOUT": "0"}, "stop_timeout must be more than 0"),
    ],
)
def test_out_of_range_daemon_settings_are_refused(environ: dict[str, str], message: str) -> None:
    """Values that cannot work are configuration errors at load time."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(None, environ)


def test_jobs_table_lists_name_enabled_table_key_schedule_and_next_run() -> None:
    """The ``jobs`` listing has one aligned line per job; a disabled job never runs."""
    fire = datetime(2024, 3, 1, 10, 8, 30, tzinfo=UTC)
    table = jobs_table(
        [
            ("students", True, "students", "first_name, last_name", "every 60s", fire),
            ("shop.orders", False, "orders", "id", "cron '0 * * * *' (UTC)", None),
        ]
    )
    assert table.splitlines() == [
        "JOB          ENABLED  TABLE     KEY                    SCHEDULE                "
        "NEXT RUN (UTC)",
        "students     yes      students  first_name, last_name  every 60s               "
        "2024-03-01 10:08:30",
        "shop.orders  no       orders    id                     cron '0 * * * *' (UTC)  never",
    ]
