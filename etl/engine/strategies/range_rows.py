"""Range mode, row by row: the source's batch (lo, hi] against the target's rows in (lo, hi]."""

from __future__ import annotations

from etl.core.counts import Checkpoint
from etl.core.diff import Key
from etl.engine import rows, store
from etl.engine.batches import Batch
from etl.engine.run import Run
from etl.engine.strategies.reads import SourcePages
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Workers

PHASE = "range"


class RangeRows:
    """Both sides order keys alike: a source key range is the same range on the target."""

    phase = PHASE

    def __init__(self, run: Run, workers: Workers) -> None:
        self.pages = SourcePages(run, workers)

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        plan, job = run.plan, run.job
        page = self.pages.page(lo)
        hi = self.pages.last_key(page)
        valid, rejected = rows.check_rows(run, page)
        with UnitOfWork(run) as uow:
            target = uow.session
            current = (
                store.read_range(
                    target, plan.target_table, job.columns, job.key, lo, hi, plan.target_dialect
                )
                if plan.target_exists
                else []
            )
            changes = rows.compare(
                run,
                target,
                valid,
                current,
                rejected,
                delete_missing=job.delete_policy == "propagate",
            )
            run.budget.take(len(changes.deletes))
            rejected += rows.apply(run, target, changes, isolate=isolate)
            counts = rows.batch_counts(len(page), changes, rejected)
            uow.record(counts, rejected, checkpoint=range_checkpoint(run, hi))
        return Batch(hi, counts, rejected)

    def checkpoint(self, run: Run, hi: Key | None) -> Checkpoint | None:
        return range_checkpoint(run, hi)


def range_checkpoint(run: Run, hi: Key | None) -> Checkpoint | None:
    """The checkpoint after a range ending at ``hi``; None: the pass is complete."""
    return Checkpoint(PHASE, hi, run.run_id) if hi else None
