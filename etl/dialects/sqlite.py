"""SQLite, the embedded default: WAL and explicit BEGIN, ON CONFLICT upserts, file locks.

Its declared column types promise nothing (any column holds any value), so a SQLite
source's rows are always checked against the target's columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import URL, Connection, Engine, Table, event, inspect, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.util import asbool

from etl.config import DatabaseSettings
from etl.core.diff import Row
from etl.dialects.base import Dialect
from etl.dialects.types import ErrorKind, FileLock, ServerLock


class SQLiteDialect(Dialect):
    """SQLite 3 through the standard library's driver."""

    family = "sqlite"
    exact_collations = frozenset({"BINARY"})
    exact_hint = "BINARY"
    enforces_types = False
    concurrent_writers = False
    floats_finite_only = True  # NaN is stored as NULL

    def engine_arguments(
        self, url: URL, settings: DatabaseSettings
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        path = database_file(url)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"timeout": settings.connect_timeout}, {"pool_pre_ping": True}

    def prepare_engine(self, engine: Engine) -> None:
        event.listen(engine, "connect", _pragmas)
        event.listen(engine, "begin", _begin)

    def key_collations(self, connection: Connection, table: str) -> dict[str, str | None]:
        # SQLite keeps no per-column catalogue of collations; any COLLATE clause in the
        # table's DDL other than BINARY makes us treat the keys as ordered differently.
        ddl = (
            connection.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
                {"table": table},
            ).scalar_one_or_none()
            or ""
        )
        clause = ddl.upper().replace('"', "")
        custom = "COLLATE" in clause and "COLLATE BINARY" not in clause
        collation = "custom" if custom else "BINARY"
        return {c["name"]: collation for c in inspect(connection).get_columns(table)}

    def integer_range(self, kind: Any) -> tuple[int, int]:
        """Every SQLite integer is a signed 64-bit one, whatever the declared type."""
        return -(2**63), 2**63 - 1

    def widen_varchar(self, connection: Connection, table: str, column: str, length: int) -> None:
        """Nothing: SQLite does not enforce VARCHAR lengths."""

    def upsert(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Row],
    ) -> None:
        """INSERT ... ON CONFLICT DO UPDATE through executemany (in-process: no round trips)."""
        if not rows:
            return
        others = [name for name in columns if name not in key]
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        insert = sqlite.insert(table)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=list(key), set_={n: insert.excluded[n] for n in others}
            )
            if others
            else insert.on_conflict_do_nothing(index_elements=list(key)),
            records,
        )

    def run_lock(self, url: URL, job: str) -> ServerLock | FileLock:
        """``flock`` on ``<database file>.<job>.lock``: the kernel releases it at death."""
        path = database_file(url)
        return FileLock(f"{path}.{job}.lock" if path is not None else None)

    def classify(self, error: BaseException) -> ErrorKind | None:
        if not isinstance(error, sqlite3.Error):
            return None
        if isinstance(error, sqlite3.IntegrityError):
            return "data"
        message = str(error).lower()
        busy = "locked" in message or "busy" in message
        return "transient" if isinstance(error, sqlite3.OperationalError) and busy else "permanent"


def database_file(url: URL) -> str | None:
    """The file a SQLite URL names (also as a ``file:`` URI); None when in memory.

    A ``file:`` name is a URI only with ``uri=true``, as sqlite3 reads it.
    """
    database = url.database
    if database and database.startswith("file:") and asbool(url.query.get("uri", False)):
        if url.query.get("mode") == "memory":
            return None
        database = unquote(database[len("file:") :].split("?", 1)[0].split("#", 1)[0])
        if database.startswith("//"):  # file://host/path: only the path names the file
            database = database[database.find("/", 2) :] if "/" in database[2:] else ""
    if not database or database == ":memory:":
        return None
    return database


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `etl status` read while a run writes (the driver's timeout waits out locks).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # pysqlite opens its transaction lazily, at the first INSERT/UPDATE/DELETE: a SAVEPOINT
    # before that would itself become the transaction and its RELEASE would commit. Let
    # SQLAlchemy say BEGIN instead (the recipe in SQLAlchemy's SQLite dialect docs).
    dbapi_connection.isolation_level = None


def _begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")
