"""Thin helpers around one MariaDB server: connections, counters, checksums, cleanup.

The harness talks to the server with raw PyMySQL (not SQLAlchemy) so that its own
bookkeeping is cheap, explicit, and never shares code paths with the things it measures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.connections

COUNTERS = ("Handler_write", "Handler_update", "Handler_delete")


def _thread_id(conn: pymysql.connections.Connection[Any]) -> int:
    """Server connection id (PyMySQL leaves this method unannotated)."""
    return int(conn.thread_id())  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Checksum:
    """Row count plus an order-independent, byte-exact content hash of a table."""

    count: int
    digest: int


@dataclass
class Server:
    """Connection factory for the local server; remembers connection ids so cleanup can KILL them.

    A Ctrl-C during a long server-side statement leaves that statement running and holding
    metadata locks, which would make the final DROP DATABASE hang; killing our own
    connections first avoids that.
    """

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    thread_ids: set[int] = field(default_factory=set)

    def connect(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        """Open an autocommit utf8mb4 connection with LOAD DATA LOCAL enabled."""
        conn = pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            local_infile=True,
        )
        self.thread_ids.add(_thread_id(conn))
        return conn

    @contextmanager
    def session(self, database: str | None = None) -> Iterator[pymysql.connections.Connection[Any]]:
        """A short-lived connection, closed (and forgotten) on exit."""
        conn = self.connect(database)
        try:
            yield conn
        finally:
            self.thread_ids.discard(_thread_id(conn))
            conn.close()

    def execute(self, *statements: str, database: str | None = None) -> None:
        """Run statements in order on one fresh connection.

        Multi-table DELETE with aliases needs a default database (MariaDB error 1046 without).
        """
        with self.session(database) as conn, conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def query(self, sql: str, args: Iterable[Any] | None = None) -> list[tuple[Any, ...]]:
        """Fetch all rows of one query."""
        with self.session() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def scalar(self, sql: str) -> Any:
        """First column of the first row."""
        return self.query(sql)[0][0]

    def url(self, database: str) -> str:
        """SQLAlchemy URL for the sync under test and the Python baselines."""
        auth = self.user if not self.password else f"{self.user}:{self.password}"
        return f"mysql+pymysql://{auth}@{self.host}:{self.port}/{database}"

    def handler_counters(self) -> dict[str, int]:
        """Global Handler_write/update/delete: write *attempts* (dup-key inserts count too)."""
        rows = self.query("SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s, %s)", COUNTERS)
        return {name: int(value) for name, value in rows}

    def table_changes(self, database: str) -> dict[str, int]:
        """Per-table ROWS_CHANGED from userstat (successful writes only); empty if userstat off."""
        rows = self.query(
            "SELECT TABLE_NAME, ROWS_CHANGED FROM information_schema.TABLE_STATISTICS"
            " WHERE TABLE_SCHEMA = %s",
            (database,),
        )
        return {name: int(changed) for name, changed in rows}

    def checksum(self, table: str, exclude: str | None = None) -> Checksum:
        """Count and summed 60-bit MD5 prefixes of every row, byte-exact.

        HEX() defeats the case- and pad-insensitive collation; the score as its 4-byte
        float's exact value (plain FLOAT text rounds to 6 digits; a DOUBLE target, which the
        sync creates for a PostgreSQL source's doubles, holds the same tenths-grid value).
        `exclude` names a key table whose rows are left out (deletes that an upsert-only
        baseline is not expected to propagate). The sum is exact (DECIMAL over UNSIGNED; a
        plain SUM of CONV's text would be a DOUBLE), so PgServer.checksum can match it.
        """
        row = (
            "CONCAT_WS('|', HEX(t.first_name), HEX(t.last_name), IFNULL(HEX(t.course), 'N'),"
            " IFNULL(CAST(CAST(t.score AS FLOAT) AS DOUBLE), 'N'))"
        )
        digest = f"CAST(CONV(LEFT(MD5({row}), 15), 16, 10) AS UNSIGNED)"
        sql = f"SELECT COUNT(*), COALESCE(SUM({digest}), 0) FROM {table} t"
        if exclude:
            sql += (
                f" LEFT JOIN {exclude} x ON x.first_name = t.first_name"
                " AND x.last_name = t.last_name WHERE x.first_name IS NULL"
            )
        count, total = self.query(sql)[0]
        return Checksum(int(count), int(total))

    def kill_ours(self, databases: Iterable[str]) -> None:
        """KILL our own tracked connections and any connection using one of our databases."""
        names = list(databases)
        with self.session() as conn, conn.cursor() as cur:
            own = _thread_id(conn)
            ids = set(self.thread_ids)
            if names:
                marks = ", ".join(["%s"] * len(names))
                cur.execute(
                    f"SELECT ID FROM information_schema.PROCESSLIST WHERE DB IN ({marks})", names
                )
                ids.update(int(r[0]) for r in cur.fetchall())
            for thread_id in sorted(ids - {own}):
                with contextlib.suppress(pymysql.MySQLError):  # already gone
                    cur.execute(f"KILL {thread_id}")
        self.thread_ids.clear()

    @contextmanager
    def exclusive(self, name: str, wait_s: float) -> Iterator[None]:
        """Hold a server-wide named lock (GET_LOCK) for the block, waiting up to wait_s.

        Two harness runs on one server would disturb each other's timings and, worse,
        each other's global settings: the first to finish would restore the buffer pool
        and userstat under the other. The lock's connection is deliberately not tracked,
        so cleanup's KILL of our connections cannot release it early.
        """
        conn = pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            autocommit=True,
        )  # fmt: skip
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
                if cur.fetchone() != (1,):
                    print(f"== another benchmark holds lock {name!r}; waiting up to {wait_s:.0f}s")
                    cur.execute("SELECT GET_LOCK(%s, %s)", (name, wait_s))
                    if cur.fetchone() != (1,):
                        raise TimeoutError(f"another benchmark run still holds lock {name!r}")
            yield
        finally:
            conn.close()  # releases the lock

    def set_global(self, name: str, value: str | int) -> None:
        """SET GLOBAL name = value (value is trusted, from this module)."""
        self.execute(f"SET GLOBAL {name} = {value}")

    def resize_buffer_pool(self, size_bytes: int, timeout_s: float = 120.0) -> None:
        """Resize innodb_buffer_pool_size and wait until InnoDB reports it done."""
        self.set_global("innodb_buffer_pool_size", size_bytes)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if int(self.scalar("SELECT @@innodb_buffer_pool_size")) == size_bytes:
                status = self.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'")
                if (
                    not status
                    or "resiz" not in str(status[0][1]).lower()
                    or ("complet" in str(status[0][1]).lower())
                ):
                    return
            time.sleep(0.5)
