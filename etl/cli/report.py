"""Words and tables for people: the run summary line and the ``status`` table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from etl.engine.results import RunResult


def summary(result: RunResult) -> str:
    """One line saying what a run did."""
    c = result.counts
    if not result.run_id:  # it failed before its run could start
        return f"{result.job}: {result.status} before it started: {result.error}"
    rate = c.rows_read / result.seconds if result.seconds else 0.0
    if result.dry_run:
        head = f"{result.job}: dry run, nothing written; would insert {c.inserted:,}, "
        head += f"update {c.updated:,}, delete {c.deleted:,}"
        return f"{head}; {c.unchanged:,} unchanged, {c.rejected:,} rejected"
    line = (
        f"{result.job}: {result.status} in {result.seconds:.1f}s ({result.mode} mode, "
        f"{rate:,.0f} rows/s): read {c.rows_read:,}, inserted {c.inserted:,}, "
        f"updated {c.updated:,}, deleted {c.deleted:,}, unchanged {c.unchanged:,}, "
        f"rejected {c.rejected:,} [run {result.run_id}]"
    )
    if result.resumed_from:
        line += f" (resumed after {list(result.resumed_from)})"
    if result.error:
        line += f"\n  error: {result.error}"
    if c.rejected:
        rows = "row" if c.rejected == 1 else "rows"
        line += f"\n  {c.rejected:,} {rows} set aside: see `python -m etl rejects {result.job}`"
    return line


def jobs_summary(results: Sequence[RunResult], jobs: int) -> str:
    """The last line of a run of several jobs: how many succeeded, which did not."""
    ok = sum(r.status == "succeeded" for r in results)
    line = f"{ok} of {jobs} jobs succeeded"
    for status in ("failed", "refused", "interrupted"):
        names = sorted(r.job for r in results if r.status == status)
        if names:
            line += f"; {status}: {', '.join(names)}"
    return line


RUN_COLUMNS = (
    ("started_at", "started (UTC)"),
    ("job", "job"),
    ("status", "status"),
    ("mode", "mode"),
    ("rows_read", "read"),
    ("inserted", "inserted"),
    ("updated", "updated"),
    ("deleted", "deleted"),
    ("unchanged", "unchanged"),
    ("rejected", "rejected"),
    ("seconds", "seconds"),
    ("run_id", "run"),
    ("error", "error"),
)


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """Recent runs as a plain-text table, newest first."""
    rows = [[_cell(name, run) for name, _ in RUN_COLUMNS] for run in runs]
    return table([title for _, title in RUN_COLUMNS], rows)


REJECT_COLUMNS = (
    ("rejected_at", "rejected (UTC)"),
    ("job", "job"),
    ("row_key", "key"),
    ("reason", "reason"),
    ("row_data", "row"),
    ("run_id", "run"),
)


def rejects_table(rejects: Sequence[Mapping[str, Any]]) -> str:
    """Rejected rows as a plain-text table."""
    rows = [[_cell(name, r) for name, _ in REJECT_COLUMNS] for r in rejects]
    return table([title for _, title in REJECT_COLUMNS], rows)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _cell(name: str, record: Mapping[str, Any]) -> str:
    if name == "seconds":
        start, end = record.get("started_at"), record.get("finished_at")
        return f"{(end - start).total_seconds():.1f}" if start and end else ""
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if name == "run_id":
        return str(value)[:8]
    text = " ".join(str(value).split())
    return text if len(text) <= 60 else text[:57] + "..."
