"""Property: whatever both sides hold and wherever runs stop short, sync then verify converges."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import BatchDone, SyncOptions
from etl.engine.verify import verify_job
from jobs.students import JOB
from tests.helpers.support import DatabasePair, drop_all_tables
from tests.integration.test_verify import naive

# Spellings that collations treat as equal, or that sort differently per database.
AWKWARD = [
    "anna",
    "Anna",
    "ANNA",
    "anna ",
    " anna",
    "Ånna",
    "straße",
    "STRASSE",
    "İ",
    "i̇",
    "é",
    "é",
    "😀",
    "😁",
    "名前",
    "",
    " ",
    "x" * 50,
    "ẞ" * 50,
]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=50,
)
NAME = st.one_of(st.sampled_from(AWKWARD), TEXT)
ROW = st.tuples(
    NAME,
    NAME,
    st.one_of(st.none(), TEXT),
    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, width=32)),
)
ROWS = st.lists(ROW, max_size=25)


class Crash(Exception):
    """Stands in for a process dying right after a batch committed."""


def fill(dbs: DatabasePair, rows: list[tuple[object, ...]]) -> None:
    """Insert row by row; a key the source's collation calls a duplicate is skipped."""
    for row in {row[:2]: row for row in rows}.values():
        with contextlib.suppress(IntegrityError):
            dbs.insert("source", [row])


def crash_after(batches: int, how: str, stop: threading.Event) -> Callable[[BatchDone], None]:
    seen = [0]

    def hook(_: BatchDone) -> None:
        seen[0] += 1
        if seen[0] == batches:
            if how == "stop":
                stop.set()
            else:
                raise Crash(f"crashed after batch {batches}")

    return hook


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=ROWS,
    after=ROWS,
    target_deletes=st.integers(0, 5),
    batch_size=st.integers(1, 6),
    crashes=st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["stop", "error"])), max_size=3),
)
def test_sync_then_verify_converges_whatever_the_crashes(
    dbs: DatabasePair,
    before: list[tuple[object, ...]],
    after: list[tuple[object, ...]],
    target_deletes: int,
    batch_size: int,
    crashes: list[tuple[int, str]],
) -> None:
    """Random contents, hand edits and crash points: the last run leaves no drift, no duplicate."""
    dbs.dispose()
    for url in (dbs.source_url, dbs.target_url):
        drop_all_tables(url)
    dbs.create_source()
    fill(dbs, before)
    assert dbs.run(batch_size=batch_size).status in ("succeeded", "refused")
    dbs.execute("source", "DELETE FROM students")
    fill(dbs, after)
    for key in dbs.rows("target")[:target_deletes]:
        dbs.execute(
            "target",
            "DELETE FROM students WHERE first_name = :f AND last_name = :l",
            f=key[0],
            l=key[1],
        )

    databases = make_databases(dbs.settings())
    options = SyncOptions(batch_size=batch_size, allow_mass_delete=True)
    try:
        for batches, how in crashes:
            stop = threading.Event()
            result = run_job(
                JOB, databases, options, stop=stop, on_batch=crash_after(batches, how, stop)
            )
            assert result.status in ("succeeded", "interrupted", "failed")
            if result.status == "failed":
                assert "Crash" in (result.error or "")
        final = run_job(JOB, databases, options)
        report = verify_job(JOB, databases, page_size=3, limit=10_000)
    finally:
        databases.dispose()

    assert final.status == "succeeded", final.error
    assert report.drift == 0, report.differences
    assert naive(dbs) == set()
    target = dbs.rows("target")
    assert len(target) == len({row[:2] for row in target}) == len(dbs.rows("source"))
