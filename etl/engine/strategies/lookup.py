"""Lookup mode: the sides order keys differently, so no key range means the same on both.

Phase ``upsert`` writes each source batch's rows, found by key on the target (whose
collation is exact here, so what it returns matches by bytes). Phase ``sweep`` walks
the target's keys and deletes those the source lacks.
"""

from __future__ import annotations

from etl.core.counts import Checkpoint, Counts
from etl.core.diff import Changes, Key, missing_keys
from etl.engine import rows, store
from etl.engine.batches import Batch
from etl.engine.run import Run
from etl.engine.strategies.reads import SourcePages
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Workers

UPSERT, SWEEP = "upsert", "sweep"


class LookupUpserts:
    """Each source batch's rows compared with the target rows found by their keys."""

    phase = UPSERT

    def __init__(self, run: Run, workers: Workers) -> None:
        self.pages = SourcePages(run, workers)

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        page = self.pages.page(lo)
        hi = self.pages.last_key(page)
        valid, rejected = rows.check_rows(run, page)
        with UnitOfWork(run) as uow:
            changes = rows.lookup_changes(run, uow.session, valid, delete_missing=False)
            rejected += rows.apply(run, uow.session, changes, isolate=isolate)
            counts = rows.batch_counts(len(page), changes, rejected)
            uow.record(counts, rejected, checkpoint=self.checkpoint(run, hi))
        return Batch(hi, counts, rejected)

    def checkpoint(self, run: Run, hi: Key | None) -> Checkpoint:
        """The next upsert batch; after the last, the sweep's start (a crash between the
        phases resumes there)."""
        return Checkpoint(UPSERT, hi, run.run_id) if hi else Checkpoint(SWEEP, (), run.run_id)


class Sweep:
    """Target keys in the target's order, deleted where the source has no identical key."""

    phase = SWEEP

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        plan, job, size = run.plan, run.job, run.options.batch_size
        with UnitOfWork(run) as uow:
            target = uow.session
            keys = (
                store.read_page(
                    target, plan.target_table, job.key, job.key, lo, size, plan.target_dialect
                )
                if plan.target_exists
                else []
            )
            hi = keys[-1] if len(keys) == size else None
            with run.dbs.Source() as source:
                found = store.read_keys(
                    source, plan.source_table, job.key, job.key, keys, plan.source_dialect
                )
            # The source may call 'anna' and 'Anna' equal; only an identical key counts.
            deletes = missing_keys(keys, set(found))
            run.budget.take(len(deletes))
            rows.apply(run, target, Changes(deletes=deletes), isolate=False)
            counts = Counts(deleted=len(deletes))
            uow.record(counts, checkpoint=Checkpoint(SWEEP, hi, run.run_id) if hi else None)
        return Batch(hi, counts)
