"""Range mode with summaries: rows are read only where both servers' hashes differ.

A range (lo, hi] holds ``span`` source keys. Equal summaries (count and checksum) end
it there; otherwise row tokens name the keys whose rows differ, and only those rows
are read from both sides and compared by the usual rules. Ranges grow while they are
unchanged (:mod:`etl.core.policy`), so an unchanged table costs a few dozen queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import structlog
from sqlalchemy.orm import Session

from etl.core import lines
from etl.core.counts import Counts
from etl.core.diff import Changes, Key, Row
from etl.core.lines import LineDifferences
from etl.core.policy import after_differences, grown, whole_table_first
from etl.engine import checksum, rows, state, store
from etl.engine.batches import Batch, Strategy
from etl.engine.run import Run
from etl.engine.strategies.range_rows import PHASE, range_checkpoint
from etl.engine.unit_of_work import Rejected, UnitOfWork
from etl.engine.workers import Ahead, Workers

log = structlog.get_logger("etl.sync")


def usable(run: Run) -> bool:
    """Whether both databases can checksum their rows first.

    Only where both hash rows alike, and only when a source row goes to the target as
    it is: with a transform or a business rule, an unchanged checksum would not prove
    the row need not be checked. An empty target has nothing to compare.
    """
    return sums_first(run) and not run.sizes.target_empty


def sums_first(run: Run) -> bool:
    """Whether a pass into a target that holds rows compares checksums (this strategy,
    or buckets), whose first look is the whole tables' sums."""
    plan, job = run.plan, run.job
    return (
        plan.hashing is not None
        and plan.target_exists
        and job.transform is None
        and job.validate is None
    )


def equal_tables(run: Run, workers: Workers, scopes: tuple[checksum.Scope, ...]) -> int | None:
    """Both tables' rows when their whole-table sums agree; None when they differ, or
    when the job's previous run makes the check not worth it (``whole_table_first``)."""
    previous, stored = None, None
    if run.write:  # a dry run may find no state tables: it creates none
        with run.dbs.Target() as session:
            previous = state.previous_run(session, run.job.name, run.run_id)
            stored = state.load_source_version(session, run.pass_name)
    changed = _source_changed(run, previous, stored)
    if not whole_table_first(previous.counts if previous else None, changed):
        return None
    source, target = scopes
    with run.dbs.Source() as theirs_session, run.dbs.Target() as ours_session:
        route = checksum.checksum_route(theirs_session, ours_session, (source, target))
    theirs, ours = workers.on_both(
        lambda s: checksum.table_summary(s, source, route),
        lambda t: checksum.table_summary(t, target, route),
    )
    log.info("tables_compared", equal=theirs == ours, source_rows=theirs[0])
    if run.budget.count is not None:  # the guard's counts, said by the sums for free
        run.budget.counted(theirs[0], ours[0])
    return theirs[0] if theirs == ours else None


def _source_changed(
    run: Run, previous: state.PreviousRun | None, stored: str | None
) -> bool | None:
    """Whether the source was written to since the previous run started; None: no idea.

    Its write time where the server keeps one, else its write version against the one
    stored by the last succeeded run. Reads the version now, before any row, for this
    run to store: a write after this moment then shows to the next run.
    """
    plan = run.plan
    with run.dbs.Source() as session:
        connection = session.connection()
        if run.write:
            run.source_version = plan.source_dialect.write_version(connection, plan.source_table)
        if previous is None:
            return None
        changed = plan.source_dialect.written_since(
            connection, plan.source_table, previous.started_at
        )
    if changed is None and stored is not None and run.source_version is not None:
        return stored != run.source_version
    return changed


LINES_SPAN = 16384
"""Most keys in a range compared by row lines straight away (after one with changes):
both sides' lines and their sets are held at once, about 0.6 KB a row; as fast as
twice that, with 13 MB less at the peak (1M rows, 1% changed)."""


_Lines = tuple[list[bytes], list[bytes]]
"""Both sides' row lines of one range: the source's, the target's."""


@dataclass(frozen=True)
class _Tokens:
    """What the row tokens (or row lines) of a range showed."""

    hashes: list[str]
    """Key hashes of rows that differ (present on one side, or with other values)."""
    source_rows: int
    target_rows: int
    lines: LineDifferences | None = None
    """Found by row lines instead: the differing keys themselves (no hashes)."""

    @property
    def changed(self) -> int:
        """How many keys differ: what the next range's pace goes by."""
        return len(self.lines.keys) if self.lines is not None else len(self.hashes)


class Checksums:
    """Summaries first, row tokens where they differ, rows only for differing keys."""

    phase = PHASE

    def __init__(self, run: Run, workers: Workers, loads: Strategy) -> None:
        plan, job = run.plan, run.job
        assert plan.hashing is not None
        self.loads = loads
        """How an empty target range is filled (text copy or range rows)."""
        self.workers = workers
        self.scopes = checksum.scopes(plan, job.columns, job.key)
        self.span = run.options.batch_size
        self.dense = False
        self.compared_whole = False
        """The whole tables were compared (at a pass's start, not on resuming one)."""
        self._ahead: Ahead[tuple[Key | None, _Lines | None]] = workers.ahead()
        """The next range's end (and, in a dense stretch, its lines), found meanwhile."""
        self.lines = self.scopes[0].key_parts is not None
        """Differing ranges are compared by row lines (:mod:`etl.core.lines`), until
        a range's lines do not serve (too long, or a key misread): then by tokens."""

    def batch(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        if lo is None and not self.compared_whole:
            self.compared_whole = True
            rows = equal_tables(run, self.workers, self.scopes)
            if rows is not None:
                return self._unchanged(run, None, rows)
        run.budget.count_now()  # the sums said nothing (skipped, or a resumed pass)
        source, target = self.scopes
        hi, read = self._ahead.take(
            (lo, self.span, self.dense and self.lines),
            lambda: (self._find_end(run, lo, self.span), None),
        )
        if hi is not None and self.dense and self.lines:
            # In a dense stretch, the next range's end and lines while this one is
            # compared and written, guessing it keeps its span (a stretch changed evenly
            # does): the source is idle meanwhile, and the target reads a range no
            # write of this batch touches.
            span = self.span
            self._ahead.start((hi, span, True), lambda: self._read_ahead(run, hi, span))
        elif hi is not None and not self.dense:
            # While the summaries run, the next range's end, guessing this one is
            # unchanged (so the next is twice as long): right for every range of an
            # unchanged table; a wrong guess costs an index scan.
            after = grown(self.span, run.options.batch_size)
            self._ahead.start((hi, after, False), lambda: (self._find_end(run, hi, after), None))
        if not self.dense:
            theirs, ours = self.workers.on_both(
                lambda s: checksum.summary(s, source, lo, hi),
                lambda t: checksum.summary(t, target, lo, hi),
            )
            if theirs == ours:
                return self._unchanged(run, hi, theirs[0])
            if ours[0] == 0:
                return self._load(run, lo, isolate)  # nothing there yet: load a batch as it is
        found = self._differing(lo, hi, read)
        if found is not None and found.target_rows == 0 < found.source_rows:
            self.dense = False
            return self._load(run, lo, isolate)
        changed = found.changed if found is not None else self.span
        self.span, self.dense = self._paced(changed, run.options.batch_size)
        if hi is not None and self.dense and self.lines:
            # Dense from here on, or with another span than guessed: read that instead.
            span = self.span
            self._ahead.ensure((hi, span, True), lambda: self._read_ahead(run, hi, span))
        if found is None:
            return self._write(run, lo, hi, 0, None, isolate)
        if found.lines is None:
            return self._write(run, lo, hi, found.source_rows, found.hashes, isolate)
        used = run.budget.used
        try:
            return self._write(run, lo, hi, found.source_rows, None, isolate, found.lines)
        except checksum.LinesMisread as error:
            run.budget.used = used  # its transaction was rolled back
            log.warning("row_lines_unusable", error=str(error))
            self.lines = False
        found = self._differing(lo, hi)  # by tokens, now lines are off
        if found is None:
            return self._write(run, lo, hi, 0, None, isolate)
        return self._write(run, lo, hi, found.source_rows, found.hashes, isolate)

    def _paced(self, changed: int, batch_size: int) -> tuple[int, bool]:
        """The next range's span, and whether it is dense, after ``changed`` differing keys."""
        pace = after_differences(self.span, changed, batch_size)
        if self.lines and pace.dense:
            return min(pace.span, max(LINES_SPAN, batch_size)), True
        return pace.span, pace.dense

    def _read_ahead(self, run: Run, lo: Key, span: int) -> tuple[Key | None, _Lines | None]:
        """The end of the range of ``span`` keys after ``lo``, and both sides' lines of
        it; None for lines that do not serve (the batch meets the reason itself)."""
        hi = self._find_end(run, lo, span)
        try:
            return hi, self._both_lines(lo, hi)
        except checksum.LinesTooLong:
            return hi, None

    def _both_lines(self, lo: Key | None, hi: Key | None) -> _Lines:
        source, target = self.scopes
        return self.workers.on_both(
            lambda s: checksum.row_lines(s, source, lo, hi),
            lambda t: checksum.row_lines(t, target, lo, hi),
        )

    def _find_end(self, run: Run, lo: Key | None, span: int) -> Key | None:
        plan, job = run.plan, run.job
        with run.dbs.Source() as session:
            return store.boundary(
                session, plan.source_table, job.key, lo, span, plan.source_dialect
            )

    def _unchanged(self, run: Run, hi: Key | None, count: int) -> Batch:
        self.span = grown(self.span, run.options.batch_size)
        counts = Counts(rows_read=count, unchanged=count)
        if hi is None and run.write and run.checkpoint_stored:
            with UnitOfWork(run) as uow:
                uow.record(counts, checkpoint=None)
        return Batch(hi, counts, via="checksum")

    def _load(self, run: Run, lo: Key | None, isolate: bool) -> Batch:
        self.span = run.options.batch_size
        return self.loads.batch(run, lo, isolate)

    def _differing(
        self, lo: Key | None, hi: Key | None, read: _Lines | None = None
    ) -> _Tokens | None:
        """Key hashes (or keys) whose rows differ in (lo, hi]; None when the range must
        be read whole. ``read``: both sides' lines of the range, read ahead."""
        source, target = self.scopes
        if self.lines:
            assert source.key_parts is not None
            parts = source.key_parts
            try:
                theirs_lines, ours_lines = read or self._both_lines(lo, hi)
                found = lines.differences(theirs_lines, ours_lines, parts)
                return _Tokens([], len(theirs_lines), len(ours_lines), found)
            except (checksum.LinesTooLong, lines.Unreadable) as error:
                log.warning("row_lines_unusable", error=str(error))
                self.lines = False
        try:
            theirs, ours = self.workers.on_both(
                lambda s: checksum.row_tokens(s, source, lo, hi),
                lambda t: checksum.row_tokens(t, target, lo, hi),
            )
        except checksum.TokensTruncated as error:
            log.warning("row_tokens_truncated", rows=error.rows, tokens=error.tokens)
            return None
        # A token is key hash + row hash: one missing on either side names a key to compare.
        hashes = sorted(checksum.key_hashes(set(theirs).symmetric_difference(ours)))
        return _Tokens(hashes, len(theirs), len(ours))

    def _write(
        self,
        run: Run,
        lo: Key | None,
        hi: Key | None,
        source_rows: int,
        hashes: list[str] | None,
        isolate: bool,
        differing: LineDifferences | None = None,
    ) -> Batch:
        """Compare and write the rows of (lo, hi] with these key hashes, or these keys
        (``differing``); neither: every row.

        Keys go in chunks of a batch, so memory holds a batch's rows however many differ;
        the whole range is still one target transaction with its checkpoint.
        """
        size = run.options.batch_size
        named: list[str] | list[Key] | None = differing.keys if differing is not None else hashes
        chunks: list[list[str] | list[Key] | None] = (
            [None] if named is None else [named[i : i + size] for i in range(0, len(named), size)]
        )
        counts, rejected = Counts(), list[Rejected]()
        with UnitOfWork(run) as uow:
            if len(chunks) == 1:
                counts, rejected = self._chunk(
                    run, uow.session, lo, hi, chunks[0], isolate, differing=differing
                )
            else:
                # A key respelled under the collation ('Anna' for 'anna') has two key hashes
                # that may fall in different chunks: every delete must precede every upsert,
                # or a later chunk's delete would remove the row an earlier chunk upserted.
                for chunk in chunks:
                    deleted = self._chunk(
                        run, uow.session, lo, hi, chunk, isolate, "deletes", differing
                    )
                    counts.add(deleted[0])
                for chunk in chunks:
                    done, refused = self._chunk(
                        run, uow.session, lo, hi, chunk, isolate, "upserts", differing
                    )
                    counts.add(done)
                    rejected += refused
            # Rows outside the differing keys have equal tokens on both sides: unchanged.
            untouched = source_rows - counts.rows_read if named is not None else 0
            counts.rows_read += untouched
            counts.unchanged += untouched
            uow.record(counts, rejected, checkpoint=range_checkpoint(run, hi))
        return Batch(hi, counts, rejected)

    def _chunk(
        self,
        run: Run,
        target: Session,
        lo: Key | None,
        hi: Key | None,
        named: list[str] | list[Key] | None,
        isolate: bool,
        only: str | None = None,
        differing: LineDifferences | None = None,
    ) -> tuple[Counts, list[Rejected]]:
        """One chunk of differing key hashes (or keys, with ``differing``): read both
        sides' rows, diff, validate, write.

        ``only`` writes just the deletes (counting only them) or just the upserts.
        Keys read off lines must each name a row with exactly that key on the side whose
        line it was (checksum.LinesMisread before any write otherwise).
        """
        source_scope, target_scope = self.scopes

        def read(session: Session, scope: checksum.Scope) -> list[Row]:
            if named is None:
                return store.read_range(
                    session, scope.table, scope.columns, scope.key, lo, hi, scope.dialect
                )
            if differing is not None:
                keys = cast(list[Key], named)
                table, columns, key = scope.table, scope.columns, scope.key
                return store.read_keys(session, table, columns, key, keys, scope.dialect)
            return checksum.rows_by_key_hash(session, scope, lo, hi, cast(list[str], named))

        page, current = self.workers.on_both(
            lambda s: read(s, source_scope), lambda t: read(t, target_scope), target=target
        )
        if differing is not None:
            chunk = set(cast(list[Key], named))
            width = run.key_length
            sides = [("source", differing.source, page)]
            if only != "upserts":  # by then the deletes pass removed some target keys
                sides.append(("target", differing.target, current))
            for side, keys, found in sides:
                missing = {k for k in keys if k in chunk} - {row[:width] for row in found}
                if missing:
                    raise checksum.LinesMisread(
                        f"{len(missing)} {side} keys read off lines not found"
                    )
        valid, rejected = rows.check_rows(run, page)
        changes = rows.compare(
            run,
            target,
            valid,
            current,
            rejected,
            delete_missing=run.job.delete_policy == "propagate",
        )
        if only == "deletes":
            changes = Changes(deletes=changes.deletes)
        elif only == "upserts":
            changes.deletes = []  # the deletes pass removed them already
        run.budget.take(len(changes.deletes))
        rejected += rows.apply(run, target, changes, isolate=isolate)
        if only == "deletes":
            return Counts(deleted=len(changes.deletes)), []
        return rows.batch_counts(len(page), changes, rejected), rejected
