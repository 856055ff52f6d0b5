"""The things being measured: the sync under test and each baseline, one scenario at a time.

Every runner gets a target in a known state, runs, and is then checked against its source.
Baselines always write into a freshly prepared `<prefix>_base` database so each comparison
starts from exactly the state the sync started from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.datagen import Plan, create_students
from bench.measure import Result, RunFailed, measure, run_child, tail
from bench.mysqlserver import Server

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("initial", "nochange", "change")
BASELINES = ("server", "core", "orm", "pt-table-sync")
NO_DELETES = {"server", "core", "orm"}  # upsert-only baselines: deletes are not propagated
PT_INSTALL = "apt-get install -y percona-toolkit"


class CheckFailed(AssertionError):
    """Target content differs from the source after a run."""


@dataclass
class World:
    """One source database with its initial snapshot and planned change set."""

    name: str
    source_db: str
    aux_db: str
    plan: Plan
    deleted_table: str | None = None  # set once the change set is applied

    @property
    def source(self) -> str:
        return f"{self.source_db}.students"

    @property
    def snapshot(self) -> str:
        return f"{self.aux_db}.{self.name}_s0"


@dataclass
class Context:
    """Everything a runner needs: server, database names, options, where logs go."""

    server: Server
    target_db: str
    base_db: str
    logs: Path
    batch_size: int
    userstat: bool
    timeout_s: float
    pt_timeout_s: float
    sync_cwd: Path = ROOT  # where `python -m etl` runs: the repo or an exported git ref
    failures: list[str] = field(default_factory=list)


def pt_available() -> bool:
    """Whether percona-toolkit's pt-table-sync is on PATH."""
    return shutil.which("pt-table-sync") is not None


def verify(ctx: Context, world: World, target: str, allow_stale: bool) -> str:
    """Compare target with source byte-exactly; raise CheckFailed on any difference.

    With allow_stale, rows deleted from the source may remain in the target (and must be
    exactly the deleted ones): upsert-only baselines cannot do better.
    """
    server = ctx.server
    want = server.checksum(world.source)
    if allow_stale and world.deleted_table:
        got = server.checksum(target, exclude=world.deleted_table)
        total = server.checksum(target).count
        stale = total - got.count
        expected_stale = len(world.plan.deleted)
        if got == want and stale == expected_stale:
            return f"ok ({stale} deleted rows kept: upsert only)"
        raise CheckFailed(f"{target}: {got} (+{stale} stale) != source {want}")
    got = server.checksum(target)
    if got != want:
        raise CheckFailed(f"{target}: {got} != source {want}")
    return "ok"


def reset_base(ctx: Context, world: World, scenario: str) -> str:
    """Recreate the baseline target: empty for the initial load, else the pre-change source."""
    base = ctx.base_db
    ctx.server.execute(f"DROP DATABASE IF EXISTS {base}", f"CREATE DATABASE {base}")
    table = f"{base}.students"
    create_students(ctx.server, table)
    if scenario != "initial":
        ctx.server.execute(f"INSERT INTO {table} SELECT * FROM {world.snapshot}")
    return table


def child_env(ctx: Context, world: World, target_db: str) -> dict[str, str]:
    """Environment for the sync under test."""
    env = dict(os.environ)
    env.update(
        ETL_SOURCE_URL=ctx.server.url(world.source_db),
        ETL_TARGET_URL=ctx.server.url(target_db),
        ETL_LOG_FORMAT="json",
    )
    return env


def run_sync(ctx: Context, world: World, scenario: str) -> Result:
    """`python -m etl run students --batch-size B` into the persistent sync target."""
    cmd = [sys.executable, "-m", "etl", "run", "students", "--batch-size", str(ctx.batch_size)]
    env = child_env(ctx, world, ctx.target_db)
    log = ctx.logs / f"{scenario}-sync.log"

    def body() -> tuple[float, float | None]:
        child = run_child(cmd, env, log, ctx.timeout_s, ctx.sync_cwd)
        if child.returncode != 0:
            raise RunFailed(f"sync exited {child.returncode}; log: {log}\n{tail(log)}")
        return child.wall_s, child.peak_mb

    result = _measured(ctx, world, scenario, "sync", ctx.target_db, body, allow_stale=False)
    result.self_reported_s = reported_seconds(log)
    return result


def reported_seconds(log: Path) -> float | None:
    """The sync's own duration from its last JSON `run_finished` event.

    Compared with the measured wall time it shows the fixed cost outside the sync's
    timer (interpreter start-up, imports, connecting, schema and state-table setup).
    """
    seconds = None
    if not log.exists():
        return None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"run_finished"' not in line:
            continue
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "run_finished" and "seconds" in event:
                seconds = float(event["seconds"])
    return seconds


def run_baseline(ctx: Context, world: World, scenario: str, runner: str) -> Result:
    """Prepare a fresh baseline target, run one baseline on it, and check it."""
    target = reset_base(ctx, world, scenario)
    body = {
        "server": lambda: _server_body(ctx, world, scenario, target),
        "core": lambda: _python_body(ctx, world, scenario, "core"),
        "orm": lambda: _python_body(ctx, world, scenario, "orm"),
        "pt-table-sync": lambda: _pt_body(ctx, world, scenario),
    }[runner]
    stale = runner in NO_DELETES and scenario == "change"
    return _measured(ctx, world, scenario, runner, ctx.base_db, body, allow_stale=stale)


def _measured(
    ctx: Context, world: World, scenario: str, runner: str, target_db: str,
    body: Callable[[], tuple[float, float | None]], allow_stale: bool,
) -> Result:  # fmt: skip
    """Run body between counter snapshots, then verify; failures are recorded, not raised."""
    rows = ctx.server.checksum(world.source).count
    result = Result(scenario, runner, rows, 0.0, None, None, None)
    try:
        wall, peak, handler, written, state = measure(ctx.server, target_db, ctx.userstat, body)
        result.wall_s, result.peak_mb, result.handler = wall, peak, handler
        result.rows_written, result.state_rows_written = written, state
        result.check = verify(ctx, world, f"{target_db}.students", allow_stale)
    except (RunFailed, CheckFailed) as exc:
        result.check = "FAILED"
        result.note = str(exc).splitlines()[0]
        ctx.failures.append(f"{scenario}/{runner}: {exc}")
        print(f"!! {scenario}/{runner} FAILED: {exc}", file=sys.stderr)
    return result


def _server_body(ctx: Context, world: World, scenario: str, target: str) -> tuple[float, None]:
    """Server-side floor: INSERT ... SELECT (initial) or its ON DUPLICATE KEY UPDATE form."""
    sql = f"INSERT INTO {target} SELECT * FROM {world.source}"
    if scenario != "initial":
        sql += " ON DUPLICATE KEY UPDATE course = VALUES(course), score = VALUES(score)"
    with ctx.server.session() as conn, conn.cursor() as cur:
        start = time.perf_counter()
        cur.execute(sql)
        return time.perf_counter() - start, None


def _python_body(ctx: Context, world: World, scenario: str, kind: str) -> tuple[float, float]:
    """A Python baseline (bench.baselines) as a measured child process."""
    cmd = [
        sys.executable, "-m", "bench.baselines", kind,
        ctx.server.url(world.source_db), ctx.server.url(ctx.base_db),
    ]  # fmt: skip
    log = ctx.logs / f"{scenario}-{kind}.log"
    child = run_child(cmd, os.environ, log, ctx.timeout_s, ROOT)
    if child.returncode != 0:
        raise RunFailed(f"{kind} baseline exited {child.returncode}; log: {log}\n{tail(log)}")
    return child.wall_s, child.peak_mb


def pt_command(ctx: Context, world: World) -> list[str]:
    """pt-table-sync between two databases of one server.

    Two DSNs and no --replicate/--sync-to-master: the first is the source, the second the
    destination, which is changed directly. Parts missing from the second DSN (host, port,
    user, password) are copied from the first.
    """
    server = ctx.server
    dsn = f"h={server.host},P={server.port},u={server.user}"
    if server.password:
        dsn += f",p={server.password}"
    return [
        "pt-table-sync", "--execute", "--verbose", "--charset=utf8mb4",
        f"{dsn},D={world.source_db},t=students", f"D={ctx.base_db},t=students",
    ]  # fmt: skip


def _pt_body(ctx: Context, world: World, scenario: str) -> tuple[float, float]:
    """pt-table-sync as a measured child process."""
    log = ctx.logs / f"{scenario}-pt-table-sync.log"
    child = run_child(pt_command(ctx, world), os.environ, log, ctx.pt_timeout_s, ROOT)
    if child.returncode not in (0, 2):  # 2 = differences found and synced
        raise RunFailed(f"pt-table-sync exited {child.returncode}; log: {log}\n{tail(log)}")
    return child.wall_s, child.peak_mb
