"""Target ranges known empty filled with text the source writes; row by row otherwise.

See :mod:`etl.engine.textcopy` for when a text copy is exact. In range mode a source
range is the same target range, which is copied only when the target holds no row in
it. In lookup mode no range means the same keys on both sides, so only a target that
was empty when the run started is copied into (every key is new; no sweep follows).
Anything unusual (a range that already holds rows, text too long for one statement, a
value the text cannot carry) goes through the rows strategy, and a copy that cannot be
made at all is not tried again this run.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from sqlalchemy.exc import DBAPIError

from etl.core.counts import Checkpoint, Counts
from etl.core.diff import Key
from etl.core.policy import text_ceiling
from etl.dialects.types import TextFormat, Values
from etl.engine import schema, store, textcopy
from etl.engine.batches import Batch
from etl.engine.db import describe_error
from etl.engine.retry import is_transient
from etl.engine.run import Run
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Ahead, Workers

log = structlog.get_logger("etl.sync")

Fetched = tuple[Key | None, Values | None]


class Rows(Protocol):
    """The strategy a text copy falls back to, and whose phase and checkpoints it keeps."""

    phase: str

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        """One batch after ``lo`` row by row, committed."""
        ...

    def checkpoint(self, run: Run, hi: Key | None) -> Checkpoint | None:
        """The checkpoint after a batch ending at ``hi``."""
        ...


def usable(run: Run) -> bool:
    """Whether target ranges may be filled by text copies in this run.

    Only where a source row goes to the target as it is (no transform or business
    rule, no type of the job's own converting values) and the columns can travel as
    text (:func:`etl.engine.textcopy.copyable`). In lookup mode only into a target
    known (exactly, not from statistics) to be empty: no key there to look up.
    """
    plan, job = run.plan, run.job
    return (
        run.write
        and plan.copies_text
        and job.transform is None
        and job.validate is None
        and (plan.mode == "range" or run.sizes.target_empty)
        and textcopy.copyable(
            plan.source_specs,
            plan.specs,
            same_kind=plan.source_dialect.same_kind(plan.target_dialect),
        )
        and textcopy.declared_as_stored(
            [plan.source_table.c[name].type for name in job.columns],
            schema.declared_specs(plan.source_table, job.columns, plan.source_dialect),
            plan.source_specs,
        )
    )


class TextCopy:
    """Text where the target's range is known empty, the rows strategy where not."""

    def __init__(self, run: Run, workers: Workers, rows: Rows) -> None:
        self.rows = rows
        self.phase = rows.phase
        self.enabled = True
        self.limit = 0
        """Longest text the target takes in one write (0: not asked yet)."""
        self.form: TextFormat | None = run.plan.target_dialect.text_format
        size = run.options.batch_size
        self.ceiling = text_ceiling(size, target_empty=run.sizes.target_empty)
        self.span = size
        """Rows the next copy reads: twice as many after each copy, up to the ceiling;
        a batch's again after a range that went row by row."""
        self._ahead: Ahead[Fetched] = workers.ahead()

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        if self.enabled and not isolate:
            copied = self._copy(run, lo)
            if copied is not None:
                return copied
            self.span = run.options.batch_size
        return self.rows.batch(run, lo, isolate)

    def _copy(self, run: Run, lo: Key | None) -> Batch | None:
        """A batch as source-written text; None when it must go row by row."""
        plan, job = run.plan, run.job
        if not self.limit and not self._ask_limit(run):
            return None
        try:
            hi, values = self._text(run, lo)
        except DBAPIError as error:
            if is_transient(error):
                raise
            self._off(error=describe_error(error))
            return None
        if values is None:  # rows too wide for whole batches in one statement
            self._off(reason="a batch's text is too long for one statement")
            return None
        following = min(self.span * 2, self.ceiling)
        if hi is not None and values.fits:
            self._ahead.start((hi, following), lambda: self._fetch(run, hi, following))
        if not values.fits:
            return None
        with UnitOfWork(run) as uow:
            target = uow.session
            if plan.mode == "range" and store.any_rows(
                target, plan.target_table, job.key, lo, hi, plan.target_dialect
            ):
                self._ahead.cancel()
                return None
            if values.rows:
                assert self.form is not None
                plan.target_dialect.write_text(
                    target, plan.target_table, job.columns, job.key, values.text, form=self.form
                )
            counts = Counts(rows_read=values.rows, inserted=values.rows)
            uow.record(counts, checkpoint=self.rows.checkpoint(run, hi))
        self.span = following
        return Batch(hi, counts, via="text")

    def _text(self, run: Run, lo: Key | None) -> Fetched:
        """The ``span`` rows after ``lo`` as text; fewer (and a lower ceiling for the
        rest of the run) when their text is too long for one write."""
        span, size = self.span, run.options.batch_size
        found = self._ahead.take((lo, span), lambda: self._fetch(run, lo, span))
        while found[1] is None and span > size:
            span = self.span = self.ceiling = max(size, span // 4)
            found = self._fetch(run, lo, span)
        return found

    def _ask_limit(self, run: Run) -> bool:
        """The target's limit, and the fastest format it reads that the source writes."""
        source, target_dialect = run.plan.source_dialect, run.plan.target_dialect
        with run.dbs.Target() as target:
            limit = target_dialect.text_copy_limit(target)
            formats = target_dialect.text_formats(target) if limit is not None else ()
        self.form = next((form for form in formats if form in source.text_writes), None)
        if limit is None or self.form is None:  # e.g. it would misread the source's escapes
            self._off(reason="the target session cannot read the source's text")
            return False
        self.limit = limit
        log.info("text_copy_format", form=self.form)
        return True

    def _fetch(self, run: Run, lo: Key | None, span: int) -> Fetched:
        """The end of the ``span`` rows after ``lo`` and their text, from the source."""
        plan, job = run.plan, run.job
        assert self.form is not None
        with run.dbs.Source() as source:
            hi = store.boundary(source, plan.source_table, job.key, lo, span, plan.source_dialect)
            found = plan.source_dialect.values_text(
                source, plan.source_table, job.columns, job.key, lo, hi, self.limit, form=self.form
            )
        return hi, found

    def _off(self, **why: str) -> None:
        log.info("text_copy_off", **why)
        self.enabled = False
        self._ahead.cancel()
