"""Where each database's differences live: one module per kind, one object per database.

:func:`dialect_of` resolves the dialect of an engine, connection or session once, from
SQLAlchemy's dialect; everything else calls its methods and never compares names.
Adding a database means a module here with a :class:`~etl.dialects.base.Dialect`
subclass and a line in ``_BY_NAME``.
"""

from __future__ import annotations

from sqlalchemy import URL, Connection, Engine
from sqlalchemy import Dialect as SQLAlchemyDialect
from sqlalchemy.orm import Session

from etl.dialects.base import Dialect
from etl.dialects.mysql import MariaDBDialect, MySQLDialect
from etl.dialects.postgresql import PostgreSQLDialect
from etl.dialects.sqlite import SQLiteDialect
from etl.dialects.types import KeyOrder, RowHashing
from etl.errors import ConfigError

MYSQL = MySQLDialect()
MARIADB = MariaDBDialect()
POSTGRESQL = PostgreSQLDialect()
SQLITE = SQLiteDialect()
GENERIC = Dialect()

_BY_NAME: dict[str, Dialect] = {
    "mysql": MYSQL,
    "mariadb": MARIADB,
    "postgresql": POSTGRESQL,
    "sqlite": SQLITE,
}


def dialect_for_url(url: URL, role: str) -> Dialect:
    """The dialect for a URL, before connecting; ConfigError for a database we do not know.

    A ``mysql://`` server may turn out to be MariaDB: :func:`dialect_of` an engine that
    has connected tells them apart.
    """
    try:
        return _BY_NAME[url.get_backend_name()]
    except KeyError:
        raise ConfigError(
            f"{role} url: no support for {url.get_backend_name()!r} databases "
            "(supported: MySQL/MariaDB, PostgreSQL, SQLite)"
        ) from None


def dialect_of(bind: Engine | Connection | Session | SQLAlchemyDialect) -> Dialect:
    """The dialect of a connected engine, a connection, a session or SQLAlchemy's dialect."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    sa_dialect = bind if isinstance(bind, SQLAlchemyDialect) else bind.dialect
    if getattr(sa_dialect, "is_mariadb", False):
        return MARIADB
    # Another SQLAlchemy dialect (e.g. compiling DDL for display): the generic behaviour.
    return _BY_NAME.get(sa_dialect.name, GENERIC)


def every_dialect() -> tuple[Dialect, ...]:
    """Each registered dialect once."""
    return tuple(dict.fromkeys(_BY_NAME.values()))


def common_hashing(
    source: Dialect, source_engine: Engine, target: Dialect, target_engine: Engine
) -> tuple[RowHashing, RowHashing] | None:
    """The first row hashing both servers compute alike, as each side's SQL; None: none.

    Of one kind both are the same object; across kinds each side writes its own SQL
    for the same computation (a ``portable`` hashing).
    """
    theirs = {hashing.name: hashing for hashing in target.row_hashings(target_engine)}
    for hashing in source.row_hashings(source_engine):
        if hashing.name in theirs:
            return hashing, theirs[hashing.name]
    return None


__all__ = ["Dialect", "KeyOrder", "RowHashing", "common_hashing", "dialect_for_url", "dialect_of"]
