"""Prove the target equals the source, key range by key range, without copying the tables.

When both sides are the same kind of database and order keys alike (range mode), each
database computes a row count and a checksum of every range of ``page_size`` source
keys; only the ranges whose summaries differ are read and compared row by row. A
checksum can differ where the rows are equal (a float stored at another precision,
a different column type), never the other way round short of a hash collision, so
the drill-down decides: it compares rows with the sync's own rules (exact keys,
float tolerance), and verify therefore agrees with a full row-by-row comparison.

Across kinds of database the servers' own checksums cannot agree (each prints values
its own way); a normalised text both print alike serves instead where the columns
allow (strings, integers, floats, dates, decimals of one scale), and otherwise each
range is streamed from both sides. In lookup mode (the sides order keys differently)
both servers first summarise the whole table (count and checksum, as a single bucket
of exact keys); only when they differ are source pages looked up on the target and
target keys on the source, exactly as the sync does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Table
from sqlalchemy.orm import Session

from etl.config import DriftPolicy
from etl.core.diff import Key, Row, diff_rows, missing_keys
from etl.dialects import Dialect
from etl.engine import checksum, store
from etl.engine.db import Databases
from etl.engine.plan import Plan, make_plan
from etl.engine.rows import transformed
from etl.job import Job

Kind = Literal["missing", "extra", "changed"]
"""``missing``: in the source only; ``extra``: in the target only; ``changed``: values differ."""


@dataclass(frozen=True)
class Difference:
    """One key on which the two sides disagree."""

    kind: Kind
    key: Key


@dataclass
class Report:
    """What verify found for one job."""

    job: str
    mode: str
    limit: int
    """How many differences are kept in :attr:`differences` (all are counted)."""
    source_rows: int = 0
    target_rows: int = 0
    ranges: int = 0
    ranges_compared: int = 0
    """Ranges read row by row (checksums differed, or none could be computed)."""
    counts: dict[str, int] = field(default_factory=lambda: {"missing": 0, "extra": 0, "changed": 0})
    differences: list[Difference] = field(default_factory=list)

    @property
    def drift(self) -> int:
        """How many keys differ in all."""
        return sum(self.counts.values())

    def add(self, kind: Kind, keys: Sequence[Key]) -> None:
        """Count differing keys, keeping the first ``limit``."""
        self.counts[kind] += len(keys)
        room = self.limit - len(self.differences)
        self.differences.extend(Difference(kind, key) for key in keys[: max(room, 0)])


def verify_job(
    job: Job,
    dbs: Databases,
    *,
    page_size: int = 5000,
    limit: int = 100,
    source_table: str | None = None,
    target_table: str | None = None,
    schema_drift: DriftPolicy | None = None,
) -> Report:
    """Compare the job's table on both sides; ConfigError if the setup is wrong.

    With ``schema_drift``, columns that moved are judged as a run would judge them
    (``freeze`` refuses, ``evolve`` compares the columns as the source has them now),
    except that no table is altered.
    """
    plan = make_plan(
        job,
        dbs.source_engine,
        dbs.target_engine,
        source_name=source_table,
        target_name=target_table,
        create=False,
        schema_drift=schema_drift,
    )
    report = Report(job.name, plan.mode, limit)
    checker = _Checker(job, dbs, plan, page_size, report)
    if plan.mode == "range" or not plan.target_exists:
        checker.ranges()
    else:
        checker.lookups()
    return report


@dataclass
class _Checker:
    job: Job
    dbs: Databases
    plan: Plan
    page_size: int
    report: Report

    @property
    def key_length(self) -> int:
        return len(self.job.key)

    def ranges(self) -> None:
        """Range mode: summaries per range of source keys, rows only where they differ."""
        lo: Key | None = None
        while True:
            with self.dbs.Source() as source:
                plan = self.plan
                hi = store.boundary(
                    source, plan.source_table, self.job.key, lo, self.page_size, plan.source_dialect
                )
            self.report.ranges += 1
            if not self._summaries_agree(lo, hi):
                self._compare_range(lo, hi)
            if hi is None:
                return
            lo = hi

    def _summaries_agree(self, lo: Key | None, hi: Key | None) -> bool:
        plan = self.plan
        if plan.hashing is None or self.job.transform or not plan.target_exists:
            return False
        with self.dbs.Source() as source, self.dbs.Target() as target:
            theirs = checksum.summary(source, self._scope("source"), lo, hi)
            ours = checksum.summary(target, self._scope("target"), lo, hi)
        if theirs != ours:
            return False
        self.report.source_rows += theirs[0]
        self.report.target_rows += ours[0]
        return True

    def _scope(self, role: str) -> checksum.Scope:
        source, target = checksum.scopes(self.plan, self.job.columns, self.job.key)
        return source if role == "source" else target

    def _compare_range(self, lo: Key | None, hi: Key | None) -> None:
        plan, job = self.plan, self.job
        self.report.ranges_compared += 1
        with self.dbs.Source() as source:
            theirs = store.read_range(
                source, plan.source_table, job.columns, job.key, lo, hi, plan.source_dialect
            )
        ours: list[Row] = []
        if plan.target_exists:
            with self.dbs.Target() as target:
                ours = store.read_range(
                    target, plan.target_table, job.columns, job.key, lo, hi, plan.target_dialect
                )
        self._compare(self._transformed(theirs), ours, complete=True)

    def lookups(self) -> None:
        """Lookup mode: source pages found by key on the target, then target keys on the source."""
        if self._tables_agree():
            return
        plan, job = self.plan, self.job
        source_pages = _pages(self.dbs.Source, plan.source_table, job.columns, self._read("source"))
        for page in source_pages:
            self.report.ranges += 1
            self.report.ranges_compared += 1
            rows = self._transformed(page)
            with self.dbs.Target() as target:
                keys = [row[: self.key_length] for row in rows]
                ours = store.read_keys(
                    target, plan.target_table, job.columns, job.key, keys, plan.target_dialect
                )
            self._compare(rows, ours, complete=False)
        for keys in _pages(self.dbs.Target, plan.target_table, job.key, self._read("target")):
            self.report.target_rows += len(keys)
            with self.dbs.Source() as source:
                found = store.read_keys(
                    source, plan.source_table, job.key, job.key, keys, plan.source_dialect
                )
            # Only an identical key counts: the source may call 'anna' and 'Anna' equal.
            self.report.add("extra", missing_keys(keys, set(found)))

    def _tables_agree(self) -> bool:
        """Whether both servers' whole-table summaries agree (lookup mode's first look)."""
        if self.plan.hashing is None or self.job.transform:
            return False
        source, target = checksum.scopes(self.plan, self.job.columns, self.job.key)
        with self.dbs.Source() as theirs, self.dbs.Target() as ours:
            route = checksum.checksum_route(theirs, ours, (source, target))
            summaries = (
                checksum.table_summary(theirs, source, route),
                checksum.table_summary(ours, target, route),
            )
        if summaries[0] != summaries[1]:
            return False
        rows = summaries[0][0]
        self.report.ranges += 1
        self.report.source_rows, self.report.target_rows = rows, rows
        return True

    def _compare(self, theirs: list[Row], ours: list[Row], *, complete: bool) -> None:
        """Compare rows by exact key; ``complete``: ``ours`` is the whole range."""
        # A case-insensitive target may return 'anna' for 'Anna': not the same key.
        keys = {row[: self.key_length] for row in theirs}
        matching = [row for row in ours if complete or row[: self.key_length] in keys]
        changes = diff_rows(
            theirs,
            matching,
            key_length=self.key_length,
            equals=self.plan.equals,
            delete_missing=complete,
        )
        self.report.source_rows += len(theirs)
        if complete:
            self.report.target_rows += len(ours)
        self.report.add("missing", [row[: self.key_length] for row in changes.inserts])
        self.report.add("changed", [row[: self.key_length] for row in changes.updates])
        self.report.add("extra", changes.deletes)

    def _read(self, role: str) -> _Paging:
        dialect = self.plan.source_dialect if role == "source" else self.plan.target_dialect
        return _Paging(self.job.key, self.page_size, dialect)

    def _transformed(self, rows: list[Row]) -> list[Row]:
        """Source rows as the sync writes them; a row it would refuse stays as it is."""
        if self.job.transform is None:
            return rows
        return [transformed(self.job, row)[0] for row in rows]


@dataclass(frozen=True)
class _Paging:
    key: Sequence[str]
    size: int
    dialect: Dialect


def _pages(
    sessions: Callable[[], Session], table: Table, columns: Sequence[str], paging: _Paging
) -> Iterator[list[Row]]:
    """Pages of ``columns`` in key order, each read in its own short transaction."""
    lo: Key | None = None
    while True:
        with sessions() as session:
            page = store.read_page(
                session, table, columns, paging.key, lo, paging.size, paging.dialect
            )
        if page:
            yield page
        if len(page) < paging.size:
            return
        lo = page[-1][: len(paging.key)]


def describe(report: Report) -> list[str]:
    """The lines ``etl verify`` prints: differing keys (up to the limit), then a summary."""
    lines = [f"{d.kind:<8} {list(d.key)}" for d in report.differences]
    if report.drift > len(report.differences):
        lines.append(f"... and {report.drift - len(report.differences)} more")
    counts = report.counts
    verdict = (
        f"{report.drift} keys differ ({counts['missing']} missing from the target, "
        f"{counts['extra']} only in the target, {counts['changed']} changed)"
        if report.drift
        else "no drift"
    )
    lines.append(
        f"verify {report.job}: {verdict}; source {report.source_rows} rows, target "
        f"{report.target_rows} rows; {report.ranges_compared} of {report.ranges} key ranges "
        f"compared row by row ({report.mode} mode)"
    )
    return lines
