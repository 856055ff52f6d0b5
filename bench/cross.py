"""Cross-dialect baselines: the pipe floor of two C clients, and pgloader.

- `floor` — the least any client-side copy between the two servers can cost: one C client
  writes the rows as text, the other bulk-loads that text, through a pipe, with no parsing
  in between. MariaDB -> PostgreSQL: `mariadb --batch --raw --quick -e "SELECT <escaped>"
  | psql -1 -c "COPY ... FROM STDIN"`; PostgreSQL -> MariaDB: `psql -c "COPY (...) TO
  STDOUT (FORMAT csv ...)" | mariadb --local-infile=1 -e "LOAD DATA LOCAL INFILE
  '/dev/stdin' ..."`. On reruns it replaces everything (TRUNCATE first, in the same psql
  transaction on PostgreSQL): without comparing rows there is no other way to make the
  target equal to the source, and it propagates deletes.
- `pgloader` — Debian's pgloader, MariaDB -> PostgreSQL: `create tables` into a missing
  target, `data only, truncate` into the existing table on reruns.

Both write what COPY / LOAD DATA expect byte for byte (`selftest` proves it on every run):

- MariaDB -> PostgreSQL, COPY text format: backslash, tab, newline and carriage return
  escaped, NULL as `\\N`. `mariadb --batch` alone would not do: it prints NULL as the word
  NULL (indistinguishable from the string 'NULL') and leaves carriage returns raw (COPY
  rejects them), so the SELECT escapes in SQL and `--raw` turns the client's escaping off.
- PostgreSQL -> MariaDB, CSV: every value quoted (FORCE_QUOTE *), NULL the bare word NULL,
  which LOAD DATA reads as NULL only unquoted; `ESCAPED BY ''` takes the quoted text
  literally. COPY's text format would not do: it writes form feed and vertical tab as
  `\\f`, `\\v`, which LOAD DATA does not know (it would load the letters).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from bench.datagen import TABLE_DDL
from bench.mysqlserver import Server
from bench.pgserver import COLUMNS, SOURCE_DDL, TARGET_DDL, PgServer, split

# What the sync creates on MariaDB for a source of another kind (etl/schema.py: key
# columns in the exact collation utf8mb4_nopad_bin, utf8mb4 table).
MARIADB_TARGET_DDL = (
    "CREATE TABLE {table} (first_name VARCHAR(50) COLLATE utf8mb4_nopad_bin NOT NULL,"
    " last_name VARCHAR(50) COLLATE utf8mb4_nopad_bin NOT NULL, course VARCHAR(50),"
    " score FLOAT, PRIMARY KEY (first_name, last_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)

PGLOADER_INSTALL = "apt-get install -y pgloader"
CLIENTS_INSTALL = "apt-get install -y postgresql-client mariadb-client"

# Every character class the floors must carry: NULLs, the strings 'NULL' and '\N', tab,
# newline, carriage return, backslash, quotes, comma, form feed, vertical tab, Unicode
# (2-, 3- and 4-byte UTF-8; the etl demo data has names like Zoe with a diaeresis). No NUL:
# PostgreSQL text cannot hold it.
FIXTURE: tuple[tuple[str | None, ...], ...] = (
    ("Zo\u00eb", "Y\u0131lmaz", None, None),
    ("tab\there", "back\\slash", "new\nline", "1.5"),
    ("cr\rx", "quote\"'", "NULL", "0"),
    ("\\N", "form\ffeed\vvt", "", "100"),
    ("\u00dcnal", "\u00d8ster", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "87.3"),
    ("\U0001f600", "\u65e5\u672c\u8a9e", 'comma, "quoted"', "2.5"),
)


def mariadb_client() -> str | None:
    """The MariaDB command-line client (`mariadb`, or its old name `mysql`)."""
    return shutil.which("mariadb") or shutil.which("mysql")


def clients_missing() -> list[str]:
    """Which of the two command-line clients the floors need are not on PATH."""
    missing = [] if mariadb_client() else ["mariadb"]
    return missing + ([] if shutil.which("psql") else ["psql"])


def pgloader_available() -> bool:
    """Whether Debian's pgloader is on PATH."""
    return shutil.which("pgloader") is not None


def client_env(mysql: Server, pg: PgServer) -> dict[str, str]:
    """Passwords through the environment, never argv; UTF-8 on both clients."""
    env = dict(os.environ, PGCLIENTENCODING="UTF8")
    if mysql.password:
        env["MYSQL_PWD"] = mysql.password
    if pg.password:
        env["PGPASSWORD"] = pg.password
    return env


def _mariadb(mysql: Server, *args: str) -> list[str]:
    return [
        mariadb_client() or "mariadb", f"--host={mysql.host}", f"--port={mysql.port}",
        f"--user={mysql.user}", "--default-character-set=utf8mb4", *args,
    ]  # fmt: skip


def _psql(pg: PgServer, database: str, *args: str) -> list[str]:
    return [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", str(pg.port),
        "-U", pg.user, "-d", database, *args,
    ]  # fmt: skip


def _copy_text(column: str) -> str:
    """MariaDB SQL: one text column as a COPY text-format field."""
    escaped = column
    for raw, esc in (("\\\\", "\\\\\\\\"), ("\\t", "\\\\t"), ("\\n", "\\\\n"), ("\\r", "\\\\r")):
        escaped = f"REPLACE({escaped}, '{raw}', '{esc}')"
    return f"IFNULL({escaped}, '\\\\N')"


def _pipe(left: Sequence[str], right: Sequence[str]) -> list[str]:
    """`left | right`, failing if either side fails."""
    return ["bash", "-o", "pipefail", "-c", f"{shlex.join(left)} | {shlex.join(right)}"]


def floor_to_postgresql(
    mysql: Server, source: str, pg: PgServer, target: str, truncate: bool
) -> list[str]:
    """MariaDB `source` -> PostgreSQL `target` (both `db.table`) through a pipe."""
    select = (
        f"SELECT {_copy_text('first_name')}, {_copy_text('last_name')},"
        f" {_copy_text('course')}, IFNULL(score, '\\\\N') FROM {source}"
    )
    database, table = split(target)
    load = (["-1", "-c", f"TRUNCATE {table}"] if truncate else []) + [
        "-c", f"COPY {table} ({COLUMNS}) FROM STDIN",
    ]  # fmt: skip
    return _pipe(
        _mariadb(mysql, "--batch", "--skip-column-names", "--raw", "--quick", "-e", select),
        _psql(pg, database, *load),
    )


def floor_to_mariadb(
    pg: PgServer, source: str, mysql: Server, target: str, truncate: bool
) -> list[str]:
    """PostgreSQL `source` -> MariaDB `target` (both `db.table`) through a pipe."""
    database, table = split(source)
    copy = (
        f"COPY (SELECT {COLUMNS} FROM {table}) TO STDOUT"
        " WITH (FORMAT csv, NULL 'NULL', FORCE_QUOTE *)"
    )
    load = (
        f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE {target} CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY ''"
        f" LINES TERMINATED BY '\\n' ({COLUMNS})"
    )
    if truncate:
        load = f"TRUNCATE TABLE {target}; {load}"
    return _pipe(_psql(pg, database, "-c", copy), _mariadb(mysql, "--local-infile=1", "-e", load))


def pgloader_command(
    mysql: Server, source_db: str, pg: PgServer, target_db: str, initial: bool, workdir: Path
) -> list[str]:
    """pgloader MariaDB `source_db`.students -> PostgreSQL `target_db`.public.students.

    Initial: the target has no table; pgloader creates it (and its key after the data).
    Reruns: `data only, truncate` into the existing table: pgloader has no incremental mode.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    my_auth = quote(mysql.user) + (f":{quote(mysql.password)}" if mysql.password else "")
    pg_auth = quote(pg.user) + (f":{quote(pg.password)}" if pg.password else "")
    options = (
        "include drop, create tables, create indexes, reset sequences"
        if initial
        else "data only, truncate"
    )
    load = workdir / "students.load"
    load.write_text(
        "LOAD DATABASE\n"
        f"  FROM mysql://{my_auth}@{mysql.host}:{mysql.port}/{source_db}\n"
        f"  INTO postgresql://{pg_auth}@{pg.host}:{pg.port}/{target_db}\n"
        f"  WITH {options}\n"
        "  INCLUDING ONLY TABLE NAMES MATCHING 'students'\n"
        f"  ALTER SCHEMA '{source_db}' RENAME TO 'public';\n",
        encoding="utf-8",
    )
    return ["pgloader", "--root-dir", str(workdir), str(load)]


def version(cmd: Sequence[str]) -> str | None:
    """First line of a tool's version output, or None if it is not installed."""
    if shutil.which(cmd[0]) is None:
        return None
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None


def selftest(mysql: Server, pg: PgServer, mysql_db: str, pg_db: str, pairings: list[str]) -> None:
    """Carry FIXTURE through each selected floor; raise AssertionError on any difference."""
    env = client_env(mysql, pg)
    cases = []
    if "mariadb-postgresql" in pairings:
        src, dst = f"{mysql_db}.fixture_m", f"{pg_db}.fixture_p"
        mysql.execute(TABLE_DDL.format(table=src))
        with mysql.session() as conn, conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {src} VALUES (%s, %s, %s, %s)", FIXTURE)
        pg.create_students(dst, TARGET_DDL)
        cases.append((mysql, src, pg, dst, floor_to_postgresql(mysql, src, pg, dst, True)))
    if "postgresql-mariadb" in pairings:
        src, dst = f"{pg_db}.fixture_p2", f"{mysql_db}.fixture_m2"
        pg.create_students(src, SOURCE_DDL)
        pg.load_rows(src, FIXTURE, COLUMNS)
        mysql.execute(MARIADB_TARGET_DDL.format(table=dst))
        cases.append((pg, src, mysql, dst, floor_to_mariadb(pg, src, mysql, dst, True)))
    for source_side, src, target_side, dst, cmd in cases:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise AssertionError(f"floor self-test {src} -> {dst} exited {done.returncode}: "
                                 f"{done.stderr.strip()}")  # fmt: skip
        want, got = source_side.checksum(src), target_side.checksum(dst)
        if want != got or want.count != len(FIXTURE):
            raise AssertionError(f"floor self-test {src} -> {dst}: {got} != source {want}")
