"""The settings: frozen, typed dataclasses, each field with a one-line docstring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_CONFIG_PATH = Path("config/etl.toml")

LogFormat = Literal["auto", "json", "console"]
DriftPolicy = Literal["freeze", "evolve"]


@dataclass(frozen=True)
class DatabaseSettings:
    """Where one database is and how to talk to it."""

    url: str = field(repr=False)
    """SQLAlchemy URL, e.g. ``mysql+pymysql://etl@db:3306/school``."""
    password: str | None = field(default=None, repr=False)
    """Password, overriding any in the URL; best set through ``ETL_<ROLE>_PASSWORD``."""
    password_file: str | None = None
    """File whose first line is the password (Docker/Kubernetes secrets)."""
    connect_timeout: int = 10
    """Seconds to wait for a connection before the database counts as unreachable."""
    read_timeout: int = 600
    """Seconds to wait on a silent connection before it counts as lost (MySQL; PostgreSQL TCP)."""
    pool_recycle: int = 3600
    """Reconnect pooled connections older than this, below the server's idle timeout."""


@dataclass(frozen=True)
class SyncSettings:
    """How every job syncs unless the job's own section says otherwise."""

    batch_size: int = 5000
    """Source rows per batch; each batch is one target transaction."""
    max_delete_fraction: float = 0.5
    """Largest share of the target's rows one run may delete before it refuses."""
    allow_mass_delete: bool = False
    """Lift the ``max_delete_fraction`` guard (the operator has checked the source)."""
    pause_between_batches: float = 0.0
    """Seconds to sleep after each batch, to spare a busy production server."""
    workers: int = 4
    """Jobs run at the same time by one ``run`` (and the daemon's scheduler threads)."""


@dataclass(frozen=True)
class RetrySettings:
    """How a batch is retried after a transient error (deadlock, lost connection)."""

    attempts: int = 5
    """Attempts per batch, the first included; 1 disables retries."""
    initial_backoff: float = 0.5
    """Seconds to wait before the first retry; doubles on each further retry."""
    max_backoff: float = 30.0
    """Longest single wait between attempts, in seconds."""
    total_seconds: float = 300.0
    """No further attempt once waiting for it would pass this many seconds since the first."""
    jitter: float = 0.5
    """Up to this many random seconds added to each wait, so clients do not retry in step."""


@dataclass(frozen=True)
class LogSettings:
    """How log lines look."""

    format: LogFormat = "auto"
    """``json`` lines, ``console`` for people, or ``auto``: console at a terminal."""
    level: str = "info"
    """Lowest level logged: debug, info, warning, error."""


@dataclass(frozen=True)
class JobSettings:
    """Per-job overrides of the job definition's defaults."""

    enabled: bool = True
    """Whether ``run`` without job names and the daemon run this job."""
    batch_size: int | None = None
    """Overrides ``sync.batch_size`` for this job."""
    source_table: str | None = None
    """Table name in the source, when it differs from the job's default."""
    target_table: str | None = None
    """Table name in the target, when it differs from the job's default."""
    schedule: str | None = None
    """Cron expression (minute hour day month weekday) for the daemon; default: the job's own."""
    timezone: str = "UTC"
    """IANA time zone the cron expression is read in, e.g. ``Europe/Berlin``."""
    interval: float | None = None
    """Run every this many seconds instead of on the cron schedule."""
    jitter: float = 0.0
    """Delay each tick by up to this many random seconds, so replicas do not stampede."""
    run_at_start: bool = False
    """Also run once as soon as the daemon starts, then follow the schedule."""
    incremental_schedule: str | None = None
    """Cron expression for the daemon's incremental runs (jobs with a cursor column)."""
    incremental_interval: float | None = None
    """Run incrementally every this many seconds instead of on ``incremental_schedule``."""
    incremental_lookback: float | None = None
    """Overrides the job's ``lookback``: how far behind the watermark incremental runs read."""
    table: str | None = None
    """A job with no Python: the source table, reflected at start-up (columns, types, key)."""
    tables: tuple[str, ...] | None = None
    """Names or globs (``["*"]``, ``["order_*", "!order_tmp"]``): a job ``<section>.<table>``
    per matching source table; ``!`` leaves tables out."""
    key: tuple[str, ...] | None = None
    """Key columns, for a configured table without a primary key."""
    columns: tuple[str, ...] | None = None
    """Only these columns of a configured table (the key is always taken)."""
    exclude: tuple[str, ...] | None = None
    """Every column of a configured table but these."""
    where: str | None = None
    """SQL row filter on the source (e.g. ``"status <> 'draft'"``): the target holds only
    the matching rows, so a row that stops matching is deleted (unless ``keep``)."""
    delete_policy: Literal["propagate", "keep"] | None = None
    """A configured table's delete policy (default ``propagate``)."""
    cursor: str | None = None
    """Change-tracking column (``updated_at``, a date, an integer version) that lets the job
    run incrementally (``run --incremental``); a Python job's own ``cursor_column`` else."""
    schema_drift: DriftPolicy = "freeze"
    """``freeze``: refuse a run when the columns changed; ``evolve``: add new ones."""

    @property
    def configured(self) -> bool:
        """Whether the section defines its own job(s) rather than overriding a Python job."""
        return self.table is not None or self.tables is not None


@dataclass(frozen=True)
class DaemonSettings:
    """How ``python -m etl daemon`` schedules, stops and reports its health."""

    health_port: int = 8000
    """Port of the ``/healthz`` and ``/metrics`` endpoint; 0 turns it off."""
    health_host: str = "0.0.0.0"
    """Address the endpoint listens on; all interfaces, so an orchestrator can reach it."""
    stop_timeout: float = 30.0
    """Seconds SIGTERM/SIGINT waits for the batch in flight to commit before exiting anyway."""
    misfire_grace_time: int = 300
    """Seconds a tick may be late (process busy or down) and still run; older ones are dropped."""
    probe_timeout: int = 2
    """Seconds ``/healthz`` waits to connect to a database before calling it unreachable."""
    probe_cache_seconds: float = 5.0
    """Seconds ``/healthz`` reuses its last database check, so probes stay cheap."""


@dataclass(frozen=True)
class Settings:
    """Everything the tool needs to know, validated once at start-up."""

    source: DatabaseSettings
    target: DatabaseSettings
    sync: SyncSettings = SyncSettings()
    retry: RetrySettings = RetrySettings()
    log: LogSettings = LogSettings()
    daemon: DaemonSettings = DaemonSettings()
    jobs: Mapping[str, JobSettings] = field(default_factory=dict)
    table_jobs: Mapping[str, JobSettings] = field(default_factory=dict)
    """Per-table sections of ``tables`` jobs (``[jobs."shop.orders"]``), by job name, each
    already merged over its section; the catalog puts them in ``jobs`` when it expands."""
    config_path: str | None = None
    """The file these settings were read from, if any (for messages)."""

    def job(self, name: str) -> JobSettings:
        """This job's overrides, or the defaults when it has no section."""
        return self.jobs.get(name, JobSettings())


DEFAULTS: dict[str, dict[str, Any]] = {
    "source": {"url": "sqlite:///var/source.db"},
    "target": {"url": "sqlite:///var/target.db"},
}

SECTIONS: dict[str, type[Any]] = {
    "source": DatabaseSettings,
    "target": DatabaseSettings,
    "sync": SyncSettings,
    "retry": RetrySettings,
    "log": LogSettings,
    "daemon": DaemonSettings,
}
