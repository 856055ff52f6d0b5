"""What a caller asks of a run and what it gets back: options, progress and results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from etl.config import DriftPolicy, RetrySettings
from etl.core.counts import Counts
from etl.core.diff import Key

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncOptions:
    """How to run a job this time (from settings and the command line)."""

    batch_size: int = 5000
    dry_run: bool = False
    max_delete_fraction: float = 0.5
    allow_mass_delete: bool = False
    pause_between_batches: float = 0.0
    source_table: str | None = None
    target_table: str | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    """How a batch is retried after a transient error."""
    schema_drift: DriftPolicy = "freeze"
    """What a change in the tables' columns does: refuse the run, or follow the source."""


@dataclass(frozen=True)
class IncrementalOptions:
    """How far an incremental run looks back (from the job and its settings)."""

    lookback: float
    """Re-read this far behind the watermark: seconds for a timestamp cursor."""


@dataclass(frozen=True)
class BatchDone:
    """What one batch did, for progress displays."""

    phase: str
    counts: Counts
    seconds: float
    total_source_rows: int


@dataclass
class RunResult:
    """How a run ended, for the summary line, the exit code and the daemon's metrics."""

    job: str
    run_id: str
    status: str
    """succeeded, failed, interrupted (stop requested) or refused (mass-delete guard)."""
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    mode: str = ""
    dry_run: bool = False
    resumed_from: Key | None = None
    error: str | None = None
