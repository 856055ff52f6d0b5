"""Benchmark harness entry point: `python -m bench [options]` (see bench/README.md).

Creates uniquely named databases, generates the data, runs the sync under test and the
baselines through three scenarios, checks every target against its source, prints a table,
writes JSON, and always drops its databases and restores any server setting it changed.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import report, synccode
from bench.datagen import apply_changes, load_initial, make_plan
from bench.measure import Result, kill_current_child
from bench.mysqlserver import Server
from bench.runners import (
    BASELINES,
    PT_INSTALL,
    ROOT,
    SCENARIOS,
    Context,
    World,
    pt_available,
    run_baseline,
    run_sync,
)

RESULTS = ROOT / "bench" / "results"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000, help="students in the source")
    p.add_argument("--orm-rows", type=int, default=20_000, help="rows for the ORM baseline")
    p.add_argument("--batch-size", type=int, default=5000, help="passed to the sync CLI")
    p.add_argument("--seed", type=int, default=42, help="data generation seed")
    p.add_argument("--only", choices=["all", "baselines", "sync"], default="all")
    p.add_argument(
        "--skip",
        default="",
        help=f"baselines to skip, comma list of RUNNER or RUNNER@SCENARIO; runners: {BASELINES}",
    )
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="JSON output")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", default="root")
    p.add_argument("--password", default=os.environ.get("BENCH_MYSQL_PASSWORD", ""))
    p.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=2048,
        help="innodb_buffer_pool_size for the run, restored afterwards; 0 = leave",
    )
    p.add_argument(
        "--no-userstat",
        action="store_true",
        help="don't enable userstat (then no per-table rows-written figures)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="per sync/python run, seconds")
    p.add_argument("--pt-timeout", type=float, default=1800, help="per pt-table-sync run")
    p.add_argument(
        "--lock-wait",
        type=float,
        default=3600,
        help="seconds to wait for another benchmark run on the same server to finish",
    )
    p.add_argument(
        "--sync-ref",
        help="measure the sync as committed at this git ref (e.g. HEAD), not the working tree",
    )
    p.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    return p.parse_args(argv)


@dataclass(frozen=True)
class Names:
    """Unique database names for this run."""

    prefix: str

    @classmethod
    def fresh(cls) -> Names:
        return cls(f"bench_{datetime.now(UTC):%Y%m%d_%H%M%S}_{os.getpid()}")

    def __getattr__(self, part: str) -> str:
        if part in ("src", "tgt", "base", "aux", "osrc"):
            return f"{self.prefix}_{part}"
        raise AttributeError(part)

    def all(self) -> list[str]:
        return [self.src, self.tgt, self.base, self.aux, self.osrc]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so the cleanup path runs."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def server_settings(server: Server, args: argparse.Namespace) -> Iterator[bool]:
    """Temporarily raise the buffer pool and enable userstat; always restore both.

    Yields whether per-table write counters (userstat) are available.
    """
    pool = int(server.scalar("SELECT @@innodb_buffer_pool_size"))
    userstat = bool(int(server.scalar("SELECT @@userstat")))
    want_pool = args.buffer_pool_mb * 1024 * 1024
    try:
        if args.buffer_pool_mb and want_pool != pool:
            print(f"== innodb_buffer_pool_size {pool >> 20} MB -> {args.buffer_pool_mb} MB")
            server.resize_buffer_pool(want_pool)
        if not userstat and not args.no_userstat:
            server.set_global("userstat", "ON")
        yield userstat or not args.no_userstat
    finally:
        if not userstat and not args.no_userstat:
            server.set_global("userstat", "OFF")
        if args.buffer_pool_mb and want_pool != pool:
            print(f"== restoring innodb_buffer_pool_size to {pool >> 20} MB")
            server.resize_buffer_pool(pool)


def setup(server: Server, names: Names, args: argparse.Namespace) -> tuple[World, World]:
    """Create databases and load the main and the (small) ORM source."""
    for db in names.all():
        server.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    worlds = []
    for name, db, rows in (("main", names.src, args.rows), ("orm", names.osrc, args.orm_rows)):
        start = time.perf_counter()
        plan = make_plan(rows, args.seed)
        world = World(name, db, names.aux, plan)
        load_initial(server, plan, world.source, world.snapshot)
        print(f"== generated {rows:,} {name} rows in {time.perf_counter() - start:.1f}s")
        worlds.append(world)
    return worlds[0], worlds[1]


def run_scenarios(ctx: Context, main: World, orm: World, args: argparse.Namespace) -> list[Result]:
    """Scenario by scenario: the sync first, then each baseline on a fresh target."""
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    baselines = [] if args.only == "sync" else [b for b in BASELINES if b not in skip]
    if "pt-table-sync" in baselines and not pt_available():
        print(f"== pt-table-sync not installed (`{PT_INSTALL}`): that baseline is skipped")
        baselines.remove("pt-table-sync")
    results: list[Result] = []
    for scenario in SCENARIOS:
        if scenario == "change":
            for world in (main, orm):
                world.deleted_table = apply_changes(
                    ctx.server, world.plan, world.source, f"{world.aux_db}.{world.name}"
                )
        print(f"== scenario {scenario}")
        if args.only != "baselines":
            results.append(_show(run_sync(ctx, main, scenario)))
        for runner in baselines:
            if f"{runner}@{scenario}" in skip:
                continue
            world = orm if runner == "orm" else main
            results.append(_show(run_baseline(ctx, world, scenario, runner)))
    return results


def _show(res: Result) -> Result:
    """Progress line per finished run."""
    own = f" (own timer {res.self_reported_s:.2f}s)" if res.self_reported_s is not None else ""
    rate = f"{res.rows_per_s:>12,.0f} rows/s"
    print(f"   {res.runner:<14} {res.wall_s:8.2f}s {rate}  {res.check}{own}")
    return res


def meta(server: Server, args: argparse.Namespace, names: Names) -> dict[str, Any]:
    """Run conditions for the JSON and the README's 'latest figures'."""
    pt = subprocess.run(["pt-table-sync", "--version"], capture_output=True, text=True,
                        check=False).stdout.strip() if pt_available() else None  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows, "orm_rows": args.orm_rows, "batch_size": args.batch_size,
        "seed": args.seed, "only": args.only, "databases": names.prefix,
        "nproc": os.cpu_count(), "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "mariadb": server.scalar("SELECT VERSION()"),
        "buffer_pool_mb": int(server.scalar("SELECT @@innodb_buffer_pool_size")) >> 20,
        "python": platform.python_version(), "pt_table_sync": pt,
        "sync_code": synccode.describe(args.sync_ref) if args.only != "baselines" else None,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }  # fmt: skip


def cleanup(server: Server, names: Names, keep: bool) -> None:
    """Stop our child and our server statements, then drop every database we created."""
    kill_current_child()
    if keep:
        print(f"== kept databases {names.prefix}_*")
        return
    server.kill_ours(names.all())
    for db in names.all():
        server.execute(f"DROP DATABASE IF EXISTS {db}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; exit 1 if any run or check failed, 2 on bad usage, 130 if stopped."""
    try:
        return _main(parse_args(argv))
    except KeyboardInterrupt as exc:
        print(f"\n== interrupted ({exc or 'Ctrl-C'}); cleaned up")
        return 130
    except TimeoutError as exc:
        print(f"== {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    """The run proper; cleanup happens in its finally blocks, before any interrupt escapes."""
    if args.only != "baselines" and not synccode.has_cli(args.sync_ref):
        print("etl CLI not found (etl/__main__.py); use `--only baselines`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # also when started with SIGINT ignored (&)
    server = Server(args.host, args.port, args.user, args.password)
    names = Names.fresh()
    logs = RESULTS / "logs" / names.prefix
    print(f"== databases {names.prefix}_*, logs in {logs}")
    with (
        synccode.checkout(args.sync_ref) as sync_cwd,
        server.exclusive("etl_bench_harness", args.lock_wait),
        server_settings(server, args) as userstat,
    ):
        try:
            main_world, orm_world = setup(server, names, args)
            ctx = Context(server, names.tgt, names.base, logs, args.batch_size, userstat,
                          args.timeout, args.pt_timeout, sync_cwd)  # fmt: skip
            results = run_scenarios(ctx, main_world, orm_world, args)
            info = meta(server, args, names)
        finally:
            cleanup(server, names, args.keep)
    ratio = report.ratios(results)
    found = report.targets(results, ratio)
    print()
    print(report.table(results, ratio))
    print()
    print(report.verdicts(found))
    report.write_json(args.json, info, results, ratio, found)
    print(f"\n== wrote {args.json}")
    for failure in ctx.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if ctx.failures else 0
