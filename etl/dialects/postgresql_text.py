"""PostgreSQL text copies: COPY text read unparsed, MySQL values text written by the server.

As a target, PostgreSQL takes a key range's rows as COPY text (a MySQL source writes
it) straight into ``COPY table FROM STDIN``. As a source, it writes a range as the
values list of a MySQL ``INSERT`` (``string_agg``), which a MySQL target upserts
unparsed. See :mod:`etl.engine.textcopy` for when either is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Select, Table, literal_column, select, types
from sqlalchemy.orm import Session

from etl.core.diff import Key
from etl.dialects.base import Dialect, quoting, wrap_driver_error
from etl.dialects.types import TextFormat, Values

COPY_TEXT_LIMIT = 1 << 24
"""Bytes of COPY text one batch writes at most. COPY itself has no limit short of a
1 GB line; this bounds what the client holds for one batch (16 MB)."""

_BACKSLASH, _QUOTE = "chr(92)", "chr(39)"
"""As functions, not literals: ``'\\'`` means one backslash or two depending on the
session's standard_conforming_strings."""


class PostgreSQLTextCopies(Dialect):
    """The text copy's methods of the PostgreSQL dialect (a mixin of :class:`Dialect`)."""

    text_format: ClassVar[TextFormat | None] = "copy-text"
    text_writes: ClassVar[frozenset[TextFormat]] = frozenset({"sql-values", "load-data"})

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
        """The rows with keys in ``(lo, hi]`` as MySQL values text or LOAD DATA lines;
        None: longer than ``limit`` bytes.

        The server writes it (one ``string_agg``; PostgreSQL raises rather than cut
        text, so what arrives is whole) and sends it only when short enough. MySQL's
        floats hold no NaN or infinities, and a MySQL session not in strict mode would
        store such a text as 0: a range holding one goes row by row instead (``fits``
        False).
        """
        quote = quoting(session)
        kinds = [table.c[name].type for name in columns]
        if form == "load-data":
            fields = " || chr(9) || ".join(
                _load_field(self, quote(name), kind)
                for name, kind in zip(columns, kinds, strict=True)
            )
            line, separator = f"{fields} || chr(10)", ""
        else:
            parts = " || ',' || ".join(
                self._literal(quote(name), kind) for name, kind in zip(columns, kinds, strict=True)
            )
            line, separator = f"'(' || {parts} || ')'", ","
        odd = " OR ".join(
            f"{self.exact_operand(quote(name), kind)} IN ('NaN', 'Infinity', '-Infinity')"
            for name, kind in zip(columns, kinds, strict=True)
            if isinstance(kind, types.Float)
        )
        rows = (
            select(
                literal_column(line).label("r"),
                literal_column(odd or "false").label("odd"),
            )
            .select_from(table)
            .where(self.after(table, key, lo), self.up_to(table, key, hi))
            .subquery()
        )
        length = f"coalesce(sum(octet_length(r)), 0) + (count(*) - 1) * {len(separator)}"
        joined = f"string_agg(r, '{separator}')"
        query: Select[Any] = select(
            literal_column("count(*)"),
            literal_column("count(*) FILTER (WHERE odd)"),
            literal_column(f"CASE WHEN {length} <= {int(limit)} THEN {joined} END"),
        ).select_from(rows)
        count, unfit, joined = session.execute(query).one()
        if not count:
            return Values(0, "")
        if unfit:
            return Values(int(count), "", fits=False)
        return None if joined is None else Values(int(count), joined)

    def _literal(self, sql: str, kind: types.TypeEngine[Any]) -> str:
        """One value as a MySQL literal: integers as they print, floats as their exact
        double in quotes (a REAL widened, as ``exact_operand`` does for row hashes),
        anything else as its output text quoted with MySQL's backslash escapes."""
        if isinstance(kind, types.Integer):
            value = f"{sql}::text"
        elif isinstance(kind, types.Float):
            value = f"'''' || {self.exact_operand(sql, kind)}::text || ''''"
        else:
            # concat: the output text (a CHAR keeps its padding, as the driver reads it).
            escaped = f"replace(concat({sql}), {_BACKSLASH}, {_BACKSLASH} || {_BACKSLASH})"
            escaped = f"replace({escaped}, {_QUOTE}, {_BACKSLASH} || {_QUOTE})"
            value = f"'''' || {escaped} || ''''"
        return f"CASE WHEN {sql} IS NULL THEN 'NULL' ELSE {value} END"

    def text_copy_limit(self, session: Session) -> int | None:
        """COPY text has no statement to fit: only a batch's share of memory."""
        return COPY_TEXT_LIMIT

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
        """COPY the rows, given as COPY text, straight into the table (no staging, no
        conflict check: the range is empty, and a key there after all fails the COPY)."""
        preparer = session.get_bind().dialect.identifier_preparer
        names = ", ".join(preparer.quote(n) for n in columns)
        statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
        copy_text(session.connection(), statement, rows)


def _load_field(dialect: Dialect, sql: str, kind: types.TypeEngine[Any]) -> str:
    """One value as a field of MySQL LOAD DATA's default format: ``\\N`` for NULL,
    backslash, tab, newline and CR escaped; numbers as they print (a REAL widened to
    its exact double, as for the values text)."""
    if isinstance(kind, types.Integer):
        value = f"{sql}::text"
    elif isinstance(kind, types.Float):
        value = f"{dialect.exact_operand(sql, kind)}::text"
    else:
        value = f"concat({sql})"  # the output text, as the driver reads it
        for raw, escaped in (
            ("chr(92)", "chr(92) || chr(92)"),
            ("chr(9)", "chr(92) || 't'"),
            ("chr(10)", "chr(92) || 'n'"),
            ("chr(13)", "chr(92) || 'r'"),
        ):
            value = f"replace({value}, {raw}, {escaped})"
    return f"CASE WHEN {sql} IS NULL THEN chr(92) || 'N' ELSE {value} END"


def copy_text(connection: Connection, statement: str, rows: str) -> None:
    """COPY text through COPY FROM STDIN, a driver error raised as SQLAlchemy would."""
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            copy.write(rows)
    except connection.dialect.loaded_dbapi.Error as error:
        raise wrap_driver_error(connection, error, cursor, statement, None) from error
    finally:
        cursor.close()
