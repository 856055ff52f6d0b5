"""One run of a job: what it was asked to do, fixed at the start, and its totals so far."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from etl.core.counts import Counts, TableSizes
from etl.core.policy import DeleteBudget
from etl.core.validate import RowCheck
from etl.engine.db import Databases
from etl.engine.plan import Plan
from etl.engine.results import BatchDone, Clock, SyncOptions
from etl.job import Job


@dataclass(frozen=True)
class Hooks:
    """How the caller follows and steers a run."""

    stop: threading.Event | None = None
    """Set to stop the run after the batch in flight commits."""
    on_batch: Callable[[BatchDone], None] | None = None
    """Called after each batch (progress displays)."""
    guard: Callable[[], None] | None = None
    """Raises when this run may no longer write (its lock is lost): asked before each
    batch that writes commits, inside its transaction, so such a batch rolls back."""


@dataclass
class Run:
    """Everything a batch needs to know about its run; only the totals change."""

    job: Job
    dbs: Databases
    plan: Plan
    options: SyncOptions
    run_id: str
    clock: Clock
    hooks: Hooks
    pass_name: str
    """What this job's checkpoint (and watermark) is kept under, for this pair of tables."""
    check: RowCheck | None
    """The row checks for the target's columns, compiled once; None: none needed."""
    budget: DeleteBudget
    sizes: TableSizes = field(default_factory=TableSizes)
    """Both tables' rows at the start of a full run (:mod:`etl.engine.sizes`)."""
    counts: Counts = field(default_factory=Counts)
    """Totals of the batches committed so far."""
    checkpoint_stored: bool = False
    """A checkpoint row may exist for this pass: the pass must clear it when complete."""
    source_version: str | None = None
    """The source table's write version as the pass started, stored when the run succeeds
    (:meth:`~etl.dialects.base.Dialect.write_version`)."""

    @property
    def key_length(self) -> int:
        return len(self.job.key)

    @property
    def write(self) -> bool:
        """False in a dry run: every transaction is rolled back."""
        return not self.options.dry_run
