"""Incremental mode: sync only the source rows changed since the job's watermark.

A job with a change-tracking column (``Job.cursor_column``, e.g. ``updated_at``) can
read just the rows whose cursor is past its watermark, in (cursor, key) order, a page
at a time by keyset on both (never OFFSET: a page starts right after the last row of
the previous one, so rows with equal cursors across a page boundary are neither lost
nor read twice). Each page is compared with the target's rows for the same keys, as
lookup mode does, so unchanged rows cause no write; bad rows are set aside as in a
full run. The watermark moves in the same target transaction as the page's writes.

Why a look-back: a row's cursor is set when its transaction writes it, but the row
becomes visible only when that transaction commits. A long transaction can commit a
row stamped earlier than rows already synced; re-reading ``lookback`` behind the
watermark picks such rows up (they compare unchanged when nothing is new, so the
re-read costs reads, not writes).

What it cannot see: deleted rows leave no cursor behind, and a row stamped further
back than the look-back is skipped. The periodic full run reconciles both, so a job
runs incrementally often and in full now and then (see docs/incremental.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from etl.core.diff import Key, Row
from etl.core.keys import shown
from etl.dialects import Dialect
from etl.engine import rows
from etl.engine.batches import Batch
from etl.engine.run import Run
from etl.engine.unit_of_work import UnitOfWork
from etl.errors import ConfigError

MODE = "incremental"
"""The mode recorded in ``etl_runs``, and the phase on log lines."""


class IncrementalPages:
    """Pages in (cursor, key) order from a position; the watermark moves with each page."""

    phase = MODE

    def __init__(self, run: Run, column: str, watermark: Key | None) -> None:
        self.order = (column, *run.job.key)
        """The cursor column, then the key columns: the read order and the keyset."""
        self.cursor_index = run.job.columns.index(column)
        """Where the cursor value sits in a row (rows are in ``Job.columns`` order)."""
        self.watermark = watermark
        """The largest position committed: only ever moves forward."""

    def start(self, lookback: float) -> Key | None:
        """Where this run reads from: the watermark less the look-back."""
        if self.watermark is None:
            return None
        cursor, *key = self.watermark
        return (rewind(cursor, lookback), *key)

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        """Read a page of changes, write what differs, move the watermark: one transaction."""
        plan, job, size = run.plan, run.job, run.options.batch_size
        with run.dbs.Source() as source:
            page = read_changes(
                source, plan.source_table, job.columns, self.order, lo, size, plan.source_dialect
            )
        valid, rejected = rows.check_rows(run, page)
        end = self._position(page[-1], run.key_length) if page else None
        mark = later(self.watermark, end)
        with UnitOfWork(run) as uow:
            # The lookup returns rows whose key the target calls equal to a source key. One
            # that is not spelled exactly alike ('anna' for 'Anna' under a case-insensitive
            # collation) is the same row respelled: deleting it before the upsert leaves the
            # source's spelling, as a full run would. With an exact collation there are none.
            changes = rows.lookup_changes(
                run,
                uow.session,
                valid,
                delete_missing=job.delete_policy == "propagate",
                protected=rows.protected_keys(run, uow.session, rejected),
            )
            rejected += rows.apply(run, uow.session, changes, isolate=isolate)
            counts = rows.batch_counts(len(page), changes, rejected)
            moved = mark if mark is not None and mark != self.watermark else None
            uow.record(counts, rejected, watermark=moved)
        self.watermark = mark  # only now: a rolled-back page moved nothing
        return Batch(end if len(page) == size else None, counts, rejected)

    def shown(self) -> list[Any] | None:
        """The watermark for log lines."""
        return shown(self.watermark)

    def _position(self, row: Row, key_length: int) -> Key:
        return (row[self.cursor_index], *row[:key_length])


def read_changes(
    session: Session,
    table: Table,
    columns: Sequence[str],
    order: Sequence[str],
    lo: Key | None,
    limit: int,
    dialect: Dialect,
) -> list[Row]:
    """The first ``limit`` rows after position ``lo`` in (cursor, key) order."""
    ordered = [table.c[name] for name in order]
    query = (
        select(*[table.c[name] for name in columns])
        .where(dialect.after_position(table, order, lo))
        .order_by(*ordered)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]


def rewind(cursor: Any, lookback: float) -> Any:
    """The cursor value ``lookback`` before ``cursor`` (seconds for times and dates)."""
    if not lookback:
        return cursor
    if isinstance(cursor, datetime):
        return cursor - timedelta(seconds=lookback)
    if isinstance(cursor, date):
        return cursor - timedelta(days=math.ceil(lookback / 86400))
    if isinstance(cursor, Decimal):
        return cursor - Decimal(str(lookback))
    if isinstance(cursor, int | float):
        return cursor - lookback
    raise ConfigError(
        f"cursor value {cursor!r} ({type(cursor).__name__}) cannot be rewound: "
        "use a timestamp or number cursor, or a look-back of 0"
    )


def later(watermark: Key | None, end: Key | None) -> Key | None:
    """The watermark after a page ending at ``end``: it never moves back.

    A page inside the look-back window ends before the stored watermark; keeping the
    larger one means a crash there does not make the next run re-read more. Positions
    compare whole, cursor then key: an equal cursor with a smaller key is earlier. (Keys
    compare in Python's order, which a case-insensitive source may not share: then
    the watermark may stay back, which costs a re-read, never a skipped row.)
    """
    if end is None:
        return watermark
    if watermark is None or end >= watermark:
        return end
    return watermark
