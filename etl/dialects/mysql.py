"""MySQL and MariaDB: keyset predicates the range optimiser can use, SQL-text upserts,
range checksums, text copies, GET_LOCK run locks and error numbers.

MariaDB and Oracle MySQL differ where it shows: their exact (code point, NO PAD)
collations have other names, and only MariaDB 10.8+ has CRC32C, the cheaper second
checksum. Both still take ``VALUES(col)`` in ``ON DUPLICATE KEY UPDATE`` (MySQL 8.0.20
deprecates it in favour of a row alias, which MariaDB does not have).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    URL,
    ColumnElement,
    Connection,
    Engine,
    Float,
    String,
    Table,
    and_,
    event,
    or_,
    text,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from etl.config import DatabaseSettings
from etl.core.diff import Key, Row
from etl.dialects import mysql_driver, mysql_values
from etl.dialects.base import Dialect, bound_rows, quoting
from etl.dialects.mysql_errors import DATA, TRANSIENT
from etl.dialects.mysql_hashing import CRC, MD5
from etl.dialects.mysql_text import TextCopies, _send_upsert, no_backslash_escapes, statement_limit
from etl.dialects.mysql_types import MySQLTypes, mariadb_json_columns
from etl.dialects.text_hashing import MYSQL_TEXT
from etl.dialects.types import (
    ErrorKind,
    FileLock,
    KeyOrder,
    RowHashing,
    ServerLock,
)

LOCK_NAME_LIMIT = 64
"""Longest name GET_LOCK takes."""

_DRIVER_MODULES = ("pymysql", "MySQLdb")


class MySQLDialect(TextCopies, MySQLTypes, Dialect):
    """Oracle MySQL (and what MariaDB shares with it)."""

    family = "mysql"
    drivers: ClassVar[dict[str, str]] = {
        "mysql": "mysql+pymysql",
        "mariadb": "mariadb+pymysql",
    }
    exact_collations = frozenset({"utf8mb4_0900_bin", "binary"})
    exact_hint = "utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL"
    floats_finite_only = True
    exact_key_collation: ClassVar[str] = "utf8mb4_0900_bin"

    def normalise_url(self, url: URL) -> URL:
        url = super().normalise_url(url)
        if "charset" not in url.query:
            # utf8mb4, not the server's utf8mb3 default: names may hold any Unicode character.
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url

    def engine_arguments(
        self, url: URL, settings: DatabaseSettings
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # Without read/write timeouts a server that vanishes without closing the socket
        # (power loss, a dropped route) leaves the driver waiting forever.
        connect_args = {
            "connect_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout,
            "write_timeout": settings.read_timeout,
        }
        # Below the server's wait_timeout (8 h).
        return connect_args, {"pool_pre_ping": True, "pool_recycle": settings.pool_recycle}

    def prepare_engine(self, engine: Engine) -> None:
        super().prepare_engine(engine)
        if engine.dialect.driver == "pymysql":  # one TLS context for all its connections
            event.listen(engine, "do_connect", mysql_driver.connect)

    # MySQL's range optimiser uses the index for the expanded form of a row comparison
    # (c1 > b1 OR (c1 = b1 AND c2 > b2)), not for (c1, c2) > (b1, b2).

    def after(self, table: Table, key: Sequence[str], lo: Key | None) -> ColumnElement[bool]:
        if lo is None:
            return super().after(table, key, None)
        return _expanded([table.c[name] for name in key], lo, after=True)

    def up_to(self, table: Table, key: Sequence[str], hi: Key | None) -> ColumnElement[bool]:
        if hi is None:
            return true()
        return _expanded([table.c[name] for name in key], hi, after=False)

    def after_position(
        self, table: Table, order: Sequence[str], lo: Key | None
    ) -> ColumnElement[bool]:
        # The expanded form compares column to value, so each value is typed already.
        return self.after(table, order, lo)

    def estimated_rows(self, connection: Connection, table: str) -> int | None:
        # InnoDB's TABLE_ROWS is sampled from index pages: off by tens of percent at worst.
        rows = connection.execute(
            text(
                "SELECT TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
            ),
            {"table": table},
        ).scalar()
        return None if rows is None else int(rows)

    def written_since(self, connection: Connection, table: Table, moment: datetime) -> bool | None:
        # InnoDB keeps a table's last commit time in memory (NULL after a restart), in
        # whole seconds; UNIX_TIMESTAMP reads it in the session's time zone, as it is
        # shown. A write in the second the moment falls in counts as before it.
        written = connection.execute(
            text(
                "SELECT UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
            ),
            {"schema": table.schema, "table": table.name},
        ).scalar()
        if written is None:
            return None
        when = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return float(written) > when.timestamp()

    def column_definitions(
        self, connection: Connection, table: Table
    ) -> list[tuple[str, ...]] | None:
        rows = connection.execute(
            text(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(CHARACTER_SET_NAME, '') "
                "FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table "
                "ORDER BY ORDINAL_POSITION"
            ),
            {"schema": table.schema, "table": table.name},
        )
        return [tuple(str(value) for value in row) for row in rows] or None

    def key_collations(self, connection: Connection, table: str) -> dict[str, str | None]:
        rows = connection.execute(
            text(
                "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
            ),
            {"table": table},
        )
        return {str(name): collation for name, collation in rows}

    def utf8_columns(self, collations: Mapping[str, str | None]) -> frozenset[str]:
        # utf8 is utf8mb3, a subset of utf8mb4: the server stores only valid UTF-8 there.
        # Not ascii: the server stores any byte given as hex there (read back as '?').
        return frozenset(
            name
            for name, collation in collations.items()
            if collation and collation.startswith(("utf8mb4_", "utf8mb3_", "utf8_"))
        )

    def exact_collation(self, connection: Connection) -> str | None:
        return self.exact_key_collation

    def collation_for_new_table(self, connection: Connection, source: KeyOrder) -> str | None:
        """A MySQL source's own key collation, so key ranges mean the same on both sides."""
        named = {c for c in source.collations if c}
        # Only between servers of one kind: MariaDB and MySQL name their collations apart.
        if type(source.dialect) is type(self) and len(named) == 1:
            return named.pop()
        return super().collation_for_new_table(connection, source)

    def string_length(self, kind: String) -> int | None:
        # A SET's length is its longest member, but a value may hold several members.
        return None if isinstance(kind, mysql.SET) else kind.length

    def single_precision(self, kind: Float[Any]) -> bool:
        return type(kind).__name__.upper() == "FLOAT" and (
            kind.precision is None or kind.precision <= 24
        )

    def precise_datetime(self) -> TypeEngine[Any]:
        # DATETIME drops fractions of a second unless asked.
        return mysql.DATETIME(fsp=6)

    def long_text(self) -> TypeEngine[Any]:
        # TEXT holds 64 KB: too little for a wide row or a long error.
        return mysql.MEDIUMTEXT()

    def prepare_new_table(self, table: Table) -> None:
        table.dialect_options["mysql"]["charset"] = "utf8mb4"

    def widen_varchar(self, connection: Connection, table: str, column: str, length: int) -> None:
        quote = quoting(connection)
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(table)} MODIFY {quote(column)} VARCHAR({int(length)})"
        )

    def upsert(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Row],
    ) -> None:
        """Multi-row INSERT ... ON DUPLICATE KEY UPDATE; as SQL text through PyMySQL.

        PyMySQL's executemany escapes every value through a generic, type-dispatching
        ``escape`` and SQLAlchemy first turns each row into a dict: together about half
        the client's time on a bulk load. Here the text is written column by column
        (:mod:`etl.dialects.mysql_values`, honouring NO_BACKSLASH_ESCAPES as PyMySQL
        does), and statements are cut at a quarter of the server's max_allowed_packet.
        """
        if not rows:
            return
        others = [name for name in columns if name not in key]
        dbapi: Any = session.connection().connection.dbapi_connection
        if type(dbapi).__module__ == "pymysql.connections":
            rows = bound_rows(session, table, columns, rows)
            texts = mysql_values.row_texts(rows, no_backslash_escapes(session), dbapi.escape)
            for values in mysql_values.statements(texts, statement_limit(session)):
                _send_upsert(session, table, columns, others, values)
            return
        # Other drivers' executemany folds this into multi-row INSERT ... VALUES (...), (...).
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        insert = mysql.insert(table)
        update = {n: insert.inserted[n] for n in others} or {
            columns[0]: insert.inserted[columns[0]]
        }
        session.execute(insert.on_duplicate_key_update(update), records)

    def row_hashings(self, engine: Engine) -> tuple[RowHashing, ...]:
        return (MD5, MYSQL_TEXT)

    def run_lock(self, url: URL, job: str) -> ServerLock | FileLock:
        """GET_LOCK on a dedicated connection: the server releases it when that ends."""
        return ServerLock(
            take="SELECT GET_LOCK(:name, 0)",
            check="SELECT IS_USED_LOCK(:name) = CONNECTION_ID()",
            release="SELECT RELEASE_LOCK(:name)",
            params={"name": lock_name(url.database, job)},
        )

    def classify(self, error: BaseException) -> ErrorKind | None:
        if not type(error).__module__.startswith(_DRIVER_MODULES):
            return None
        # Before any SQLSTATE: PyMySQL reports a generic one (HY000) for most errors.
        args: tuple[Any, ...] = getattr(error, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code in TRANSIENT:
            return "transient"
        if code in DATA:
            return "data"
        # PyMySQL raises InterfaceError(0, '') on a connection it already knows is closed.
        if type(error).__name__ == "InterfaceError":
            return "transient"
        return "permanent"


class MariaDBDialect(MySQLDialect):
    """MariaDB: NO PAD binary collations, and CRC32C from 10.8."""

    exact_collations = frozenset({"utf8mb4_nopad_bin", "utf8mb3_nopad_bin", "binary"})
    exact_key_collation = "utf8mb4_nopad_bin"

    def json_columns(self, connection: Connection, table: str) -> frozenset[str]:
        return mariadb_json_columns(connection, table)

    def row_hashings(self, engine: Engine) -> tuple[RowHashing, ...]:
        version = engine.dialect.server_version_info or ()
        own = (CRC, MD5) if tuple(version[:2]) >= (10, 8) else (MD5,)
        return (*own, MYSQL_TEXT)


def _expanded(columns: list[Any], bound: Key, *, after: bool) -> ColumnElement[bool]:
    """``(c1, c2) > (b1, b2)`` as ``c1 > b1 OR (c1 = b1 AND c2 > b2)``; ``<=`` likewise."""
    first, value = columns[0], bound[0]
    if len(columns) == 1:
        last: ColumnElement[bool] = first > value if after else first <= value
        return last
    beyond = first > value if after else first < value
    return or_(beyond, and_(first == value, _expanded(columns[1:], bound[1:], after=after)))


def lock_name(database: str | None, job: str) -> str:
    """The GET_LOCK name: locks are server-wide, so it names the target database too."""
    name = f"etl:{database or ''}:{job}"
    if len(name) <= LOCK_NAME_LIMIT:
        return name
    return "etl:" + hashlib.sha256(name.encode()).hexdigest()[: LOCK_NAME_LIMIT - 4]
