"""A wide table next to `students`: `python -m bench.wide [--rows N]` (MariaDB to MariaDB).

The wide table has a BIGINT key and DECIMAL, DATETIME(6), DATE, JSON, VARBINARY, TEXT,
INT UNSIGNED and DOUBLE columns; it is synced by a configuration-only job (no Python),
first into a missing target, then rerun unchanged, then after 1% of rows changed. Each
run is timed with the same launcher as the main harness (its own peak RSS), next to the
server's own INSERT ... SELECT of the same table, and reported as rows/s and MB/s of the
table's data (information_schema.TABLES.DATA_LENGTH), so a wide row can be compared with
a `students` row per byte. Databases `bench_wide_<pid>_{src,tgt,base}` are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "bench" / "launch.py"

WIDE_DDL = (
    "CREATE TABLE {db}.wide (id BIGINT NOT NULL PRIMARY KEY, amount DECIMAL(12,2),"
    " happened DATETIME(6), day DATE, doc JSON, payload VARBINARY(64), note TEXT,"
    " counter INT UNSIGNED, ratio DOUBLE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
WIDE_FILL = (
    "INSERT INTO {db}.wide SELECT seq, seq / 100, TIMESTAMP'2024-01-01 00:00:00' +"
    " INTERVAL seq * 1001 MICROSECOND, DATE'2020-02-29' + INTERVAL seq % 3000 DAY,"
    " JSON_OBJECT('n', seq, 'tag', CONCAT('t', seq % 97)), UNHEX(MD5(seq)),"
    " REPEAT(CONCAT('note ', seq, ' \\\\ ü '), 1 + seq % 4), seq % 4000000000, seq / 7"
    " FROM {db}.seq_1_to_{rows}"
)
CHANGE = (
    "UPDATE {db}.wide SET amount = amount + 1, doc = JSON_SET(doc, '$.n', -1) WHERE id % 100 = 0"
)


def main(argv: list[str] | None = None) -> int:
    """Run the three scenarios and print one line each."""
    parser = argparse.ArgumentParser(prog="python -m bench.wide", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    args = parser.parse_args(argv)
    tag = f"bench_wide_{os.getpid()}"
    src, tgt, base = f"{tag}_src", f"{tag}_tgt", f"{tag}_base"
    server = pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=os.environ.get("BENCH_MYSQL_PASSWORD", ""),
        autocommit=True,
    )
    try:
        for db in (src, tgt, base):
            _sql(server, f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        _sql(server, WIDE_DDL.format(db=src))
        _sql(server, WIDE_FILL.format(db=src, rows=args.rows))
        size = _data_mb(server, src)
        print(f"wide: {args.rows:,} rows, {size:.0f} MB of data")
        _sql(server, WIDE_DDL.format(db=base))
        started = time.perf_counter()
        _sql(server, f"INSERT INTO {base}.wide SELECT * FROM {src}.wide")
        floor = time.perf_counter() - started
        print(_line("server INSERT..SELECT", floor, None, args.rows, size))
        with tempfile.TemporaryDirectory() as folder:
            env = _environ(Path(folder), args, src, tgt)
            for scenario in ("initial", "nochange", "change"):
                if scenario == "change":
                    _sql(server, CHANGE.format(db=src))
                wall, peak = _run(Path(folder) / f"{scenario}.rusage", env)
                print(_line(f"etl {scenario}", wall, peak, args.rows, size, floor))
            _check(server, src, tgt)
    finally:
        for db in (src, tgt, base):
            _sql(server, f"DROP DATABASE IF EXISTS {db}")
        server.close()
    return 0


def _environ(folder: Path, args: argparse.Namespace, src: str, tgt: str) -> dict[str, str]:
    config = folder / "wide.toml"
    config.write_text(
        '[jobs.students]\nenabled = false\n[jobs.wide]\ntable = "wide"\nbatch_size = 5000\n',
        encoding="utf-8",
    )
    url = f"mysql+pymysql://{args.user}@{args.host}:{args.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(
        ETL_CONFIG=str(config),
        ETL_SOURCE_URL=f"{url}/{src}",
        ETL_TARGET_URL=f"{url}/{tgt}",
        ETL_LOG_FORMAT="json",
        ETL_LOG_LEVEL="warning",
    )
    return env


def _run(rusage: Path, env: dict[str, str]) -> tuple[float, float]:
    cmd = [sys.executable, str(LAUNCH), str(rusage), sys.executable, "-m", "etl", "run", "wide"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"etl run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    wall, peak_kib = rusage.read_text(encoding="ascii").split()
    return float(wall), int(peak_kib) / 1024


def _check(server: pymysql.Connection, src: str, tgt: str) -> None:
    """Every column of every row equal (JSON compared by value, as the sync does)."""
    query = (
        f"SELECT COUNT(*) FROM {src}.wide s LEFT JOIN {tgt}.wide t ON t.id = s.id"
        " WHERE t.id IS NULL OR NOT (s.amount <=> t.amount AND s.happened <=> t.happened"
        " AND s.day <=> t.day AND JSON_EQUALS(s.doc, t.doc) AND s.payload <=> t.payload"
        " AND s.note <=> t.note AND s.counter <=> t.counter AND s.ratio <=> t.ratio)"
    )
    differing = _sql(server, query)[0][0]
    print(f"check: {differing} rows differ" if differing else "check: target equals source")
    if differing:
        raise SystemExit(1)


def _line(
    what: str, wall: float, peak: float | None, rows: int, mb: float, floor: float | None = None
) -> str:
    ratio = f"  {wall / floor:5.2f}x server" if floor else ""
    memory = f"  {peak:6.1f} MB peak" if peak is not None else ""
    rates = f"{rows / wall:>10,.0f} rows/s  {mb / wall:6.1f} MB/s"
    return f"{what:<24} {wall:7.2f} s  {rates}{memory}{ratio}"


def _data_mb(server: pymysql.Connection, db: str) -> float:
    _sql(server, f"ANALYZE TABLE {db}.wide")  # DATA_LENGTH is a statistic
    rows = _sql(
        server,
        f"SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'"
        " AND TABLE_NAME = 'wide'",
    )
    return int(rows[0][0]) / 2**20


def _sql(server: pymysql.Connection, statement: str) -> tuple[tuple[object, ...], ...]:
    with server.cursor() as cursor:
        cursor.execute(statement)
        return tuple(cursor.fetchall())


if __name__ == "__main__":
    raise SystemExit(main())
