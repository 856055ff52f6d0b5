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

from sqlalchemy import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from etl.config import DatabaseSettings, Settings
from etl.dialects import dialect_for_url, dialect_of
from etl.errors import ConfigError, DatabaseUnreachable


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
    if db.password is not None:
        url = url.set(password=db.password)
    return dialect_for_url(url, role).normalise_url(url)


def display_url(url: URL) -> str:
    """The URL as logs and messages may show it: password masked."""
    return url.render_as_string(hide_password=True)


CONNECTIONS_PER_JOB = 3
"""A running job's connections to each side at once: its session, the next page read
ahead (or its count, or its lock on the target), and one to spare."""


def make_engine(db: DatabaseSettings, role: str, workers: int = 1) -> Engine:
    """An engine for one side, with the dialect's connection hygiene applied.

    Its pool holds enough connections for ``workers`` jobs running at once (SQLAlchemy's
    default, 5 plus 10 overflow, would make a sixth concurrent job wait for a connection).
    """
    url = parse_url(db, role)
    dialect = dialect_for_url(url, role)
    connect_args, options = dialect.engine_arguments(url, db)
    if workers > 1 and "poolclass" not in options and _pooled(url):
        options = {**options, "pool_size": max(5, CONNECTIONS_PER_JOB * workers)}
    try:
        engine = create_engine(url, connect_args=connect_args, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise ConfigError(
            f"{role} url {display_url(url)}: no driver for {url.drivername!r} ({error})"
        ) from None
    except ArgumentError as error:
        raise ConfigError(f"{role} url {display_url(url)}: {error}") from None
    dialect.prepare_engine(engine)
    return engine


def _pooled(url: URL) -> bool:
    """Whether SQLAlchemy gives this URL a QueuePool (not so an in-memory SQLite)."""
    try:
        pool = url.get_dialect().get_pool_class(url)  # type: ignore[attr-defined]  # DefaultDialect
    except Exception:  # an unknown driver: make_engine says so
        return False
    return issubclass(pool, QueuePool)


def writers(settings: Settings, target: Engine) -> int:
    """How many jobs may write to ``target`` at once: ``sync.workers``, or 1 (SQLite)."""
    return settings.sync.workers if dialect_of(target).concurrent_writers else 1


def make_databases(settings: Settings) -> Databases:
    """Both engines and the two sessionmakers bound to them, pooled for ``sync.workers``."""
    source = make_engine(settings.source, "source", settings.sync.workers)
    target = make_engine(settings.target, "target", settings.sync.workers)
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
