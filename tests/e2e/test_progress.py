"""The progress bar: shown with rows/s at a terminal, absent when output is not one."""

from __future__ import annotations

import os
import pty
import subprocess
import time

import pytest

from tests.helpers.support import DatabasePair, python_m_etl

ROWS = [(f"P{i:05d}", "x", "c", 1.0) for i in range(3000)]


@pytest.mark.slow
def test_a_terminal_gets_a_progress_bar_with_rows_per_second(lite: DatabasePair) -> None:
    """stderr on a pseudo-terminal: the bar appears and counts rows."""
    lite.create_source(ROWS)
    env = lite.environ(ETL_JOB_STUDENTS_BATCH_SIZE="500", ETL_SYNC_PAUSE_BETWEEN_BATCHES="0.05")
    env["ETL_LOG_FORMAT"] = "console"
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        python_m_etl("run"), env=env, stdout=subprocess.PIPE, stderr=follower, text=True
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    text = output.decode(errors="replace")
    assert "students:" in text  # the bar's label
    assert "rows/s" in text
    assert "/3.00k" in text  # the total, from the source row count
    assert "inserted 3,000" in stdout


def test_no_progress_bar_when_output_is_not_a_terminal(lite: DatabasePair) -> None:
    lite.create_source(ROWS[:10])
    result = subprocess.run(
        python_m_etl("run"),
        env=lite.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "rows/s" not in result.stderr
    assert "\r" not in result.stderr
