"""Empty target ranges filled with SQL text the source writes; row by row otherwise.

See :mod:`etl.engine.textcopy` for when a text copy is exact. Anything unusual (a
target range that already holds rows, text too long for one statement, a source that
cannot write the text) goes row by row, and a copy that cannot be made at all is not
tried again this run.
"""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError

from etl.core.counts import Counts
from etl.core.diff import Key
from etl.dialects.types import Values
from etl.engine import store, textcopy
from etl.engine.batches import Batch
from etl.engine.db import describe_error
from etl.engine.retry import is_transient
from etl.engine.run import Run
from etl.engine.strategies.range_rows import PHASE, RangeRows, range_checkpoint
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Ahead, Workers

log = structlog.get_logger("etl.sync")

Fetched = tuple[Key | None, Values | None]


def usable(run: Run) -> bool:
    """Whether empty target ranges may be filled by text copies in this run."""
    plan = run.plan
    return (
        run.write
        and plan.copies_text
        and run.check is None  # no transform or rule; every row is known to fit
        and textcopy.copyable(plan.source_specs, plan.specs)
    )


class TextCopy:
    """Range mode into a target that may be empty: text where it can, rows where not."""

    phase = PHASE

    def __init__(self, run: Run, workers: Workers, rows: RangeRows) -> None:
        self.rows = rows
        self.enabled = True
        self.limit = 0
        """Longest values text the target takes in one statement (0: not asked yet)."""
        self._ahead: Ahead[Fetched] = workers.ahead()

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        if self.enabled and not isolate:
            copied = self._copy(run, lo)
            if copied is not None:
                return copied
        return self.rows.batch(run, lo, isolate)

    def _copy(self, run: Run, lo: Key | None) -> Batch | None:
        """A batch as source-written text; None when it must go row by row."""
        plan, job = run.plan, run.job
        if not self.limit and not self._ask_limit(run):
            return None
        try:
            hi, values = self._ahead.take(lo, lambda: self._fetch(run, lo))
        except DBAPIError as error:
            if is_transient(error):
                raise
            self._off(error=describe_error(error))
            return None
        if values is None:  # rows too wide for whole batches in one statement
            self._off(reason="a batch's text is too long for one statement")
            return None
        if hi is not None:
            self._ahead.start(hi, lambda: self._fetch(run, hi))
        with UnitOfWork(run) as uow:
            target = uow.session
            if store.any_rows(target, plan.target_table, job.key, lo, hi, plan.target_dialect):
                return None
            if values.rows:
                plan.target_dialect.upsert_values(
                    target, plan.target_table, job.columns, job.key, values.text
                )
            counts = Counts(rows_read=values.rows, inserted=values.rows)
            uow.record(counts, checkpoint=range_checkpoint(run, hi))
        return Batch(hi, counts, via="text")

    def _ask_limit(self, run: Run) -> bool:
        with run.dbs.Target() as target:
            limit = run.plan.target_dialect.text_copy_limit(target)
        if limit is None:  # e.g. the target would misread the source's escapes
            self._off(reason="the target session cannot read the source's text")
            return False
        self.limit = limit
        return True

    def _fetch(self, run: Run, lo: Key | None) -> Fetched:
        """The end of the batch after ``lo`` and its rows as values text, from the source."""
        plan, job = run.plan, run.job
        with run.dbs.Source() as source:
            size = run.options.batch_size
            hi = store.boundary(source, plan.source_table, job.key, lo, size, plan.source_dialect)
            found = plan.source_dialect.values_text(
                source, plan.source_table, job.columns, job.key, lo, hi, self.limit
            )
        return hi, found

    def _off(self, **why: str) -> None:
        log.info("text_copy_off", **why)
        self.enabled = False
        self._ahead.cancel()
