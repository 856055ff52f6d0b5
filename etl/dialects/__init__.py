"""Where each database's differences live: one module per kind, one object per database.

:func:`dialect_of` resolves the dialect of an engine, connection or session once, from
SQLAlchemy's dialect; everything else calls its methods and never compares names.
Adding a database means a module here with a :class:`~etl.dialects.base.Dialect`
subclass and a line in ``_BY_NAME`` (modules are imported when first used).
"""

from __future__ import annotations

import importlib
import threading

from sqlalchemy import URL, Connection, Engine
from sqlalchemy import Dialect as SQLAlchemyDialect
from sqlalchemy.orm import Session

from etl.dialects.base import Dialect
from etl.dialects.types import KeyOrder, RowHashing
from etl.errors import ConfigError

GENERIC = Dialect()

_BY_NAME: dict[str, tuple[str, str]] = {
    "mysql": ("etl.dialects.mysql", "MySQLDialect"),
    "mariadb": ("etl.dialects.mysql", "MariaDBDialect"),
    "postgresql": ("etl.dialects.postgresql", "PostgreSQLDialect"),
    "sqlite": ("etl.dialects.sqlite", "SQLiteDialect"),
}
"""Each backend name's module and class. Imported on first use: each module brings its
SQLAlchemy dialect (and a driver), tens of milliseconds a run between two MariaDBs
need not spend on PostgreSQL's."""

_LOADED: dict[str, Dialect] = {}
_LOADING = threading.Lock()  # one instance per database: callers compare them by identity

_CONSTANTS = {
    "MYSQL": "mysql",
    "MARIADB": "mariadb",
    "POSTGRESQL": "postgresql",
    "SQLITE": "sqlite",
}


def dialect_named(name: str) -> Dialect | None:
    """The registered dialect of this SQLAlchemy backend name; None for one we do not know."""
    found = _LOADED.get(name)
    if found is not None or name not in _BY_NAME:
        return found
    with _LOADING:
        if name not in _LOADED:
            module, cls = _BY_NAME[name]
            _LOADED[name] = getattr(importlib.import_module(module), cls)()
        return _LOADED[name]


def __getattr__(name: str) -> Dialect:
    """``MARIADB``, ``POSTGRESQL``, ...: each database's dialect, loaded when asked for."""
    if name in _CONSTANTS:
        found = dialect_named(_CONSTANTS[name])
        assert found is not None
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dialect_for_url(url: URL, role: str) -> Dialect:
    """The dialect for a URL, before connecting; ConfigError for a database we do not know.

    A ``mysql://`` server may turn out to be MariaDB: :func:`dialect_of` an engine that
    has connected tells them apart.
    """
    found = dialect_named(url.get_backend_name())
    if found is None:
        raise ConfigError(
            f"{role} url: no support for {url.get_backend_name()!r} databases "
            "(supported: MySQL/MariaDB, PostgreSQL, SQLite)"
        )
    return found


def dialect_of(bind: Engine | Connection | Session | SQLAlchemyDialect) -> Dialect:
    """The dialect of a connected engine, a connection, a session or SQLAlchemy's dialect."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    sa_dialect = bind if isinstance(bind, SQLAlchemyDialect) else bind.dialect
    name = "mariadb" if getattr(sa_dialect, "is_mariadb", False) else sa_dialect.name
    # Another SQLAlchemy dialect (e.g. compiling DDL for display): the generic behaviour.
    return dialect_named(name) or GENERIC


def every_dialect() -> tuple[Dialect, ...]:
    """Each registered dialect once (importing every database's module)."""
    found = (dialect_named(name) for name in _BY_NAME)
    return tuple(dialect for dialect in found if dialect is not None)


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


__all__ = [
    "Dialect",
    "KeyOrder",
    "RowHashing",
    "common_hashing",
    "dialect_for_url",
    "dialect_named",
    "dialect_of",
]
