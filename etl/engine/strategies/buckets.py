"""Lookup mode with summaries: buckets of exact keys, compared on both servers.

The sides order keys differently, so no key range means the same set of keys on both.
A key's bucket does: both servers hash its exact bytes the same way. One GROUP BY per
side gives every bucket's count and checksum; buckets that agree hold the same rows.
Before that, unless the job's previous run found changes, both sides sum the whole
table (no key hashed, nothing grouped): an unchanged table then costs half as much.
Differing buckets are drilled into by one (exact key, row hash) token per row, both
sides streamed in bucket order and merged a bucket at a time, so the client holds
one bucket's tokens and the differing keys only; only those keys are read, by key,
and written by the usual rules in batches of one
:class:`~etl.engine.unit_of_work.UnitOfWork` each.

Checkpoints: a bucket pass cannot resume half way (its summaries are of one moment),
so each batch that writes records the ``buckets`` phase, which means "start over", and
the pass's end clears it. Writes go by key (upserts, deletes), so a pass redone after
a crash only finds fewer differences: nothing is lost or written twice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog
from sqlalchemy.orm import Session

from etl.core import buckets, lines
from etl.core.counts import Checkpoint, Counts
from etl.core.diff import Key, missing_keys
from etl.engine import checksum, rows, store
from etl.engine.batches import Batch
from etl.engine.db import describe_error
from etl.engine.run import Run
from etl.engine.strategies import checksums
from etl.engine.unit_of_work import UnitOfWork
from etl.engine.workers import Workers

log = structlog.get_logger("etl.sync")

PHASE = "buckets"
G = TypeVar("G")
"""What a bucket stream yields per bucket: its tokens or its row lines."""

HELD_BATCHES = 20
"""Differing keys held at once, in batches: a stream stops there and resumes later."""
LINES_HELD_BATCHES = 10
"""The same for a pass by row lines, whose keys are held beside both streams' buffers:
at 100,000 keys (about 16 MB) a 10% change of 1M rows peaked past 100 MB RSS. A pass
that stops there goes on from the next bucket with a scan of its own."""
BUCKETS_PER_STREAM = 16_384
"""Differing buckets one stream asks for: its query names them all (about 100 KB)."""


def usable(run: Run) -> bool:
    """Whether both servers can summarise buckets: as for range checksums, which see."""
    return checksums.usable(run)


@dataclass(frozen=True)
class _Held:
    """What merging both sides' bucket streams found before it stopped."""

    upserts: list[Key]
    deletes: list[Key]
    equal: int
    """Source rows found unchanged."""
    last: int
    """The last bucket merged (-1: none)."""
    stopped: bool
    """Stopped there, holding enough keys, before the streams' end."""
    differing: int
    """Buckets merged that held a difference."""


AHEAD_BYTES = 8 << 20
"""Most bytes of buckets one side's stream holds ahead of the merge."""
_PARCEL_BYTES = 128 << 10
"""Buckets handed from a stream to the merge at a time, by bytes."""


class _Feed(Generic[G]):
    """One side's bucket stream, run in a worker thread, handed over in parcels.

    The parcels held at once weigh at most :data:`AHEAD_BYTES` (by the stream's
    weight), one parcel more while the merge takes one.
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        stream: Callable[[Session], Iterable[tuple[int, G]]],
        stop: threading.Event,
    ) -> None:
        self.sessions, self.stream, self.stop = sessions, stream, stop
        self._parcels: deque[tuple[list[tuple[int, G]], int]] = deque()
        self._held = 0
        self._ended = False
        self._changed = threading.Condition()
        self.future: Future[None] | None = None

    def start(self, workers: Workers, weight: Callable[[G], int]) -> None:
        """Run the stream in one of the workers until it ends or ``stop`` is set."""
        self.future = workers.submit(lambda: self._run(weight))

    def _run(self, weight: Callable[[G], int]) -> None:
        try:
            with self.sessions() as session:
                parcel: list[tuple[int, G]] = []
                size = 0
                for group in self.stream(session):
                    parcel.append(group)
                    size += weight(group[1])
                    if size >= _PARCEL_BYTES:
                        if not self._offer(parcel, size):
                            return
                        parcel, size = [], 0
                if parcel:
                    self._offer(parcel, size)
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _offer(self, parcel: list[tuple[int, G]], size: int) -> bool:
        """Hand a parcel over once the held ones leave room; False: stopped."""
        with self._changed:
            while self._held >= AHEAD_BYTES and not self.stop.is_set():
                self._changed.wait(0.1)
            if self.stop.is_set():
                return False
            self._parcels.append((parcel, size))
            self._held += size
            self._changed.notify_all()
            return True

    def received(self) -> Iterator[tuple[int, G]]:
        """The stream's buckets in order; it ends early only where the stream failed
        (its error is raised by :meth:`wait`)."""
        while True:
            with self._changed:
                while not self._parcels and not self._ended:
                    self._changed.wait(0.1)
                if not self._parcels:
                    return
                parcel, size = self._parcels.popleft()
                self._held -= size
                self._changed.notify_all()
            yield from parcel

    def wait(self) -> BaseException | None:
        """Wait for the stream's thread to end (None: never started); its error, if any."""
        return None if self.future is None else self.future.exception()


@dataclass(frozen=True)
class _Chunk:
    """Keys one batch writes: source keys to upsert, target keys to delete."""

    upserts: list[Key]
    deletes: list[Key]


class Buckets:
    """Summaries of every bucket first, tokens of differing ones, rows of differing keys."""

    phase = PHASE

    def __init__(self, run: Run, workers: Workers) -> None:
        plan, job = run.plan, run.job
        assert plan.hashing is not None
        self.workers = workers
        self.scopes = checksum.scopes(plan, job.columns, job.key)
        self.buckets = buckets.bucket_count(max(run.sizes.source_rows, run.sizes.target_rows))
        self.remaining: list[int] | None = None
        """Differing buckets not drilled yet, ascending; None: not summarised yet."""
        self.lines = self.scopes[0].key_parts is not None
        """Buckets are compared by their row lines in one pass (no summaries, no drill),
        until lines do not serve (too long, or a key misread): then by summaries."""
        self.lines_from: int | None = None
        """The next bucket of a pass by row lines; None: none under way."""
        self.pending: deque[_Chunk] = deque()
        self.credit = Counts()
        """Rows found unchanged by their hashes, counted with the next committed batch."""
        self.done = 0

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        if self.remaining is None:
            self._summarise(run)
        run.budget.count_now()  # the whole tables' sums were skipped: count before writing
        assert self.remaining is not None
        while not self.pending and (self.remaining or self.lines_from is not None):
            if self.lines_from is not None:
                self._drill_lines(run, self.lines_from)
            else:
                self._drill(run, self.remaining[:BUCKETS_PER_STREAM])
        chunk = self.pending[0] if self.pending else _Chunk([], [])
        last = len(self.pending) <= 1 and not self.remaining and self.lines_from is None
        counts = self._write(run, chunk, isolate, last)
        if self.pending:
            self.pending.popleft()
        self.done += 1
        return Batch(None if last else (self.done,), counts, via="buckets")

    def _summarise(self, run: Run) -> None:
        if self._whole_table_equal(run):
            return
        if self.lines:
            self.remaining, self.lines_from = [], 0
            return
        self._summaries(0)

    def _summaries(self, start: int) -> None:
        """Summaries of every bucket; those from ``start`` on that differ are drilled."""
        source, target = self.scopes
        theirs, ours = self.workers.on_both(
            lambda s: checksum.bucket_summaries(s, source, self.buckets),
            lambda t: checksum.bucket_summaries(t, target, self.buckets),
        )
        differ = [bucket for bucket in buckets.differing(theirs, ours) if bucket >= start]
        log.info("buckets_compared", buckets=self.buckets, differing=len(differ), by="summaries")
        unchanged = buckets.rows_from(theirs, start) - buckets.rows_in(theirs, differ)
        self.remaining = differ
        self.credit.add(Counts(rows_read=unchanged, unchanged=unchanged))

    def _whole_table_equal(self, run: Run) -> bool:
        """Compare both tables' sums first, where that is worth it."""
        rows = checksums.equal_tables(run, self.workers, self.scopes)
        if rows is not None:
            self.remaining = []
            self.credit.add(Counts(rows_read=rows, unchanged=rows))
        return rows is not None

    def _drill(self, run: Run, chosen: list[int]) -> None:
        """Stream both sides' tokens of the ``chosen`` buckets until enough keys differ."""
        source, target = self.scopes

        def tokens(session: Session, scope: checksum.Scope) -> Iterator[tuple[int, buckets.Tokens]]:
            return buckets.by_bucket(checksum.bucket_stream(session, scope, self.buckets, chosen))

        held = self._held(
            run,
            lambda s: tokens(s, source),
            lambda t: tokens(t, target),
            buckets.merged,
            lambda found: 128 * len(found),
        )
        log.info(
            "buckets_drilled",
            buckets=sum(1 for b in chosen if b <= held.last),
            upserts=len(held.upserts),
            deletes=len(held.deletes),
            equal=held.equal,
        )
        self._queue(run, held)
        assert self.remaining is not None
        # Streams that ran to their end covered every chosen bucket, even one neither
        # side has rows in any more (its rows deleted since the summaries).
        kept = [b for b in chosen if b > held.last] if held.stopped else []
        self.remaining = kept + self.remaining[len(chosen) :]

    def _drill_lines(self, run: Run, start: int) -> None:
        """Stream both sides' row lines of every bucket from ``start`` on until enough
        keys differ; where lines do not serve, summaries take the buckets from ``start``.

        The keys read off the lines are checked before any is queued: each must name
        a row with exactly that key on its side (a misread would leave a row unsynced).
        """
        source, target = self.scopes
        assert source.key_parts is not None
        parts = source.key_parts

        def merged(
            theirs: Iterable[tuple[int, list[bytes]]], ours: Iterable[tuple[int, list[bytes]]]
        ) -> Iterator[tuple[int, buckets.Differences]]:
            return buckets.merged_lines(theirs, ours, parts)

        try:
            held = self._held(
                run,
                lambda s: checksum.bucket_lines(s, source, self.buckets, start),
                lambda t: checksum.bucket_lines(t, target, self.buckets, start),
                merged,
                lambda found: sum(map(len, found)) + 64 * len(found),
                LINES_HELD_BATCHES,
            )
            self._check_keys(run, held.upserts, held.deletes)
        except (checksum.LinesTooLong, lines.Unreadable, checksum.LinesMisread) as error:
            log.warning("row_lines_unusable", error=str(error))
            self.lines, self.lines_from = False, None
            self._summaries(start)
            return
        covered = held.last + 1 - start if held.stopped else self.buckets - start
        log.info("buckets_compared", buckets=covered, differing=held.differing, by="lines")
        log.info(
            "buckets_drilled",
            buckets=held.differing,
            upserts=len(held.upserts),
            deletes=len(held.deletes),
            equal=held.equal,
        )
        self._queue(run, held)
        self.lines_from = held.last + 1 if held.stopped else None

    def _check_keys(self, run: Run, upserts: list[Key], deletes: list[Key]) -> None:
        """checksum.LinesMisread unless each key names a row with exactly it: upserts on
        the source, deletes on the target. A batch of keys at a time: the client holds
        the differing keys already, not their rows twice over."""
        plan, job = run.plan, run.job
        size = run.options.batch_size
        for keys, sessions, table, dialect in (
            (upserts, run.dbs.Source, plan.source_table, plan.source_dialect),
            (deletes, run.dbs.Target, plan.target_table, plan.target_dialect),
        ):
            if not keys:
                continue
            with sessions() as session:
                for start in range(0, len(keys), size):
                    chunk = keys[start : start + size]
                    found = store.read_keys(session, table, job.key, job.key, chunk, dialect)
                    missing = set(chunk) - {tuple(row) for row in found}
                    if missing:
                        raise checksum.LinesMisread(f"{len(missing)} keys read off lines not found")

    def _held(
        self,
        run: Run,
        source_stream: Callable[[Session], Iterable[tuple[int, G]]],
        target_stream: Callable[[Session], Iterable[tuple[int, G]]],
        merge: Callable[
            [Iterable[tuple[int, G]], Iterable[tuple[int, G]]],
            Iterator[tuple[int, buckets.Differences]],
        ],
        weight: Callable[[G], int],
        held_batches: int | None = None,
    ) -> _Held:
        """Merge both sides' bucket streams until enough keys differ.

        Each side streams in a worker thread of its own, holding up to
        :data:`AHEAD_BYTES` (by ``weight``): a server that answers first streams ahead
        while the other still sorts, instead of waiting for the merge. The differences
        count only once both streams ended cleanly (a side that failed half way must
        not make its missing buckets look deleted or new).
        """
        stop = threading.Event()
        sides = [
            _Feed(run.dbs.Source, source_stream, stop),
            _Feed(run.dbs.Target, target_stream, stop),
        ]
        cap = (HELD_BATCHES if held_batches is None else held_batches) * run.options.batch_size
        upserts: list[Key] = []
        deletes: list[Key] = []
        equal, last, stopped, differing = 0, -1, False, 0
        try:
            for side in sides:
                side.start(self.workers, weight)
            for bucket, found in merge(sides[0].received(), sides[1].received()):
                upserts += found.upserts
                deletes += found.deletes
                equal, last = equal + found.equal, bucket
                differing += bool(found.upserts or found.deletes)
                if len(upserts) + len(deletes) >= cap:
                    stopped = True
                    break
        except BaseException:
            stop.set()
            for error in [side.wait() for side in sides]:  # no query outlives the attempt
                if error is not None:  # hidden behind the merge's own error otherwise
                    log.warning("bucket_stream_failed", error=describe_error(error))
            raise
        stop.set()
        for error in [side.wait() for side in sides]:
            if error is not None:
                raise error
        return _Held(upserts, deletes, equal, last, stopped, differing)

    def _queue(self, run: Run, held: _Held) -> None:
        """Queue the differing keys in batches; credit the equal rows to the next one."""
        upserts, deletes, equal = held.upserts, held.deletes, held.equal
        if run.job.delete_policy != "propagate":
            deletes = []
        size = run.options.batch_size
        for start in range(0, max(len(upserts), len(deletes)), size):
            self.pending.append(
                _Chunk(upserts[start : start + size], deletes[start : start + size])
            )
        self.credit.add(Counts(rows_read=equal, unchanged=equal))

    def _write(self, run: Run, chunk: _Chunk, isolate: bool, last: bool) -> Counts:
        """Read the chunk's rows by key on both sides, compare, write, record; its counts."""
        plan, job = run.plan, run.job
        with UnitOfWork(run) as uow:
            target = uow.session
            with run.dbs.Source() as source:
                page = store.read_keys(
                    source,
                    plan.source_table,
                    job.columns,
                    job.key,
                    chunk.upserts,
                    plan.source_dialect,
                )
                # A key deleted only if the source still has no identical one.
                present = store.read_keys(
                    source, plan.source_table, job.key, job.key, chunk.deletes, plan.source_dialect
                )
            valid, rejected = rows.check_rows(run, page)
            changes = rows.lookup_changes(run, target, valid, delete_missing=False)
            changes.deletes = missing_keys(chunk.deletes, set(present))
            run.budget.take(len(changes.deletes))
            rejected += rows.apply(run, target, changes, isolate=isolate)
            counts = rows.batch_counts(len(page), changes, rejected)
            counts.add(self.credit)
            following = None if last else Checkpoint(PHASE, (), run.run_id)
            uow.record(counts, rejected, checkpoint=following)
        self.credit = Counts()
        return counts
