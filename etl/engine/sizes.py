"""How many rows both tables hold as a full run starts, counted only where that matters.

A count is a scan of the whole key index on each side (about 0.5 s per million rows).
Only the mass-delete guard needs exact numbers, and only when it can refuse something:
the job deletes, the operator did not lift the limit, and the target holds rows. Else
the servers' statistics stand in (a progress bar's total, how many buckets to hash),
and a database that keeps none is counted as before.

Even a guarded run need not count first: where the pass compares checksums (range
checksums or buckets), its first look is the whole tables' sums, which count both
sides anyway; the guard takes their counts. Only where that look is skipped (the
source says it was written to since, or a pass resumes) are the two counts taken, at
that moment, still before anything is written and beside no open transaction.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from etl.core.counts import TableSizes
from etl.dialects import Dialect
from etl.engine import store
from etl.engine.run import Run
from etl.engine.strategies import checksums


def guarded(run: Run) -> bool:
    """Whether the mass-delete guard can refuse this run's deletes."""
    return not (run.options.allow_mass_delete or run.job.delete_policy == "keep")


def deferred(run: Run) -> bool:
    """Whether the guard's exact counts wait for the pass's first look (the module's
    note): a guarded run whose pass compares checksums."""
    return guarded(run) and checksums.sums_first(run)


def count_both(run: Run) -> tuple[int, int]:
    """Both tables' exact rows now (source, target): two index scans at once."""
    found = _counted(run)
    return found.source_rows, found.target_rows


def measure(run: Run) -> TableSizes:
    """Both tables' rows: exact when the guard needs them now (see the module's note)."""
    plan, dbs = run.plan, run.dbs
    if plan.target_exists:
        with dbs.Target() as session:
            empty = not store.has_rows(session, plan.target_table)
    else:
        empty = True
    if empty:
        # Nothing to delete from: the guard passes whatever the source holds.
        source = _estimate(dbs.Source, plan.source_table, plan.source_dialect)
        return TableSizes(source[0], 0, target_empty=True, exact=source[1])
    if not guarded(run) or deferred(run):
        source = _estimate(dbs.Source, plan.source_table, plan.source_dialect)
        theirs = _estimate(dbs.Target, plan.target_table, plan.target_dialect)
        return TableSizes(source[0], theirs[0], target_empty=False, exact=source[1] and theirs[1])
    return _counted(run)


def _counted(run: Run) -> TableSizes:
    """Both exact counts, the source's in a thread: two index scans at once."""
    plan, dbs = run.plan, run.dbs

    def count_source() -> int:
        with dbs.Source() as source:
            return store.count_rows(source, plan.source_table)

    counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-count")
    source_count = counting.submit(count_source)
    counting.shutdown(wait=False)
    with dbs.Target() as target:
        target_rows = store.count_rows(target, plan.target_table)
    return TableSizes(source_count.result(), target_rows, target_empty=target_rows == 0)


def _estimate(sessions: sessionmaker[Session], table: Table, dialect: Dialect) -> tuple[int, bool]:
    """The table's rows from statistics, else counted; and whether that is a count.

    A filtered table is always counted: statistics know the whole table only.
    """
    with sessions() as session:
        if not store.row_filter(table):
            found = dialect.estimated_rows(session.connection(), table.name)
            if found is not None:
                return found, False
        return store.count_rows(session, table), True
