"""Run a command, report its wall time and its own peak RSS: `python bench/launch.py OUT CMD...`.

Why a middleman: at exec, Linux folds the RSS high-water mark of the address space being
replaced into the new program's ru_maxrss. A child spawned straight from the harness (which
holds the generated data, ~200 MB at 1M rows) would therefore report at least the harness's
peak. Spawned from this small process instead, the floor is this process's ~10 MB, below
any Python program's own footprint.

Writes "<wall seconds> <peak KiB>" to OUT and exits with the command's exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Spawn, reap with wait4 (rusage of that child alone), record, pass the exit code on."""
    out, cmd = Path(argv[0]), argv[1:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.write_text(f"{wall:.6f} {usage.ru_maxrss}\n", encoding="ascii")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
