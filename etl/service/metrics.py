"""Prometheus metrics of the daemon's runs, in a registry of its own.

A registry per daemon, not the library's global one: tests start several daemons in
one process and metrics must not leak between them (nor the global registry's process
collectors double up).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from etl.engine.results import RunResult

ROW_KINDS = ("inserted", "updated", "deleted", "unchanged", "rejected")
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class RunMetrics:
    """Counters of runs and rows, last success time and run durations, by job."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "etl_runs",
            "Runs finished, by job and status (succeeded, failed, interrupted, refused).",
            ["job", "status"],
            registry=self.registry,
        )
        self.rows = Counter(
            "etl_rows",
            "Rows written or compared, by job and kind.",
            ["job", "kind"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "etl_ticks_skipped",
            "Scheduled ticks not run: the job was running here (overlap) or elsewhere (locked).",
            ["job", "reason"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "etl_last_success_timestamp_seconds",
            "Unix time at which the job's last successful run finished.",
            ["job"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "etl_run_duration_seconds",
            "How long runs took, by job.",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def declare(self, job: str) -> None:
        """Show a job's series at zero before its first run, so dashboards see it at once."""
        for status in ("succeeded", "failed"):
            self.runs.labels(job=job, status=status)
        for kind in ROW_KINDS:
            self.rows.labels(job=job, kind=kind)
        self.duration.labels(job=job)

    def record(self, result: RunResult, finished_at: float) -> None:
        """Count a finished run; ``finished_at`` is Unix time (time as an argument)."""
        self.runs.labels(job=result.job, status=result.status).inc()
        for kind in ROW_KINDS:
            self.rows.labels(job=result.job, kind=kind).inc(getattr(result.counts, kind))
        self.duration.labels(job=result.job).observe(result.seconds)
        if result.status == "succeeded":
            self.last_success.labels(job=result.job).set(finished_at)

    def record_failure(self, job: str) -> None:
        """Count a run that failed before it produced a result (e.g. a database was down)."""
        self.runs.labels(job=job, status="failed").inc()

    def record_skip(self, job: str, reason: str) -> None:
        """Count a tick that did not run: ``overlap`` or ``locked``."""
        self.skipped.labels(job=job, reason=reason).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
