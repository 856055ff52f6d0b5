"""What a run does between its start and its end: a full pass, or an incremental one.

A full pass walks the whole key space from its checkpoint, in range mode (with range
checksums and text copies where both sides allow) or in lookup mode (bucket summaries
where both sides hash rows alike; otherwise upserts, then a sweep for deletes).
An incremental pass reads the rows changed since its watermark.
"""

from __future__ import annotations

from typing import Any

from etl.core.counts import Checkpoint, Counts
from etl.core.diff import Row
from etl.core.policy import refuse_obvious_mass_delete
from etl.engine import store
from etl.engine.batches import Strategy, log_rejects, retrying, run_phase
from etl.engine.run import Run
from etl.engine.strategies import buckets, checksums, text_copy
from etl.engine.strategies.incremental import IncrementalPages
from etl.engine.strategies.lookup import SWEEP, UPSERT, LookupUpserts, Sweep
from etl.engine.strategies.range_rows import RangeRows
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Workers


class FullPass:
    """The whole key space, from the checkpoint (if any) to the end."""

    def __init__(self, checkpoint: Checkpoint | None) -> None:
        self.checkpoint = checkpoint

    def execute(self, run: Run) -> None:
        """Guard, set aside NULL keys, then every phase of the mode."""
        budget = run.budget
        if budget.count is None:  # counted already (else by the pass, before it writes)
            refuse_obvious_mass_delete(
                run.job.name,
                run.sizes.source_rows,
                budget.target_rows,
                budget.limit,
                unlimited=budget.unlimited,
            )
        _reject_null_keys(run)
        with Workers(run.dbs) as workers:
            if run.plan.mode == "range":
                self._range(run, workers)
            else:
                self._lookup(run, workers)

    def log_fields(self, run: Run) -> dict[str, Any]:
        return {}

    def _range(self, run: Run, workers: Workers) -> None:
        lo = self.checkpoint.last_key if self.checkpoint else None
        rows = RangeRows(run, workers)
        loads: Strategy = text_copy.TextCopy(run, workers, rows) if text_copy.usable(run) else rows
        strategy = checksums.Checksums(run, workers, loads) if checksums.usable(run) else loads
        run_phase(run, strategy, lo)

    def _lookup(self, run: Run, workers: Workers) -> None:
        if buckets.usable(run):
            # A whole pass, whatever a crashed run left: it only finds fewer differences.
            run_phase(run, buckets.Buckets(run, workers), None)
            return
        checkpoint = self.checkpoint
        if checkpoint is None or checkpoint.phase == UPSERT:
            upserts = LookupUpserts(run, workers)
            # Into a target empty at the start (the only lookup-mode text copy).
            loads: Strategy = (
                text_copy.TextCopy(run, workers, upserts) if text_copy.usable(run) else upserts
            )
            run_phase(run, loads, checkpoint.last_key if checkpoint else None)
            checkpoint = None
        # A target empty at the start holds only what this pass wrote: nothing to sweep.
        if run.job.delete_policy == "propagate" and not run.sizes.target_empty:
            lo = checkpoint.last_key if checkpoint and checkpoint.last_key else None
            run_phase(run, Sweep(), lo)
        elif run.write and run.checkpoint_stored:

            def complete() -> None:
                with UnitOfWork(run) as uow:
                    uow.record(Counts(), checkpoint=None)

            retrying(run, "complete", None, complete)


def usable_checkpoint(checkpoint: Checkpoint | None, mode: str) -> Checkpoint | None:
    """A checkpoint left by a run in another mode cannot be resumed: start over."""
    if checkpoint is None:
        return None
    phases = ("range",) if mode == "range" else (UPSERT, SWEEP)
    return checkpoint if checkpoint.phase in phases else None


def _reject_null_keys(run: Run) -> None:
    """Set aside source rows with a NULL key part: no key range contains them."""
    plan, job = run.plan, run.job
    specs = {spec.name: spec for spec in plan.source_specs or ()}
    if all(name in specs and not specs[name].nullable for name in job.key):
        return  # NOT NULL as the server reflects them: PostgreSQL 15 would still scan
    with run.dbs.Source() as source:
        found = store.read_null_keys(source, plan.source_table, job.columns, job.key)
    if not found:
        return
    rejected = [(row, _null_key_reason(run, row)) for row in found]
    counts = Counts(rows_read=len(found), rejected=len(found))

    def record() -> None:
        with UnitOfWork(run) as uow:
            uow.record(counts, rejected)

    retrying(run, "null_keys", None, record)
    run.counts.add(counts)
    log_rejects(rejected, job.columns)


def _null_key_reason(run: Run, row: Row) -> str:
    nulls = [name for name, value in zip(run.job.key, row, strict=False) if value is None]
    return f"key column {', '.join(nulls)} is NULL"


class IncrementalPass:
    """Pages from the watermark less the look-back to the newest change, each committed."""

    def __init__(self, pages: IncrementalPages, lookback: float) -> None:
        self.pages = pages
        self.lookback = lookback

    def execute(self, run: Run) -> None:
        run_phase(run, self.pages, self.pages.start(self.lookback))

    def log_fields(self, run: Run) -> dict[str, Any]:
        return {"watermark": self.pages.shown()}
