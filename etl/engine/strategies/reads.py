"""Source pages in key order, the next one read while this batch is written."""

from __future__ import annotations

from etl.core.diff import Key, Row
from etl.engine import store
from etl.engine.run import Run
from etl.engine.workers import Ahead, Workers


class SourcePages:
    """``page(lo)``: the source's batch after ``lo``; the page after it starts reading.

    The next read runs while this batch is checked and written: the target's server
    works on the write while the client takes in the next rows (waiting on a socket
    releases the GIL). A read done ahead is used only for the ``lo`` it was made
    from; a retried batch that ends elsewhere reads afresh.
    """

    def __init__(self, run: Run, workers: Workers) -> None:
        self.run = run
        self.workers = workers
        self._ahead: Ahead[list[Row]] = workers.ahead()

    def page(self, lo: Key | None) -> list[Row]:
        """The first batch-size rows after ``lo``; ``last_key`` of it is the next ``lo``."""
        rows: list[Row] = self._ahead.take(lo, lambda: self._fetch(lo))
        following = self.last_key(rows)
        if following is not None:
            self._ahead.start(following, lambda: self._fetch(following))
        return rows

    def last_key(self, page: list[Row]) -> Key | None:
        """Where the batch after this page starts; None when the page was the last."""
        if len(page) < self.run.options.batch_size:
            return None
        return page[-1][: self.run.key_length]

    def _fetch(self, lo: Key | None) -> list[Row]:
        """One page of source rows, in its own short read transaction."""
        plan, job = self.run.plan, self.run.job
        with self.run.dbs.Source() as source:
            return store.read_page(
                source,
                plan.source_table,
                job.columns,
                job.key,
                lo,
                self.run.options.batch_size,
                plan.source_dialect,
            )
