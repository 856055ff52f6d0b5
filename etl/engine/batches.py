"""The batch driver: batches from a key to the end of a phase, each retried as a whole.

A strategy (:mod:`etl.engine.strategies`) does one batch: read, compare, write, and
commit it in one :class:`~etl.engine.unit_of_work.UnitOfWork`. This module runs it
again after a transient error, redoes it isolating rows after a data error, adds its
counts once it has committed, logs it and honours a stop between batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

from etl.core.counts import Counts
from etl.core.diff import Key
from etl.core.keys import encode_row, shown
from etl.engine.db import describe_error
from etl.engine.results import BatchDone
from etl.engine.retry import is_data_error, with_retries
from etl.engine.run import Run
from etl.engine.unit_of_work import Rejected
from etl.errors import Interrupted

log = structlog.get_logger("etl.sync")

T = TypeVar("T")


@dataclass(frozen=True)
class Batch:
    """What one committed batch did: where it ended, its counts, the rows it set aside."""

    hi: Key | None
    """Where the next batch starts; None: the phase is complete."""
    counts: Counts
    rejected: list[Rejected] = field(default_factory=list)
    via: str = "rows"
    """How the rows were compared or written: ``rows``, ``checksum`` (equal summaries,
    nothing read) or ``text`` (an empty target range filled with source-written text)."""


class Strategy(Protocol):
    """One way to do a phase's batches."""

    phase: str
    """The phase's name in checkpoints and logs."""

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        """One batch after ``lo``, committed; ``isolate``: set refused rows aside one by one."""
        ...


def run_phase(run: Run, strategy: Strategy, lo: Key | None) -> None:
    """Batches from ``lo`` until the strategy says the phase is complete."""
    while True:
        started = time.monotonic()
        done = attempt(run, strategy.phase, lo, partial(strategy.batch, run, lo))
        run.counts.add(done.counts)  # only now: a failed attempt's counts never commit
        batch_done(run, strategy.phase, lo, done, started)
        if done.hi is None:
            return
        lo = done.hi


def attempt(run: Run, phase: str, lo: Key | None, work: Callable[[bool], T]) -> T:
    """``work(isolate)``, retried after transient errors; isolating rows after a data error.

    A data error (a constraint or trigger the row checks could not know about) would
    fail every retry alike, so the batch is redone once with ``isolate``: its writes go
    in halves under savepoints until the refused rows are found and set aside.
    """
    try:
        return retrying(run, phase, lo, lambda: work(False))
    except DBAPIError as error:
        if not is_data_error(error):
            raise
        log.warning("batch_isolating_rows", phase=phase, lo=shown(lo), error=describe_error(error))
        return retrying(run, phase, lo, lambda: work(True))


def retrying(run: Run, phase: str, lo: Key | None, work: Callable[[], T]) -> T:
    """``work`` (a whole transaction) retried per the run's policy after transient errors."""

    def once() -> T:
        used = run.budget.used  # a rolled-back attempt deleted nothing
        try:
            return work()
        except BaseException:
            run.budget.used = used
            raise

    return with_retries(run.options.retry, once, describe=describe_error, phase=phase, lo=shown(lo))


def batch_done(run: Run, phase: str, lo: Key | None, done: Batch, started: float) -> None:
    """Log a committed batch, tell the caller, and stop here if asked to."""
    seconds = time.monotonic() - started
    log.info(
        "batch_committed" if run.write else "batch_compared",
        phase=phase,
        via=done.via,
        lo=shown(lo),
        hi=shown(done.hi),
        seconds=round(seconds, 4),
        **done.counts.as_dict(),
    )
    log_rejects(done.rejected, run.job.columns)
    hooks = run.hooks
    if hooks.on_batch is not None:
        hooks.on_batch(BatchDone(phase, done.counts, seconds, run.sizes.source_rows))
    if done.hi is None:
        return  # the phase is complete: a stop asked for now is honoured after it
    stop, pause = hooks.stop, run.options.pause_between_batches
    # A stop that arrives during the pause ends the run now, not after one more batch.
    if stop is not None and (stop.is_set() or (pause > 0 and stop.wait(pause))):
        raise Interrupted(run.job.name)
    if stop is None and pause > 0:
        time.sleep(pause)


def log_rejects(rejected: list[Rejected], columns: Sequence[str]) -> None:
    """One ``row_rejected`` line per row set aside."""
    for row, reason in rejected:
        log.warning("row_rejected", reason=reason, row=encode_row(columns, row))
