"""The row work every strategy shares: check, compare, write, count.

Thin functions on a target session that never commit; the strategy's unit of work
does. Deletes go before upserts (see the note on key spelling in ``etl.core.diff``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from etl.core.counts import Counts
from etl.core.diff import Changes, Key, Row, diff_rows
from etl.engine import store
from etl.engine.db import describe_error
from etl.engine.retry import is_data_error
from etl.engine.run import Run
from etl.engine.unit_of_work import Rejected
from etl.job import Job


def check_rows(run: Run, page: Sequence[Row]) -> tuple[list[Row], list[Rejected]]:
    """Split a page into rows the target can hold and rows set aside with a reason.

    A transform's output is matched to the columns by name. It must leave the key as
    it was: key ranges, checkpoints and deletes all go by the source's key, so a row
    whose key the transform changed is set aside, not written under another key.
    """
    check = run.check
    if check is None:  # no transform or rule, and the source's types guarantee every row fits
        return list(page), []
    valid: list[Row] = []
    rejected: list[Rejected] = []
    for raw in page:
        row, reason = transformed(run.job, raw)
        reason = reason or check(row)
        if reason:
            rejected.append((raw, reason))
        else:
            valid.append(row)
    return valid, rejected


def transformed(job: Job, raw: Row) -> tuple[Row, str | None]:
    """The job's transform of a raw row, by column name; a reason when it is refused."""
    if job.transform is None:
        return raw, None
    out = job.transform(dict(zip(job.columns, raw, strict=True)))
    missing = [name for name in job.columns if name not in out]
    if missing:
        return raw, f"transform returned no value for column {', '.join(missing)}"
    row = tuple(out[name] for name in job.columns)
    changed = [name for name, a, b in zip(job.key, raw, row, strict=False) if a != b]
    if changed:
        return raw, f"transform changed key column {', '.join(changed)}"
    return row, None


def compare(
    run: Run,
    target: Session,
    valid: list[Row],
    current: list[Row],
    rejected: list[Rejected],
    *,
    delete_missing: bool,
) -> Changes:
    """What the target must change so its ``current`` rows equal the ``valid`` source rows."""
    return diff_rows(
        valid,
        current,
        key_length=run.key_length,
        equals=run.plan.equals,
        delete_missing=delete_missing,
        protected=protected_keys(run, target, rejected),
    )


def protected_keys(run: Run, target: Session, rejected: list[Rejected]) -> set[Key]:
    """Keys whose target copy must stay: the rejected rows' keys, as the target spells them.

    A case-insensitive target may hold 'Anna' for a rejected source row 'anna'; only the
    target can say which of its keys equal a rejected one, so it is asked (rejects are
    rare, so this costs nothing on the usual batch).
    """
    keys = {row[: run.key_length] for row, _ in rejected}
    askable = [
        key for key in keys if all(part is not None and "\x00" not in str(part) for part in key)
    ]
    if askable and run.plan.target_exists:
        plan, job = run.plan, run.job
        found = store.read_keys(
            target, plan.target_table, job.key, job.key, askable, plan.target_dialect
        )
        keys.update(tuple(row) for row in found)
    return keys


def lookup_changes(
    run: Run,
    target: Session,
    valid: list[Row],
    *,
    delete_missing: bool,
    protected: Collection[Key] = (),
) -> Changes:
    """Compare rows with the target rows found by their keys: no key range needed."""
    plan, job = run.plan, run.job
    keys = [row[: run.key_length] for row in valid]
    current = (
        store.read_keys(target, plan.target_table, job.columns, job.key, keys, plan.target_dialect)
        if plan.target_exists
        else []
    )
    return diff_rows(
        valid,
        current,
        key_length=run.key_length,
        equals=plan.equals,
        delete_missing=delete_missing,
        protected=protected,
    )


def apply(run: Run, target: Session, changes: Changes, *, isolate: bool) -> list[Rejected]:
    """Deletes first, then inserts and updates; the rows the target refused, with its reason.

    Always none unless ``isolate``, when a refused row no longer fails the whole batch.
    """
    if not run.write:
        return []
    plan, job = run.plan, run.job
    store.delete_keys(target, plan.target_table, job.key, changes.deletes, plan.target_dialect)
    if isolate:
        return _upsert_isolating(run, target, [*changes.inserts, *changes.updates])
    # Inserts are keys this transaction found absent (deleted spellings are gone now).
    dialect = plan.target_dialect
    dialect.insert_new(target, plan.target_table, job.columns, job.key, changes.inserts)
    dialect.upsert(target, plan.target_table, job.columns, job.key, changes.updates)
    return []


def _upsert_isolating(run: Run, target: Session, rows: list[Row]) -> list[Rejected]:
    """Upsert under a savepoint; on a data error split in halves until single rows fail.

    k refused rows among n cost about 2·k·log2(n) statements, and only in the rare
    batch that has them; the good rows still commit with the batch's checkpoint.
    """
    if not rows:
        return []
    plan, job = run.plan, run.job
    try:
        with target.begin_nested():
            plan.target_dialect.upsert(target, plan.target_table, job.columns, job.key, rows)
        return []
    except DBAPIError as error:
        if not is_data_error(error):
            raise
        if len(rows) == 1:
            return [(rows[0], describe_error(error))]
    middle = len(rows) // 2
    return _upsert_isolating(run, target, rows[:middle]) + _upsert_isolating(
        run, target, rows[middle:]
    )


def batch_counts(read: int, changes: Changes, rejected: list[Rejected]) -> Counts:
    """A batch's counts; rows the target refused count as rejected, not written."""
    refused = {id(row) for row, _ in rejected}
    return Counts(
        rows_read=read,
        inserted=sum(1 for row in changes.inserts if id(row) not in refused),
        updated=sum(1 for row in changes.updates if id(row) not in refused),
        deleted=len(changes.deletes),
        unchanged=changes.unchanged,
        rejected=len(rejected),
    )
