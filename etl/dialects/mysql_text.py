"""MySQL text copies: the source server writes rows as SQL values text or COPY text.

The client hands that text to the target unparsed (``mysqldump | mysql`` one key range
at a time): SQL values into MySQL, PostgreSQL's COPY text into PostgreSQL. See
:mod:`etl.engine.textcopy` for when it is exact. The same statement writer sends the
PyMySQL SQL-text upserts.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import pymysql
from pymysql.constants import SERVER_STATUS
from sqlalchemy import Select, Table, literal_column, select, text, types
from sqlalchemy.orm import Session

from etl.core.diff import Key
from etl.dialects.base import Dialect, quoting, wrap_driver_error
from etl.dialects.mysql_driver import SharedTLSConnection, load_local
from etl.dialects.mysql_errors import DATA, LOAD_WARNED
from etl.dialects.types import TextFormat, Values


class TextCopies(Dialect):
    """The text copy's methods of the MySQL dialects (a mixin of :class:`Dialect`)."""

    text_format: ClassVar[TextFormat | None] = "sql-values"
    text_writes: ClassVar[frozenset[TextFormat]] = frozenset(
        {"sql-values", "copy-text", "load-data"}
    )

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
        """The rows with keys in ``(lo, hi]`` as text in ``form``; None: not usable whole.

        The server writes the text (QUOTE on every value, hex for bytes; or COPY lines,
        :func:`_copy_field`; one GROUP_CONCAT) and the row expression is computed once,
        so the text is checked by what it holds: every row present (CONCAT gives NULL
        for a row over max_allowed_packet; such a row is written as a NUL character,
        which QUOTE and HEX never write) and nothing cut (GROUP_CONCAT cuts at
        group_concat_max_len, set just past ``limit`` bytes, with only a warning: a cut
        text is longer than ``limit``). None when longer than that. COPY text keeps a
        NUL in a value as it is (PostgreSQL's text cannot hold one), so a NUL there
        sends the range row by row (``fits`` False), where such a row is set aside.
        """
        quote = quoting(session)
        if form in ("copy-text", "load-data"):
            field = _copy_field if form == "copy-text" else _load_field
            fields = ", _utf8mb4 X'09', ".join(
                field(self, quote(n), table.c[n].type) for n in columns
            )
            row, separator = f"CONCAT({fields}, _utf8mb4 X'0A')", "''"
        else:
            parts = ", ',', ".join(self._literal(quote(n), table.c[n].type) for n in columns)
            row, separator = f"CONCAT('(', {parts}, ')')", "','"
        row = f"COALESCE(CONVERT({row} USING utf8mb4), CHAR(0))"
        session.execute(text(f"SET SESSION group_concat_max_len = {int(limit) + 4}"))
        query: Select[Any] = (
            select(
                literal_column("COUNT(*)"),
                literal_column(f"GROUP_CONCAT({row} SEPARATOR {separator})"),
            )
            .select_from(table)
            .where(self.after(table, key, lo), self.up_to(table, key, hi))
        )
        count, joined = session.execute(query).one()
        if not count:
            return Values(0, "")
        whole = isinstance(joined, str) and (
            len(joined) * 4 <= limit or len(joined.encode()) <= limit
        )
        if not whole or ("\0" in joined and form != "copy-text"):
            return None
        if "\0" in joined:
            return Values(int(count), "", fits=False)
        return Values(int(count), joined)

    def _literal(self, sql: str, kind: types.TypeEngine[Any]) -> str:
        """One value's SQL literal, written by the server: bytes as ``X'..'`` (QUOTE's
        text goes through utf8mb4 with the rest, which would mangle bytes not UTF-8)."""
        if isinstance(kind, types._Binary):
            return f"IF({sql} IS NULL, 'NULL', CONCAT('X''', HEX({sql}), ''''))"
        return f"QUOTE({self.exact_operand(sql, kind)})"

    def text_copy_limit(self, session: Session) -> int | None:
        """Longest values text this target takes in one statement; None: takes none.

        QUOTE escapes with backslashes, which a NO_BACKSLASH_ESCAPES session would misread.
        """
        return None if no_backslash_escapes(session) else statement_limit(session)

    def text_formats(self, session: Session) -> tuple[TextFormat, ...]:
        """LOAD DATA LOCAL first where the server allows it (about half the server's
        time of an INSERT of the same rows) and the connection is the guarded one."""
        dbapi: Any = session.connection().connection.dbapi_connection
        guarded = isinstance(dbapi, SharedTLSConnection)
        allowed = session.execute(text("SELECT @@GLOBAL.local_infile")).scalar() if guarded else 0
        return formats_for(guarded=guarded, local_infile=allowed)

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
        """Upsert rows given as the text of a values list, ``(v, ...),(v, ...)``; or load
        LOAD DATA lines, which must go in whole: a warning (LOCAL turns the server's
        refusals into warnings, and IGNORE a duplicate key) fails the write as a data
        error, so the batch is redone row by row, where the server refuses the row."""
        if form == "load-data":
            _load_lines(session, table, columns, rows)
            return
        _send_upsert(session, table, columns, [n for n in columns if n not in key], rows)


def formats_for(*, guarded: bool, local_infile: object) -> tuple[TextFormat, ...]:
    """The text formats a MySQL target takes, fastest first: LOAD DATA lines only
    through the guarded connection and where the server's ``local_infile`` is on."""
    if guarded and str(local_infile).upper() in ("1", "ON"):
        return ("load-data", "sql-values")
    return ("sql-values",)


_COPY_ESCAPES = (("5C", "5C5C"), ("09", "5C74"), ("0A", "5C6E"), ("0D", "5C72"))
"""COPY text's escapes as utf8mb4 hex: backslash first, then tab, newline and CR. Hex
literals read alike whatever the session's NO_BACKSLASH_ESCAPES says."""


def _copy_field(dialect: Dialect, sql: str, kind: types.TypeEngine[Any]) -> str:
    """One value as a COPY text field: ``\\N`` for NULL, strings escaped, numbers as the
    text protocol prints them (a FLOAT as its exact double, ``exact_operand``).

    A value the server cannot write (over max_allowed_packet) is NULL, not ``\\N``: it
    makes the whole row NULL, which the caller marks.
    """
    value = dialect.exact_operand(sql, kind)
    if isinstance(kind, types.String):
        value = _escaped(sql, _COPY_ESCAPES)
    return _null_as_marker(sql, value)


def _escaped(sql: str, escapes: Sequence[tuple[str, str]]) -> str:
    """The value as utf8mb4 text with each (raw, escaped) pair of hex bytes replaced."""
    value = f"CONVERT({sql} USING utf8mb4)"
    for raw, escaped in escapes:
        value = f"REPLACE({value}, _utf8mb4 X'{raw}', _utf8mb4 X'{escaped}')"
    return value


def _null_as_marker(sql: str, value: str) -> str:
    """``\\N`` where the value is NULL, as both COPY text and LOAD DATA read it."""
    return f"IF({sql} IS NULL, _utf8mb4 X'5C4E', {value})"


_LOAD_ESCAPES = (("5C", "5C5C"), ("00", "5C30"), ("09", "5C74"), ("0A", "5C6E"), ("0D", "5C72"))
"""LOAD DATA's escapes as utf8mb4 hex: backslash first, then NUL, tab, newline, CR (a
raw NUL is left to mark a row the server could not write, as in the values text)."""


def _load_field(dialect: Dialect, sql: str, kind: types.TypeEngine[Any]) -> str:
    """One value as a LOAD DATA field: ``\\N`` for NULL, bytes as hex (loaded through
    UNHEX), numbers as the text protocol prints them, anything else escaped."""
    stored = _stored(kind)  # the exact FLOAT reader is a TypeDecorator
    if isinstance(stored, types._Binary):
        value = f"HEX({sql})"
    elif isinstance(stored, types.Integer | types.Numeric):  # Numeric: Float too
        value = dialect.exact_operand(sql, kind)
    else:
        value = _escaped(sql, _LOAD_ESCAPES)
    return _null_as_marker(sql, value)


def _load_lines(session: Session, table: Table, columns: Sequence[str], rows: str) -> None:
    """LOAD DATA LOCAL the lines from memory (:func:`mysql_driver.load_local`)."""
    preparer = session.get_bind().dialect.identifier_preparer
    quote = preparer.quote
    binary = {n for n in columns if isinstance(_stored(table.c[n].type), types._Binary)}
    into = ", ".join(f"@b{i}" if n in binary else quote(n) for i, n in enumerate(columns))
    unhex = ", ".join(f"{quote(n)} = UNHEX(@b{i})" for i, n in enumerate(columns) if n in binary)

    def statement(name: str) -> str:
        return (
            f"LOAD DATA LOCAL INFILE '{name}' IGNORE INTO TABLE {preparer.format_table(table)}"
            f" CHARACTER SET utf8mb4 ({into})" + (f" SET {unhex}" if unhex else "")
        )

    connection = session.connection()
    dbapi: Any = connection.connection.dbapi_connection
    expected = rows.count("\n")
    try:
        loaded, warnings = load_local(dbapi, statement, rows.encode())
        found = _warnings(dbapi) if warnings else []
        if found or loaded != expected:
            code, message = found[0] if found else (0, "no warning")
            raise pymysql.err.DataError(
                code if code in DATA else LOAD_WARNED,
                f"LOAD DATA loaded {loaded} of {expected} rows: {message}",
            )
    except pymysql.Error as error:
        raise wrap_driver_error(connection, error, None, statement("..."), None) from error


def _warnings(dbapi: Any) -> list[tuple[int, str]]:
    """The last statement's warnings and errors (how LOAD DATA LOCAL says no); not its
    notes, which change no value."""
    with dbapi.cursor() as cursor:
        cursor.execute("SHOW WARNINGS")
        found = cursor.fetchall()
    return [(int(code), str(message)) for level, code, message in found if level != "Note"]


def _stored(kind: types.TypeEngine[Any]) -> types.TypeEngine[Any]:
    """The type a TypeDecorator stores as; any other type itself."""
    return kind.impl_instance if isinstance(kind, types.TypeDecorator) else kind


def _send_upsert(
    session: Session, table: Table, columns: Sequence[str], others: Sequence[str], values: str
) -> None:
    preparer = session.get_bind().dialect.identifier_preparer
    quote = preparer.quote
    update = (
        ", ".join(f"{quote(n)} = VALUES({quote(n)})" for n in others)
        if others
        else f"{quote(columns[0])} = {quote(columns[0])}"  # keys only: leave the row be
    )
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({', '.join(quote(n) for n in columns)}) "
        f"VALUES {values} ON DUPLICATE KEY UPDATE {update}"
    )
    # no_parameters: the driver must not %-format a statement that has no parameters.
    session.connection().exec_driver_sql(statement, execution_options={"no_parameters": True})


def no_backslash_escapes(session: Session) -> bool:
    """Whether this session's SQL mode reads a backslash in a string as itself."""
    dbapi: Any = session.connection().connection.dbapi_connection
    status = getattr(dbapi, "server_status", None)
    if isinstance(status, int):  # PyMySQL tracks it from every reply
        return bool(status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)
    mode = str(session.execute(text("SELECT @@SESSION.sql_mode")).scalar_one())
    return "NO_BACKSLASH_ESCAPES" in mode.upper().split(",")


def statement_limit(session: Session) -> int:
    """Characters per statement: well under the server's max_allowed_packet (in bytes)."""
    dbapi: Any = session.connection().connection.dbapi_connection
    limit = _STATEMENT_LIMITS.get(dbapi)
    if limit is None:
        packet = int(session.execute(text("SELECT @@max_allowed_packet")).scalar_one())
        packet = min(packet, int(getattr(dbapi, "max_allowed_packet", packet)))
        # Up to 4 bytes per character in utf8mb4.
        limit = _STATEMENT_LIMITS[dbapi] = max(16_384, packet // 4 - 1024)
    return limit


_STATEMENT_LIMITS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Per DBAPI connection: the server's packet limit is asked once per connection."""
