"""Engines and sessionmakers for the source and the target, built from settings.

URLs are normalised so that plain ``mysql://`` and ``postgresql://`` pick the drivers
this project ships (PyMySQL, psycopg 3), and passwords never leave this module in
printable form: use :func:`display_url` for anything a person or a log will see.

``mysql+mysqldb://`` selects the optional C driver (``pip install etl[mysqlclient]``)
instead: it parses result rows about five times faster than PyMySQL, which matters
for the source of a large initial load; the same timeouts apply to both drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from etl.config import DatabaseSettings, Settings
from etl.errors import ConfigError, DatabaseUnreachable

_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "postgresql": "postgresql+psycopg",
}


@dataclass(frozen=True)
class Databases:
    """The two engines and their sessionmakers; one of these per process."""

    source_engine: Engine
    target_engine: Engine
    Source: sessionmaker[Session]
    Target: sessionmaker[Session]

    def dispose(self) -> None:
        """Close pooled connections (end of a one-shot run, daemon shutdown)."""
        self.source_engine.dispose()
        self.target_engine.dispose()


def parse_url(db: DatabaseSettings, role: str) -> URL:
    """The database's URL with driver and password filled in; ConfigError if malformed."""
    try:
        url = make_url(db.url)
    except ArgumentError:
        # Not echoed: a malformed URL may hold a password we cannot find to mask.
        raise ConfigError(
            f"{role} url is not a database URL (expected "
            "dialect+driver://user@host:port/database, e.g. mysql+pymysql://etl@db/school)"
        ) from None
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    if db.password is not None:
        url = url.set(password=db.password)
    if url.get_backend_name() in ("mysql", "mariadb") and "charset" not in url.query:
        # utf8mb4, not the server's utf8mb3 default: names may hold any Unicode character.
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def display_url(url: URL) -> str:
    """The URL as logs and messages may show it: password masked."""
    return url.render_as_string(hide_password=True)


def make_engine(db: DatabaseSettings, role: str) -> Engine:
    """An engine for one side, with the dialect's connection hygiene applied."""
    url = parse_url(db, role)
    backend = url.get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}
    if backend in ("mysql", "mariadb"):
        # Without read/write timeouts a server that vanishes without closing the socket
        # (power loss, a dropped route) leaves PyMySQL waiting forever.
        connect_args = {
            "connect_timeout": db.connect_timeout,
            "read_timeout": db.read_timeout,
            "write_timeout": db.read_timeout,
        }
        options["pool_recycle"] = db.pool_recycle  # below the server's wait_timeout (8h)
    elif backend == "postgresql":
        # Keepalives find a silent peer while idle; tcp_user_timeout (ms) while sending.
        connect_args = {
            "connect_timeout": db.connect_timeout,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": db.read_timeout * 1000,
        }
        options["pool_recycle"] = db.pool_recycle
    elif backend == "sqlite":
        _make_parent_directory(url)
        connect_args = {"timeout": db.connect_timeout}
    try:
        engine = create_engine(url, connect_args=connect_args, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise ConfigError(
            f"{role} url {display_url(url)}: no driver for {url.drivername!r} ({error})"
        ) from None
    except ArgumentError as error:
        raise ConfigError(f"{role} url {display_url(url)}: {error}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def make_databases(settings: Settings) -> Databases:
    """Both engines and the two sessionmakers bound to them."""
    source = make_engine(settings.source, "source")
    target = make_engine(settings.target, "target")
    return Databases(
        source_engine=source,
        target_engine=target,
        Source=sessionmaker(bind=source),
        Target=sessionmaker(bind=target),
    )


def connect(engine: Engine, role: str) -> Connection:
    """A connection, or DatabaseUnreachable saying which database and why."""
    try:
        return engine.connect()
    except DBAPIError as error:
        raise DatabaseUnreachable(role, display_url(engine.url), describe_error(error)) from None


def describe_error(error: BaseException) -> str:
    """A one-line description of an error, without the SQL statement or its parameters."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return " ".join(f"{type(error.orig).__name__}: {error.orig}".split())
    return " ".join(f"{type(error).__name__}: {error}".split())


def _make_parent_directory(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `etl status` read while a run writes; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # pysqlite opens its transaction lazily, at the first INSERT/UPDATE/DELETE: a SAVEPOINT
    # before that would itself become the transaction and its RELEASE would commit. Let
    # SQLAlchemy say BEGIN instead (the recipe in SQLAlchemy's SQLite dialect docs).
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")
