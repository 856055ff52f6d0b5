"""What every database does alike, and the hooks where one differs.

Like alembic's ``DefaultImpl``: the generic SQL lives here, each database's module
subclasses :class:`Dialect` and overrides only what it does its own way, and callers
get the right one from :func:`etl.dialects.dialect_of` once per engine. Nothing
outside ``etl.dialects`` asks which database it is talking to: it asks the dialect
for what it can do (range checksums, text copies), and gets nothing where it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    CHAR,
    URL,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    and_,
    literal,
    true,
    tuple_,
)
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from etl.config import DatabaseSettings
from etl.core.diff import Key, Row
from etl.core.validate import ColumnSpec
from etl.dialects import columns
from etl.dialects.column_types import ColumnTypes
from etl.dialects.types import (
    ErrorKind,
    FileLock,
    KeyOrder,
    Quote,
    RowHashing,
    ServerLock,
    TextFormat,
    Values,
)


class Dialect(ColumnTypes):
    """The generic behaviour; each database's module overrides what it does otherwise."""

    family: ClassVar[str] = "generic"
    """Databases of one family print values alike (MySQL and MariaDB are one family)."""
    drivers: ClassVar[dict[str, str]] = {}
    """The driver a plain URL scheme gets (``mysql://`` -> ``mysql+pymysql``)."""
    exact_collations: ClassVar[frozenset[str]] = frozenset()
    """Collations that order by code point and call keys equal only when identical."""
    exact_hint: ClassVar[str] = "a binary collation"
    """How to give a column an exact collation, for messages."""
    enforces_types: ClassVar[bool] = True
    """False where declared column types promise nothing about the values (SQLite)."""
    forbids_nul: ClassVar[bool] = False
    """True where text cannot hold U+0000."""
    concurrent_writers: ClassVar[bool] = True
    """False where one writer at a time holds the whole database (SQLite): jobs writing
    to it run one after another, whatever ``sync.workers`` says."""
    floats_finite_only: ClassVar[bool] = False
    """True where float columns cannot hold NaN or infinities."""
    text_format: ClassVar[TextFormat | None] = None
    """The text a text copy hands this database unparsed (None: it takes none)."""
    text_writes: ClassVar[frozenset[TextFormat]] = frozenset()
    """The text formats this server can write a key range's rows in."""

    def same_kind(self, other: Dialect) -> bool:
        """Whether both print values alike and name collations alike."""
        return self.family == other.family

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    # Connections -------------------------------------------------------------

    def normalise_url(self, url: URL) -> URL:
        """The URL with this project's driver and connection settings filled in."""
        if url.drivername in self.drivers:
            url = url.set(drivername=self.drivers[url.drivername])
        return url

    def engine_arguments(
        self, url: URL, settings: DatabaseSettings
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``connect_args`` for the driver and options for ``create_engine``."""
        return {}, {"pool_pre_ping": True}

    def prepare_engine(self, engine: Engine) -> None:
        """Anything a new engine needs before its first connection (event hooks)."""

    # Key ranges --------------------------------------------------------------

    def after(self, table: Table, key: Sequence[str], lo: Key | None) -> ColumnElement[bool]:
        """Keys strictly after ``lo``; from the start when ``lo`` is None.

        The start excludes keys with a NULL part (only SQLite lets a key hold one): they
        belong to no range, and a NULL boundary would end the pagination early. They are
        set aside as rejects separately.
        """
        columns = [table.c[name] for name in key]
        if lo is None:
            return and_(*[column.is_not(None) for column in columns])
        return tuple_(*columns) > tuple_(*lo)

    def up_to(self, table: Table, key: Sequence[str], hi: Key | None) -> ColumnElement[bool]:
        """Keys at or before ``hi`` (everything when ``hi`` is None, the open end)."""
        if hi is None:
            return true()
        return tuple_(*[table.c[name] for name in key]) <= tuple_(*hi)

    def after_position(
        self, table: Table, order: Sequence[str], lo: Key | None
    ) -> ColumnElement[bool]:
        """Rows after ``lo`` in (cursor, key) order, each value bound with its column's type.

        Typed binds compare a timestamp the way the column stores it (naive UTC in
        MySQL's DATETIME), not as Python's default type for the value.
        """
        if lo is None:
            return self.after(table, order, None)
        columns = [table.c[name] for name in order]
        bounds = [literal(value, column.type) for column, value in zip(columns, lo, strict=True)]
        return tuple_(*columns) > tuple_(*bounds)

    def keys_in(self, table: Table, key: Sequence[str], keys: Sequence[Key]) -> ColumnElement[bool]:
        """Rows whose key the database calls equal to one of ``keys`` (none has a NULL part).

        Each value binds with its column's type; the comparison is the column's own, so a
        case-insensitive collation finds 'Anna' for 'anna'. Generic: ``(a, b) IN ((..), ..)``,
        which MySQL and MariaDB turn into index lookups (MariaDB joins a table of values).
        """
        return tuple_(*[table.c[name] for name in key]).in_(list(keys))

    # Key order ---------------------------------------------------------------

    def key_collations(self, connection: Connection, table: str) -> dict[str, str | None]:
        """Each column's collation (None: not text)."""
        raise NotImplementedError

    def estimated_rows(self, connection: Connection, table: str) -> int | None:
        """About how many rows the table holds, from the server's statistics; None: no idea.

        For what needs no exact count (a progress bar's total, how finely to split a
        table): an estimate costs a catalogue lookup, a count a scan of the whole index.
        """
        return None

    def written_since(self, connection: Connection, table: Table, moment: datetime) -> bool | None:
        """Whether the table was written to at or after ``moment`` (UTC); None: no idea.

        Only a hint of cost (whether a whole-table comparison is likely to pay off).
        """
        return None

    def column_definitions(
        self, connection: Connection, table: Table
    ) -> list[tuple[str, ...]] | None:
        """The table's columns as the server defines them, in order (name first): what
        a whole-record checksum depends on; None: not known here."""
        return None

    def write_version(self, connection: Connection, table: Table) -> str | None:
        """A token that changes whenever the table is written to; None: none kept.

        For a server that keeps no write time (:meth:`written_since`) but counts each
        table's writes: a run stores it, the next compares. Only a hint of cost, like
        ``written_since``: a write it misses (counters not yet flushed) or reports
        wrongly (a rolled-back write) changes what is compared first, never the result.
        """
        return None

    def key_order(self, collations: Mapping[str, str | None], key: Sequence[str]) -> KeyOrder:
        """How the key columns of a table with these column collations are ordered and compared."""
        return KeyOrder(self, tuple(collations.get(column) for column in key))

    def utf8_columns(self, collations: Mapping[str, str | None]) -> frozenset[str]:
        """Text columns whose stored bytes are UTF-8 already, by their collations.

        Only a hash across kinds asks, to know what it need not convert; by default
        none: a dialect whose hashing converts nothing need not say.
        """
        return frozenset()

    def exact_collation(self, connection: Connection) -> str | None:
        """The collation for key columns of a table this tool creates (None: the default)."""
        return None

    def collation_for_new_table(self, connection: Connection, source: KeyOrder) -> str | None:
        """Key collation of a target table made for ``source``: the exact one by default.

        An exact collation can hold every key any source can hold, and orders keys as
        every other exact collation does.
        """
        return self.exact_collation(connection)

    # Columns -----------------------------------------------------------------

    def column_spec(self, name: str, kind: TypeEngine[Any], nullable: bool) -> ColumnSpec:
        """What a column of this type can hold, as far as the row checks need to know."""
        if isinstance(kind, String):
            return ColumnSpec(
                name,
                "string",
                nullable,
                self.string_length(kind),
                forbids_nul=self.forbids_nul,
                padded=isinstance(kind, CHAR),
            )
        if isinstance(kind, Float):
            return ColumnSpec(
                name,
                "float",
                nullable,
                single_precision=self.single_precision(kind),
                finite_only=self.floats_finite_only,
            )
        found = columns.kind_spec(self, name, kind, nullable)
        if found is not None:
            return found
        if isinstance(kind, Integer):
            return ColumnSpec(name, "integer", nullable)
        return ColumnSpec(name, "other", nullable)

    def string_length(self, kind: String) -> int | None:
        """Longest value of a string column in characters (None: no limit)."""
        return kind.length

    def single_precision(self, kind: Float[Any]) -> bool:
        """Whether a float column stores 4-byte floats."""
        return False

    def precise_datetime(self) -> TypeEngine[Any]:
        """A timestamp type that keeps microseconds (for the tool's own tables)."""
        return DateTime()

    def long_text(self) -> TypeEngine[Any]:
        """Text for an error message or a whole row (the tool's own tables)."""
        return Text()

    def prepare_new_table(self, table: Table) -> None:
        """Table options a table this tool creates must have (a character set)."""

    def widen_varchar(self, connection: Connection, table: str, column: str, length: int) -> None:
        """Make a VARCHAR column of the tool's own tables longer."""
        raise NotImplementedError

    # Writing -----------------------------------------------------------------

    def upsert(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Row],
    ) -> None:
        """Insert rows, or update the non-key columns where the key exists."""
        raise NotImplementedError

    def insert_new(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Row],
    ) -> None:
        """Write rows whose keys this transaction found absent: an upsert by default.

        A database with a cheaper bulk path uses it. A key there after all (a batch
        redone after a commit whose answer was lost) is then a data error, and the batch
        is redone isolating rows, which upserts.
        """
        self.upsert(session, table, columns, key, rows)

    # What this database can do beyond rows -----------------------------------

    def row_hashings(self, engine: Engine) -> tuple[RowHashing, ...]:
        """Ways this server can hash rows, preferred first; none: no range checksums."""
        return ()

    def copies_text_to(self, target: Dialect) -> bool:
        """Whether this source can write rows as text the target reads unparsed."""
        return target.text_format is not None and target.text_format in self.text_writes

    def values_text(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        lo: Key | None,
        hi: Key | None,
        limit: int,
        *,
        form: TextFormat,
    ) -> Values | None:
        """A text copy's source side: the rows in ``(lo, hi]`` as text in ``form``.

        None when the text is not usable whole (longer than ``limit`` bytes, cut by the
        server); ``Values.fits`` False when a value cannot travel in ``form`` as it is.
        """
        raise NotImplementedError

    def text_copy_limit(self, session: Session) -> int | None:
        """A text copy's target side: the longest text one write takes (None: none)."""
        raise NotImplementedError

    def text_formats(self, session: Session) -> tuple[TextFormat, ...]:
        """A text copy's target side: the formats this session reads, fastest first.

        :attr:`text_format` always; a faster one only where the server allows it.
        """
        return () if self.text_format is None else (self.text_format,)

    def write_text(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        rows: str,
        *,
        form: TextFormat,
    ) -> None:
        """A text copy's target side: write rows given as text in ``form``, one of
        :meth:`text_formats`.

        The rows' keys are absent from the target (an empty range), so a database may
        insert them without a conflict check; a key there after all, or a value the
        target cannot hold, must fail the write as a data error (the batch is then
        redone row by row), never change the value.
        """
        raise NotImplementedError

    def run_lock(self, url: URL, job: str) -> ServerLock | FileLock:
        """How a job's run lock is held in a database at ``url``."""
        raise NotImplementedError

    def classify(self, error: BaseException) -> ErrorKind | None:
        """How bad a driver error is; None when it is not this database's driver's."""
        return None


def wrap_driver_error(
    connection: Connection, error: Any, cursor: Any, statement: str, arguments: Any
) -> StatementError:
    """A driver error from a cursor used directly, as SQLAlchemy would raise it.

    A lost connection is invalidated, so the pool never hands it out again.
    """
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    wrapped: StatementError = DBAPIError.instance(
        statement,
        arguments,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return wrapped


def bound_rows(
    session: Session, table: Table, names: Sequence[str], rows: Sequence[Row]
) -> Sequence[Row]:
    """Rows with each column's bind conversions applied, for writers that bypass them.

    Text upserts and COPY hand values to the driver directly; the column types' own
    conversions (JSON to text, a bridged UUID to text) must still apply.
    """
    dialect = session.get_bind().dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    if not any(processors):
        return rows
    return [
        tuple(
            value if convert is None or value is None else convert(value)
            for convert, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


def quoting(session: Session | Connection) -> Quote:
    """The identifier quoting of a session's database."""
    bind = session.get_bind() if isinstance(session, Session) else session
    quote: Quote = bind.dialect.identifier_preparer.quote
    return quote
