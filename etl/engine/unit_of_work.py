"""The one place a batch's target transaction begins, is recorded and commits.

Why committing per batch is safe: a batch's rows, its rejected rows, the run's totals
and the checkpoint (the last key done) commit together. A crash at any instant leaves
the target with whole batches only and a checkpoint naming the last of them, so the
next run resumes right after it; rows are written by key (upsert/delete), so even
redoing a batch would change nothing.

The default on leaving the block is rollback: only a block that ends normally in a
run that writes commits. A dry run is a unit of work that always rolls back.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final, Literal

from sqlalchemy.orm import Session, SessionTransaction

from etl.core.counts import Checkpoint, Counts
from etl.core.diff import Key, Row
from etl.engine import state, watermarks
from etl.engine.run import Run

Rejected = tuple[Row, str]
"""A source row set aside, with the reason."""

KEEP: Final = "keep"
"""The checkpoint stays where it is (a batch outside the key-range pass)."""


class UnitOfWork:
    """``with UnitOfWork(run) as uow:`` one target transaction; ``uow.record`` its outcome."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.session: Session = run.dbs.Target()
        self._transaction: SessionTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self._transaction = self.session.begin()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            assert self._transaction is not None
            if kind is None and self.run.write:
                self._transaction.commit()
            else:
                self._transaction.rollback()
        finally:
            self.session.close()

    def record(
        self,
        counts: Counts,
        rejected: list[Rejected] | None = None,
        *,
        checkpoint: Checkpoint | Literal["keep"] | None = KEEP,
        watermark: Key | None = None,
    ) -> None:
        """Rejects, totals, checkpoint (None: the pass is complete) and watermark.

        The stored totals include this batch; ``run.counts`` itself grows only after
        the commit, so a batch that is rolled back and retried is not counted twice.
        A batch that wrote nothing leaves the checkpoint where it was: redoing it after
        a crash is as harmless as skipping it. Only the end of a pass must clear it, or
        the next run would resume from it.
        """
        run = self.run
        if not run.write:
            return
        now = run.clock()
        if not counts.writes:
            clears = checkpoint is None and run.checkpoint_stored
            if clears or watermark is not None:
                self._guard()
            if clears:
                state.save_checkpoint(self.session, run.pass_name, None, now)
            if watermark is not None:
                watermarks.save(self.session, run.pass_name, watermark, run.run_id, now)
            return
        self._guard()
        state.record_rejects(
            self.session,
            run.run_id,
            run.job.name,
            run.job.columns,
            rejected or [],
            run.key_length,
            now,
        )
        state.save_counts(self.session, run.run_id, run.counts.plus(counts))
        if checkpoint != KEEP:
            assert not isinstance(checkpoint, str)
            state.save_checkpoint(self.session, run.pass_name, checkpoint, now)
            run.checkpoint_stored = True  # kept even if this transaction rolls back: harmless
        if watermark is not None:
            watermarks.save(self.session, run.pass_name, watermark, run.run_id, now)

    def _guard(self) -> None:
        """Before a batch that writes commits: raise if this run may no longer write."""
        if self.run.hooks.guard is not None:
            self.run.hooks.guard()
