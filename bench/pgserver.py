"""Thin helpers around one PostgreSQL server, the counterpart of bench.mysqlserver.

Raw psycopg (the project's own PostgreSQL driver), never SQLAlchemy, for the same reason as
on the MariaDB side: the harness's bookkeeping must not share code paths with what it
measures. Tables are named `database.table` as on MariaDB; each call connects to that
database (PostgreSQL has no cross-database queries).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.datagen import Plan
from bench.mysqlserver import Checksum

# What the sync creates on PostgreSQL for the students model (etl/schema.py: key columns in
# the exact collation "C" when the source is another kind of database; Float = double).
TARGET_DDL = (
    'CREATE TABLE {table} (first_name VARCHAR(50) COLLATE "C" NOT NULL,'
    ' last_name VARCHAR(50) COLLATE "C" NOT NULL, course VARCHAR(50),'
    " score FLOAT, PRIMARY KEY (first_name, last_name))"
)
# A plain PostgreSQL source: the database's default collation, double precision scores.
SOURCE_DDL = (
    "CREATE TABLE {table} (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
    " course VARCHAR(50), score FLOAT, PRIMARY KEY (first_name, last_name))"
)
KEY_DDL = (
    "CREATE TABLE {table} (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
    " score FLOAT, PRIMARY KEY (first_name, last_name))"
)
COLUMNS = "first_name, last_name, course, score"


def split(table: str) -> tuple[str, str]:
    """`db.table` -> (db, table)."""
    database, _, name = table.partition(".")
    return database, name


@dataclass
class PgServer:
    """Connection factory for the local PostgreSQL server."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    maintenance_db: str = "postgres"

    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        """An autocommit UTF8 connection to `database` (default: the maintenance db)."""
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None,
            dbname=database or self.maintenance_db, autocommit=True, client_encoding="UTF8",
        )  # fmt: skip

    @contextmanager
    def session(self, database: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A short-lived connection, closed on exit."""
        conn = self.connect(database)
        try:
            yield conn
        finally:
            conn.close()

    def execute(self, *statements: str, database: str | None = None) -> None:
        """Run statements in order on one fresh connection."""
        with self.session(database) as conn:
            for sql in statements:
                conn.execute(sql.encode())

    def query(
        self, sql: str, args: Sequence[Any] | None = None, database: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Fetch all rows of one query."""
        with self.session(database) as conn:
            return list(conn.execute(sql.encode() if args is None else sql, args).fetchall())

    def scalar(self, sql: str, database: str | None = None) -> Any:
        """First column of the first row."""
        return self.query(sql, database=database)[0][0]

    def url(self, database: str) -> str:
        """SQLAlchemy URL for the sync under test."""
        auth = self.user if not self.password else f"{self.user}:{self.password}"
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def create_database(self, database: str) -> None:
        """UTF8, from template0, the server's default locale."""
        self.execute(f"CREATE DATABASE {database} ENCODING 'UTF8' TEMPLATE template0")

    def drop_databases(self, databases: Iterable[str]) -> None:
        """DROP DATABASE ... WITH (FORCE): terminates whatever is still connected."""
        for database in databases:
            self.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def kill_ours(self, databases: Iterable[str]) -> None:
        """Terminate every backend connected to one of our databases (after a killed child)."""
        names = list(databases)
        if names:
            self.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                (names,),
            )

    def handler_counters(self) -> dict[str, int]:
        """No Handler_* on PostgreSQL."""
        return {}

    def settle(self, database: str, timeout_s: float = 10.0) -> None:
        """Wait until no other backend is connected to `database`.

        A backend flushes its table statistics when it exits, which happens a moment after
        the client has gone; reading pg_stat_user_tables before that would miss its writes.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            others = self.scalar(
                "SELECT count(*) FROM pg_stat_activity"
                f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            )
            if not others:
                return
            time.sleep(0.05)

    def table_changes(self, database: str) -> dict[str, int]:
        """Per table n_tup_ins + n_tup_upd + n_tup_del (write counts, like Handler_*).

        Unlike userstat's ROWS_CHANGED an UPDATE that changes nothing still counts, and
        TRUNCATE counts nothing. Returns {} if the database does not exist (yet).
        """
        self.settle(database)
        with contextlib.suppress(psycopg.OperationalError):
            rows = self.query(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables",
                database=database,
            )
            return {str(name): int(n) for name, n in rows}
        return {}

    def checksum(self, table: str, exclude: str | None = None) -> Checksum:
        """The same count and digest as Server.checksum computes on MariaDB.

        Hex of the UTF-8 bytes, upper case as MariaDB's HEX(); the score as the exact value
        of the 4-byte float it becomes on MariaDB (`::real::float8`; a double column holds
        the same tenths-grid value), printed shortest-exact like MariaDB's DOUBLE, whose
        exponents have no '+'.
        """
        if exclude:
            raise NotImplementedError("PostgreSQL targets are only checked in full")
        database, name = split(table)

        def hexed(column: str) -> str:
            return f"upper(encode(convert_to(t.{column}, 'UTF8'), 'hex'))"

        row = (
            f"concat_ws('|', {hexed('first_name')}, {hexed('last_name')},"
            f" coalesce({hexed('course')}, 'N'),"
            " coalesce(replace((t.score::real::float8)::text, 'e+', 'e'), 'N'))"
        )
        sql = (
            f"SELECT count(*), coalesce(sum(('x' || left(md5({row}), 15))::bit(60)::bigint), 0)"
            f" FROM {name} t"
        )
        count, digest = self.query(sql, database=database)[0]
        return Checksum(int(count), int(digest))

    def load_rows(self, table: str, rows: Iterable[Sequence[str | None]], columns: str) -> None:
        """COPY rows in (psycopg's COPY, any character allowed)."""
        database, name = split(table)
        sql = f"COPY {name} ({columns}) FROM STDIN".encode()
        with self.session(database) as conn, conn.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def create_students(self, table: str, ddl: str = TARGET_DDL) -> None:
        """Create an empty students table."""
        database, name = split(table)
        self.execute(ddl.format(table=name), database=database)

    def load_initial(self, plan: Plan, source: str) -> None:
        """A PostgreSQL source with the plan's initial rows."""
        self.create_students(source, SOURCE_DDL)
        self.load_rows(source, plan.rows, COLUMNS)
        database, name = split(source)
        self.execute(f"ANALYZE {name}", database=database)

    def apply_changes(self, plan: Plan, source: str) -> None:
        """The same change set datagen.apply_changes applies on MariaDB."""
        database, name = split(source)
        for aux, rows in (("bench_changed", plan.changed), ("bench_deleted", plan.deleted)):
            self.execute(KEY_DDL.format(table=aux), database=database)
            self.load_rows(f"{database}.{aux}", ((r[0], r[1], r[3]) for r in rows),
                           "first_name, last_name, score")  # fmt: skip
        self.execute(
            f"UPDATE {name} s SET score = c.score FROM bench_changed c"
            " WHERE s.first_name = c.first_name AND s.last_name = c.last_name",
            f"DELETE FROM {name} s USING bench_deleted d"
            " WHERE s.first_name = d.first_name AND s.last_name = d.last_name",
            "DROP TABLE bench_changed",
            "DROP TABLE bench_deleted",
            database=database,
        )
        self.load_rows(source, plan.inserted, COLUMNS)
        self.execute(f"ANALYZE {name}", database=database)
