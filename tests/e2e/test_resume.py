"""A run killed with SIGKILL mid-way, then rerun: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.helpers.support import DatabasePair, python_m_etl

ROWS = [(f"K{i:04d}", f"L{i % 3}", "C", float(i)) for i in range(400)]


def wait_for_checkpoint(
    pair: DatabasePair, process: subprocess.Popen[str], deadline: float
) -> list[str]:
    """Poll the target until some batches have committed; the checkpoint key."""
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run finished before it could be killed"
        try:
            with pair.engine("target").connect() as connection:
                found = connection.execute(text("SELECT last_key FROM etl_checkpoints")).scalar()
        except Exception:  # the state tables may not exist yet
            found = None
        if found:
            return list(json.loads(found))
        time.sleep(0.05)
    raise AssertionError("no batch committed in time")


@pytest.mark.slow
@pytest.mark.parametrize("pairing", ["maria", "lite"])
def test_sigkill_mid_run_then_rerun_converges_without_duplicates(
    pairing: str, request: pytest.FixtureRequest
) -> None:
    """Kill -9 after some batches; the rerun resumes after the checkpoint and completes."""
    pair: DatabasePair = request.getfixturevalue(pairing)
    pair.create_source(ROWS)
    env = pair.environ(ETL_JOB_STUDENTS_BATCH_SIZE="20", ETL_SYNC_PAUSE_BETWEEN_BATCHES="0.1")
    process = subprocess.Popen(
        python_m_etl("run"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_checkpoint(pair, process, time.monotonic() + 60)
        time.sleep(0.25)  # let it get into the middle of a later batch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    # Whole batches only: the target holds exactly the source rows up to the checkpoint.
    with pair.engine("target").connect() as connection:
        last_key = tuple(
            json.loads(
                connection.execute(text("SELECT last_key FROM etl_checkpoints")).scalar_one()
            )
        )
    partial = pair.rows("target")
    assert 0 < len(partial) < len(ROWS)
    assert partial == [row for row in sorted(ROWS) if row[:2] <= last_key]

    result = pair.run(batch_size=20)
    assert result.status == "succeeded"
    assert result.resumed_from == last_key
    assert result.counts.inserted == len(ROWS) - len(partial)  # nothing written twice
    assert result.counts.unchanged == 0
    assert pair.rows("target") == sorted(ROWS)

    # The next pass starts from the beginning again and finds nothing to do.
    again = pair.run(batch_size=20)
    assert again.resumed_from is None
    assert again.counts.unchanged == len(ROWS)


def test_a_checkpoint_belongs_to_its_pair_of_tables(lite: DatabasePair) -> None:
    """A pass left unfinished on one table is not resumed on another: no rows skipped."""
    from datetime import UTC, datetime

    from etl.core.counts import Checkpoint
    from etl.engine import state

    lite.create_source(ROWS[:100])
    lite.create_source(ROWS[100:150], name="pupils")
    lite.run(batch_size=30)
    with lite.engine("target").begin() as connection:  # the default pair's pass, half done
        state.save_checkpoint(
            Session(bind=connection),
            "students",
            Checkpoint("range", ("K0090", "L0"), "r1"),
            datetime.now(UTC),
        )
    result = lite.run(batch_size=30, source_table="pupils", target_table="pupils")
    assert result.resumed_from is None
    assert lite.rows("target", "pupils") == lite.rows("source", "pupils")
    with lite.engine("target").connect() as connection:
        kept = connection.execute(text("SELECT job FROM etl_checkpoints")).scalars().all()
    assert kept == ["students"]  # the other pair's pass is still there to resume
