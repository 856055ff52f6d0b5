"""Benchmark harness entry point: `python -m bench [options]` (see bench/README.md).

Creates uniquely named databases (on MariaDB, and on PostgreSQL for the cross-dialect
pairings), generates the data, runs the sync under test and the baselines through three
scenarios per pairing, checks every target against its source, prints a table per pairing,
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

from bench import cross, report, synccode
from bench.datagen import Plan, apply_changes, load_initial, make_plan
from bench.measure import Result, kill_current_child
from bench.mysqlserver import Server
from bench.pgserver import PgServer
from bench.runners import (
    ALL_BASELINES,
    MM,
    MP,
    PAIRING_BASELINES,
    PAIRINGS,
    PM,
    PT_INSTALL,
    ROOT,
    SCENARIOS,
    Context,
    Pairing,
    World,
    pt_available,
    run_baseline,
    run_sync,
)

RESULTS = ROOT / "bench" / "results"


def count(text: str) -> int:
    """A row count: 300000, 300k, 10M, 1_000_000."""
    text = text.strip().replace("_", "").lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        value = int(float(text[:-1]) * scale) if scale > 1 else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a row count: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("row count must be positive")
    return value


def pairings(text: str) -> list[str]:
    """Comma list of pairings, in canonical order; `all` for every one."""
    wanted = {p.strip() for p in text.split(",") if p.strip()}
    if "all" in wanted:
        return list(PAIRINGS)
    unknown = wanted - set(PAIRINGS)
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"pairings are {', '.join(PAIRINGS)} (or all)")
    return [p for p in PAIRINGS if p in wanted]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--rows", type=count, default=1_000_000, help="students in the source (300k, 10M ok)"
    )
    p.add_argument(
        "--pairings",
        type=pairings,
        default=list(PAIRINGS),
        help=f"source-target comma list, default all: {','.join(PAIRINGS)}",
    )
    p.add_argument("--orm-rows", type=int, default=20_000, help="rows for the ORM baseline")
    p.add_argument("--batch-size", type=int, default=5000, help="passed to the sync CLI")
    p.add_argument("--seed", type=int, default=42, help="data generation seed")
    p.add_argument("--only", choices=["all", "baselines", "sync"], default="all")
    p.add_argument(
        "--skip",
        default="",
        help="baselines to skip, comma list of RUNNER or RUNNER@SCENARIO; runners: "
        + ", ".join(ALL_BASELINES),
    )
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="JSON output")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", default="root")
    p.add_argument("--password", default=os.environ.get("BENCH_MYSQL_PASSWORD", ""))
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-password", default=os.environ.get("BENCH_PG_PASSWORD", ""))
    p.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=None,
        help="innodb_buffer_pool_size for the run, restored afterwards; 0 = leave; default"
        " 2048, or ~600 bytes a row past 3.4M rows (at most half the RAM)",
    )
    p.add_argument(
        "--no-userstat",
        action="store_true",
        help="don't enable userstat (then no per-table rows-written figures)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="per run of the sync, a Python baseline, a floor or pgloader, seconds: a run"
        " still going then is killed and reported as TIMEOUT (its time a lower bound)",
    )
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
    args = p.parse_args(argv)
    if args.buffer_pool_mb is None:
        ram_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
        args.buffer_pool_mb = max(2048, min(args.rows * 600 >> 20, ram_mb // 2))
    return args


@dataclass(frozen=True)
class Names:
    """Unique database names for this run."""

    prefix: str

    @classmethod
    def fresh(cls) -> Names:
        return cls(f"bench_{datetime.now(UTC):%Y%m%d_%H%M%S}_{os.getpid()}")

    def __getattr__(self, part: str) -> str:
        if part in ("src", "tgt", "base", "aux", "osrc", "ptgt", "pbase"):
            return f"{self.prefix}_{part}"
        raise AttributeError(part)

    def all(self) -> list[str]:
        """On MariaDB (`ptgt`, `pbase`: the targets of a PostgreSQL source)."""
        return [self.src, self.tgt, self.base, self.aux, self.osrc, self.ptgt, self.pbase]

    def postgresql(self) -> list[str]:
        """On PostgreSQL: same names, another server (`tgt`, `base`: MariaDB source's)."""
        return [self.src, self.tgt, self.base, self.aux]


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


@dataclass
class Worlds:
    """The sources: MariaDB main and ORM (when a pairing reads MariaDB), PostgreSQL main."""

    main: World | None = None
    orm: World | None = None
    pg: World | None = None

    def all(self) -> list[World]:
        return [w for w in (self.main, self.orm, self.pg) if w is not None]


def setup(server: Server, pg: PgServer | None, names: Names, args: argparse.Namespace) -> Worlds:
    """Create databases and load the sources the selected pairings read."""
    for db in names.all():
        server.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    if pg is not None:
        for db in names.postgresql():
            pg.create_database(db)
    chosen = set(args.pairings)
    worlds = Worlds()
    plans: dict[int, Plan] = {}
    sources = [
        ("main", names.src, args.rows, chosen & {MM, MP}),
        ("orm", names.osrc, args.orm_rows, chosen & {MM}),
        ("pg", names.src, args.rows, chosen & {PM}),
    ]
    for name, db, rows, wanted in sources:
        if not wanted:
            continue
        start = time.perf_counter()
        plan = plans.get(rows) or make_plan(rows, args.seed)
        plans[rows] = plan
        if name == "pg":
            assert pg is not None
            world = World(name, db, names.aux, plan, server=pg)
            pg.load_initial(world.plan, world.source)
            where = "PostgreSQL"
        else:
            world = World(name, db, names.aux, plan)
            load_initial(server, world.plan, world.source, world.snapshot)
            where = "MariaDB"
        setattr(worlds, name, world)
        took = time.perf_counter() - start
        print(f"== generated {rows:,} {name} rows on {where} in {took:.1f}s")
    if pg is not None:
        cross.selftest(server, pg, names.aux, names.aux, args.pairings)
        print("== floor self-test ok (NULL, 'NULL', tab, newline, CR, backslash, quotes, Unicode)")
    return worlds


def make_pairings(ctx: Context, worlds: Worlds, names: Names, chosen: list[str]) -> list[Pairing]:
    """Each selected pairing with its source, target server and target databases."""
    out = []
    for name in chosen:
        if name == MM:
            assert worlds.main is not None
            out.append(Pairing(name, worlds.main, ctx.server, names.tgt, names.base))
        elif name == MP:
            assert worlds.main is not None
            assert ctx.pg is not None
            out.append(Pairing(name, worlds.main, ctx.pg, names.tgt, names.base))
        else:
            assert worlds.pg is not None
            out.append(Pairing(name, worlds.pg, ctx.server, names.ptgt, names.pbase))
    return out


def baselines_for(pairing: str, args: argparse.Namespace, skip: set[str]) -> list[str]:
    """The pairing's baselines minus skipped and unavailable ones (with a printed note)."""
    if args.only == "sync":
        return []
    chosen = [b for b in PAIRING_BASELINES[pairing] if b not in skip]
    if "pt-table-sync" in chosen and not pt_available():
        print(f"== pt-table-sync not installed (`{PT_INSTALL}`): that baseline is skipped")
        chosen.remove("pt-table-sync")
    if "pgloader" in chosen and not cross.pgloader_available():
        print(f"== pgloader not installed (`{cross.PGLOADER_INSTALL}`): that baseline is skipped")
        chosen.remove("pgloader")
    return chosen


def run_scenarios(ctx: Context, worlds: Worlds, names: Names, args: argparse.Namespace
                  ) -> list[Result]:  # fmt: skip
    """Scenario by scenario, pairing by pairing: the sync first, then each baseline."""
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    pairs = make_pairings(ctx, worlds, names, args.pairings)
    baselines = {p.name: baselines_for(p.name, args, skip) for p in pairs}
    results: list[Result] = []
    for scenario in SCENARIOS:
        if scenario == "change":
            for world in worlds.all():
                if isinstance(world.server, PgServer):
                    world.server.apply_changes(world.plan, world.source)
                else:
                    world.deleted_table = apply_changes(
                        ctx.server, world.plan, world.source, f"{world.aux_db}.{world.name}"
                    )
        for pairing in pairs:
            print(f"== {pairing.name} scenario {scenario}")
            if args.only != "baselines":
                results.append(_show(run_sync(ctx, pairing, scenario)))
            for runner in baselines[pairing.name]:
                if f"{runner}@{scenario}" in skip:
                    continue
                world = worlds.orm if runner == "orm" else pairing.world
                assert world is not None
                results.append(_show(run_baseline(ctx, pairing, world, scenario, runner)))
    return results


def _show(res: Result) -> Result:
    """Progress line per finished run."""
    own = f" (own timer {res.self_reported_s:.2f}s)" if res.self_reported_s is not None else ""
    rate = f"{res.rows_per_s:>12,.0f} rows/s"
    peak = f"{res.peak_mb:6.1f} MB" if res.peak_mb is not None else "     - MB"
    print(f"   {res.runner:<14} {res.wall_s:8.2f}s {rate} {peak}  {res.check}{own}")
    if res.batches:
        spent = ", ".join(f"{k} {int(n)}x {s:.2f}s" for k, (n, s) in res.batches.items())
        print(f"   {'':<14} mode {res.mode}; batches: {spent}")
    return res


def meta(server: Server, pg: PgServer | None, args: argparse.Namespace, names: Names
         ) -> dict[str, Any]:  # fmt: skip
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
        "pairings": args.pairings, "timeout_s": args.timeout,
        "postgresql": pg.scalar("SELECT version()") if pg is not None else None,
        "pg_shared_buffers": pg.scalar("SHOW shared_buffers") if pg is not None else None,
        "pgloader": cross.version(["pgloader", "--version"]),
        "psql": cross.version(["psql", "--version"]),
        "mariadb_client": cross.version([cross.mariadb_client() or "mariadb", "--version"]),
    }  # fmt: skip


def cleanup(server: Server, pg: PgServer | None, names: Names, keep: bool) -> None:
    """Stop our child and our server statements, then drop every database we created.

    PostgreSQL's are dropped even if MariaDB's cleanup fails (and the error then raised).
    """
    kill_current_child()
    if keep:
        print(f"== kept databases {names.prefix}_* (on PostgreSQL too)" if pg else
              f"== kept databases {names.prefix}_*")  # fmt: skip
        return
    try:
        server.kill_ours(names.all())
        for db in names.all():
            server.execute(f"DROP DATABASE IF EXISTS {db}")
    finally:
        if pg is not None:
            pg.drop_databases(names.postgresql())


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
    except AssertionError as exc:  # the floor self-test: the figures would mean nothing
        print(f"== {exc}; databases dropped", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    """The run proper; cleanup happens in its finally blocks, before any interrupt escapes."""
    if args.only != "baselines" and not synccode.has_cli(args.sync_ref):
        print("etl CLI not found (etl/__main__.py); use `--only baselines`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # also when started with SIGINT ignored (&)
    server = Server(args.host, args.port, args.user, args.password)
    cross_pairs = [p for p in args.pairings if p != MM]
    if cross_pairs and cross.clients_missing():
        missing = " and ".join(cross.clients_missing())
        print(f"{missing} not on PATH: needed for {', '.join(cross_pairs)} "
              f"(`{cross.CLIENTS_INSTALL}`)", file=sys.stderr)  # fmt: skip
        return 2
    pg = (
        PgServer(args.pg_host, args.pg_port, args.pg_user, args.pg_password)
        if cross_pairs
        else None
    )
    names = Names.fresh()
    logs = RESULTS / "logs" / names.prefix
    print(f"== databases {names.prefix}_*, logs in {logs}")
    with (
        synccode.checkout(args.sync_ref) as sync_cwd,
        server.exclusive("etl_bench_harness", args.lock_wait),
        server_settings(server, args) as userstat,
    ):
        try:
            ctx = Context(server, names.tgt, names.base, logs, args.batch_size, userstat,
                          args.timeout, args.pt_timeout, sync_cwd, pg=pg)  # fmt: skip
            ctx.databases = {"mariadb": names.all(), "postgresql": names.postgresql()}
            worlds = setup(server, pg, names, args)
            results = run_scenarios(ctx, worlds, names, args)
            info = meta(server, pg, args, names)
        finally:
            cleanup(server, pg, names, args.keep)
    ratio = report.ratios(results)
    found = report.targets(results, ratio)
    for pairing in args.pairings:
        print(f"\n== {pairing}")
        print(report.table(results, ratio, pairing))
    if MM in args.pairings:
        print()
        print(report.verdicts(found))
    raised = report.raised_targets(results, ratio)
    if raised:
        print("\n== issue 11 targets (same-kind raised, across kinds)")
        print(report.verdicts(raised))
    report.write_json(args.json, info, results, ratio, found, raised)
    print(f"\n== wrote {args.json}")
    for failure in ctx.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if ctx.failures else 0
