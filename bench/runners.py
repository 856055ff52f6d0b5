"""The things being measured: the sync under test and each baseline, one scenario at a time.

Every runner gets a target in a known state, runs, and is then checked against its source.
Baselines always write into a freshly prepared `<prefix>_base` database (`_pbase` on
MariaDB for a PostgreSQL source) so each comparison starts from exactly the state the sync
started from. A pairing is one source kind and one target kind of database: MariaDB to
MariaDB (the original benchmark), MariaDB to PostgreSQL and PostgreSQL to MariaDB.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cross
from bench.datagen import Plan, create_students, load_rows
from bench.measure import Result, RunFailed, RunTimedOut, measure, run_child, tail
from bench.mysqlserver import Server
from bench.pgserver import COLUMNS, TARGET_DDL, PgServer

Side = Server | PgServer

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("initial", "nochange", "change")
BASELINES = ("server", "core", "orm", "pt-table-sync")  # MariaDB -> MariaDB
NO_DELETES = {"server", "core", "orm"}  # upsert-only baselines: deletes are not propagated
PT_INSTALL = "apt-get install -y percona-toolkit"
MM, MP, PM = "mariadb-mariadb", "mariadb-postgresql", "postgresql-mariadb"
PAIRINGS = (MM, MP, PM)
PAIRING_BASELINES = {MM: BASELINES, MP: ("floor", "pgloader"), PM: ("floor",)}
ALL_BASELINES = tuple(dict.fromkeys(b for p in PAIRINGS for b in PAIRING_BASELINES[p]))


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
    server: Side | None = None  # where the source lives; None: the MariaDB server

    @property
    def source(self) -> str:
        return f"{self.source_db}.students"

    @property
    def snapshot(self) -> str:
        return f"{self.aux_db}.{self.name}_s0"


@dataclass(frozen=True)
class Pairing:
    """One source and one target kind: where the sync writes and where its baselines do."""

    name: str
    world: World
    target: Side
    target_db: str  # the sync's persistent target (also holds its etl_* state tables)
    base_db: str  # baselines' target, prepared afresh for each baseline run


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
    pg: PgServer | None = None  # the PostgreSQL server, when a pairing uses one
    databases: dict[str, list[str]] = field(default_factory=dict)  # "mariadb"/"postgresql"

    def side(self, world: World) -> Side:
        """The server a world's source lives on."""
        return world.server or self.server

    def kill_leftovers(self) -> None:
        """After a killed child: end its statements still running on either server."""
        self.server.kill_ours(self.databases.get("mariadb", []))
        if self.pg is not None:
            self.pg.kill_ours(self.databases.get("postgresql", []))


def pt_available() -> bool:
    """Whether percona-toolkit's pt-table-sync is on PATH."""
    return shutil.which("pt-table-sync") is not None


def verify(ctx: Context, world: World, target: str, allow_stale: bool, side: Side | None = None
           ) -> str:  # fmt: skip
    """Compare target with source byte-exactly; raise CheckFailed on any difference.

    With allow_stale, rows deleted from the source may remain in the target (and must be
    exactly the deleted ones): upsert-only baselines cannot do better. `side` is the
    target's server (default: the MariaDB one); across servers both checksums are the
    same function of the row (bench.pgserver.PgServer.checksum).
    """
    server = side or ctx.server
    want = ctx.side(world).checksum(world.source)
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


def child_env(ctx: Context, world: World, target: Side, target_db: str) -> dict[str, str]:
    """Environment for the sync under test."""
    env = dict(os.environ)
    env.update(
        ETL_SOURCE_URL=ctx.side(world).url(world.source_db),
        ETL_TARGET_URL=target.url(target_db),
        ETL_LOG_FORMAT="json",
    )
    return env


def run_sync(ctx: Context, pairing: Pairing, scenario: str) -> Result:
    """`python -m etl run students --batch-size B` into the persistent sync target."""
    cmd = [sys.executable, "-m", "etl", "run", "students", "--batch-size", str(ctx.batch_size)]
    env = child_env(ctx, pairing.world, pairing.target, pairing.target_db)
    log = ctx.logs / pairing.name / f"{scenario}-sync.log"

    def body() -> tuple[float, float | None]:
        child = run_child(cmd, env, log, ctx.timeout_s, ctx.sync_cwd)
        if child.returncode != 0:
            raise RunFailed(f"sync exited {child.returncode}; log: {log}\n{tail(log)}")
        return child.wall_s, child.peak_mb

    result = _measured(ctx, pairing, pairing.world, scenario, "sync", pairing.target_db, body,
                       allow_stale=False)  # fmt: skip
    result.self_reported_s = reported_seconds(log)
    result.mode, result.batches = sync_profile(log)
    return result


def _events(log: Path) -> Iterator[dict[str, Any]]:
    """The sync's JSON log events (other lines skipped)."""
    if not log.exists():
        return
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line) if line.startswith("{") else None
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def sync_profile(log: Path) -> tuple[str | None, dict[str, list[float]]]:
    """The plan mode (run_started) and, per phase/via, batches and their summed seconds.

    `batch_committed` (writing runs) and `batch_compared` (nothing to write) both count.
    """
    mode, batches = None, {}
    for event in _events(log):
        name = event.get("event")
        if name == "run_started":
            mode = event.get("mode", mode)
        elif name in ("batch_committed", "batch_compared"):
            key = f"{event.get('phase')}/{event.get('via')}"
            n, seconds = batches.get(key, [0, 0.0])
            batches[key] = [n + 1, round(seconds + float(event.get("seconds") or 0), 3)]
    return mode, batches


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


def run_baseline(ctx: Context, pairing: Pairing, world: World, scenario: str, runner: str
                 ) -> Result:  # fmt: skip
    """Prepare a fresh baseline target, run one baseline on it, and check it."""
    if pairing.name != MM:
        return run_cross_baseline(ctx, pairing, scenario, runner)
    target = reset_base(ctx, world, scenario)
    body = {
        "server": lambda: _server_body(ctx, world, scenario, target),
        "core": lambda: _python_body(ctx, world, scenario, "core"),
        "orm": lambda: _python_body(ctx, world, scenario, "orm"),
        "pt-table-sync": lambda: _pt_body(ctx, world, scenario),
    }[runner]
    stale = runner in NO_DELETES and scenario == "change"
    return _measured(ctx, pairing, world, scenario, runner, pairing.base_db, body,
                     allow_stale=stale)  # fmt: skip


def run_cross_baseline(ctx: Context, pairing: Pairing, scenario: str, runner: str) -> Result:
    """The floor or pgloader across servers, on a freshly prepared target."""
    world, mysql, pg = pairing.world, ctx.server, ctx.pg
    assert pg is not None
    initial = scenario == "initial"
    base = f"{pairing.base_db}.students"
    reset_cross_base(ctx, pairing, scenario, missing=runner == "pgloader" and initial)
    if runner == "floor" and pairing.name == MP:
        cmd = cross.floor_to_postgresql(mysql, world.source, pg, base, truncate=not initial)
    elif runner == "floor":
        cmd = cross.floor_to_mariadb(pg, world.source, mysql, base, truncate=not initial)
    else:
        workdir = ctx.logs / pairing.name / f"{scenario}-pgloader"
        cmd = cross.pgloader_command(mysql, world.source_db, pg, pairing.base_db, initial, workdir)
    log = ctx.logs / pairing.name / f"{scenario}-{runner}.log"

    def body() -> tuple[float, float]:
        child = run_child(cmd, cross.client_env(mysql, pg), log, ctx.timeout_s, ROOT)
        if child.returncode != 0:
            raise RunFailed(f"{runner} exited {child.returncode}; log: {log}\n{tail(log)}")
        return child.wall_s, child.peak_mb

    return _measured(ctx, pairing, world, scenario, runner, pairing.base_db, body,
                     allow_stale=False)  # fmt: skip


def reset_cross_base(ctx: Context, pairing: Pairing, scenario: str, missing: bool) -> None:
    """The baseline target as the sync found it: no table (`missing`), empty, or pre-change.

    The table is created as the sync creates its own (exact key collation), so the floor
    loads into the same kind of table; pre-change rows come from the plan.
    """
    db, rows = pairing.base_db, pairing.world.plan.rows
    table = f"{db}.students"
    if isinstance(pairing.target, PgServer):
        pg = pairing.target
        pg.drop_databases([db])
        pg.create_database(db)
        if missing:
            return
        pg.create_students(table, TARGET_DDL)
        if scenario != "initial":
            pg.load_rows(table, rows, COLUMNS)
            pg.execute("ANALYZE students", database=db)
        return
    ctx.server.execute(f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
    ctx.server.execute(cross.MARIADB_TARGET_DDL.format(table=table))
    if scenario != "initial":
        load_rows(ctx.server, table, rows, COLUMNS)


def _measured(
    ctx: Context, pairing: Pairing, world: World, scenario: str, runner: str, target_db: str,
    body: Callable[[], tuple[float, float | None]], allow_stale: bool,
) -> Result:  # fmt: skip
    """Run body between counter snapshots, then verify; failures are recorded, not raised."""
    rows = ctx.side(world).checksum(world.source).count
    result = Result(scenario, runner, rows, 0.0, None, None, None, pairing=pairing.name)
    target = pairing.target
    userstat = ctx.userstat or isinstance(target, PgServer)  # pg_stat_user_tables: always
    try:
        wall, peak, handler, written, state = measure(target, target_db, userstat, body)
        result.wall_s, result.peak_mb, result.handler = wall, peak, handler
        result.rows_written, result.state_rows_written = written, state
        result.check = verify(ctx, world, f"{target_db}.students", allow_stale, target)
    except RunTimedOut as exc:
        result.wall_s, result.timed_out = exc.timeout_s, True
        result.check = "TIMEOUT"
        result.note = f"killed after {exc.timeout_s:g}s (--timeout)"
        ctx.failures.append(f"{pairing.name}/{scenario}/{runner}: {result.note}")
        print(f"!! {pairing.name}/{scenario}/{runner} TIMEOUT: {exc}", file=sys.stderr)
        ctx.kill_leftovers()
    except (RunFailed, CheckFailed) as exc:
        result.check = "FAILED"
        result.note = str(exc).splitlines()[0]
        ctx.failures.append(f"{pairing.name}/{scenario}/{runner}: {exc}")
        print(f"!! {pairing.name}/{scenario}/{runner} FAILED: {exc}", file=sys.stderr)
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
    log = ctx.logs / MM / f"{scenario}-{kind}.log"
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
    log = ctx.logs / MM / f"{scenario}-pt-table-sync.log"
    child = run_child(pt_command(ctx, world), os.environ, log, ctx.pt_timeout_s, ROOT)
    if child.returncode not in (0, 2):  # 2 = differences found and synced
        raise RunFailed(f"pt-table-sync exited {child.returncode}; log: {log}\n{tail(log)}")
    return child.wall_s, child.peak_mb
