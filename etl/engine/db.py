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

from etl.config import DatabaseSettings, Settings
from etl.dialects import dialect_for_url
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


def make_engine(db: DatabaseSettings, role: str) -> Engine:
    """An engine for one side, with the dialect's connection hygiene applied."""
    url = parse_url(db, role)
    dialect = dialect_for_url(url, role)
    connect_args, options = dialect.engine_arguments(url, db)
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
