"""How a run paces itself and what it refuses: pure rules, unit-tested without a database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from etl.core.counts import Counts
from etl.errors import MassDeleteRefused

MAX_SPAN = 32768
"""Most keys in one checksummed range: bounds the row tokens a range holds in memory."""


def grown(span: int, batch_size: int) -> int:
    """The next checksummed range after an unchanged one: twice as long, up to a cap.

    Unchanged ranges cost one summary query per side whatever their length, so an
    unchanged table is compared in a few dozen queries.
    """
    return min(span * 2, max(MAX_SPAN, batch_size))


MAX_TEXT_SPAN = 32768
"""Most rows in one text copy into a target empty at the start: a few MB of text (the
client holds two at a time, the one it writes and the next)."""


def text_ceiling(batch_size: int, *, target_empty: bool) -> int:
    """The most rows one text copy may write: many batches' into a target empty at
    the start (each copy is a transaction; fewer of them is most of the gain past the
    parsing), a batch's otherwise, where a longer range is more likely to hold rows."""
    return max(MAX_TEXT_SPAN, batch_size) if target_empty else batch_size


@dataclass(frozen=True)
class Pace:
    """How the next checksummed range is compared."""

    span: int
    """Source keys in it."""
    dense: bool
    """Skip the summaries and go straight to row tokens."""


def after_differences(span: int, changed: int, batch_size: int) -> Pace:
    """The pace after a range whose row tokens showed ``changed`` differing keys.

    Changes come in clusters or everywhere: after a range with some, the next one
    most likely has some too, and its summaries would only repeat the token scan. A
    range that needed few writes may still grow; one that needed many starts over at
    a batch, so a transaction never holds more than about a batch of writes twice.
    """
    span = grown(span, batch_size) if changed <= batch_size // 2 else batch_size
    return Pace(span, dense=changed > 0)


def whole_table_first(previous: Counts | None, source_changed: bool | None = None) -> bool:
    """Whether to compare the whole tables' sums before anything finer (key ranges,
    buckets).

    One sum per side, with no key hashed and nothing grouped, costs about half the
    bucket summaries, and less than the range summaries with their boundaries: an
    unchanged table is then done in one query per side. Not where the source says it
    was written to since the previous run started (``source_changed``; MariaDB and MySQL
    keep a table's last write time): the table likely differs, and the check would cost
    half a pass for nothing. Where the source cannot say (None), not after a run that
    found rows changed in a table it had loaded before (updated or deleted rows, or new
    ones beside unchanged ones): such a table likely differs again. A first load, or no
    run yet, says nothing of that. Only ever a question of cost: whatever is skipped,
    every row is still compared.
    """
    if source_changed is not None:
        return not source_changed
    if previous is None:
        return True
    changed = previous.updated or previous.deleted or (previous.inserted and previous.unchanged)
    return not changed


def refuse_obvious_mass_delete(
    job: str, source_rows: int, target_rows: int, limit: float, *, unlimited: bool
) -> None:
    """Raise MassDeleteRefused when the counts alone show the guard would trip.

    An emptied or truncated source is the classic way to wipe a target; the per-batch
    check would catch it too, but only after the first deletes had committed.
    """
    shortfall = target_rows - source_rows
    if unlimited or target_rows == 0 or shortfall <= 0:
        return
    if shortfall > limit * target_rows:
        raise MassDeleteRefused(job, shortfall, target_rows, limit)


@dataclass
class DeleteBudget:
    """The mass-delete guard: how many target rows this run may still delete."""

    job: str
    target_rows: int
    limit: float
    unlimited: bool
    used: int = 0
    count: Callable[[], tuple[int, int]] | None = None
    """Both tables' exact rows (source, target), not counted yet: the pass counts them
    (or has the whole tables' sums say them) before it writes anything (:meth:`counted`)."""

    def count_now(self) -> None:
        """Count both tables if that is still to do (nothing written yet)."""
        if self.count is not None:
            self.counted(*self.count())

    def counted(self, source_rows: int, target_rows: int) -> None:
        """The exact counts: MassDeleteRefused when they alone show the guard would trip."""
        self.count = None
        self.target_rows = target_rows
        refuse_obvious_mass_delete(
            self.job, source_rows, target_rows, self.limit, unlimited=self.unlimited
        )

    def take(self, deletes: int) -> None:
        """Count deletes about to be written; MassDeleteRefused when over the limit."""
        if deletes and self.count is not None:
            raise AssertionError("the mass-delete guard's counts must come before any delete")
        if not self.unlimited and deletes and self.used + deletes > self.limit * self.target_rows:
            raise MassDeleteRefused(self.job, self.used + deletes, self.target_rows, self.limit)
        self.used += deletes
