"""How MySQL and MariaDB hash rows for range checksums (SQL text for the server).

Every expression is exact on keys: values are hashed as their bytes, '#' doubled,
NULL apart from '' (:mod:`etl.core.lines`' serialization). MD5 works on every MySQL
and MariaDB; MariaDB 10.8+ also has the cheaper CRC32 + CRC32C pair. Both sides must use the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from etl.core.lines import NULL_TEXT, SEPARATOR_TEXT
from etl.dialects.types import KEY_HASH_DIGITS, Quote, is_number

EXACT_FLOAT_SUFFIX = " + 0e0)"
"""How an exact FLOAT operand ends: ``(`score` + 0e0)``."""


class Md5Hashing:
    """MD5 of an exact serialization: any MySQL or MariaDB computes the same."""

    name = "mysql-md5"
    portable = False

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"SUBSTRING(MD5({_parts(quote, key)}), 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"SUBSTRING(MD5({_parts(quote, columns)}), 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        # 60 bits per row: a sum over any table fits a DECIMAL.
        return [f"CAST(CONV(SUBSTRING(MD5({_parts(quote, columns)}), 1, 15), 16, 10) AS UNSIGNED)"]

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        digest = f"CAST(CONV(SUBSTRING(MD5({_parts(quote, key)}), 1, 8), 16, 10) AS UNSIGNED)"
        return f"{digest} MOD {int(buckets)}"

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"GROUP_CONCAT(CONCAT({key_hash}, ':', {row_hash}) SEPARATOR ',')"

    def prepare_tokens(self, session: Session) -> None:
        # GROUP_CONCAT stops at group_concat_max_len (1 KB by default) with only a warning.
        session.execute(text("SET SESSION group_concat_max_len = @@max_allowed_packet"))

    def table_checksum(self, table: str) -> str | None:
        """None: MySQL has no second 32-bit check to stand beside CHECKSUM TABLE."""
        return None

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        """None beside no table checksum."""
        return []

    def lines(self, quote: Quote, columns: Sequence[str], limit: int) -> str | None:
        return mysql_lines(_parts(quote, columns))

    def prepare_lines(self, session: Session, limit: int) -> int | None:
        return prepare_mysql_lines(session, limit)


def mysql_lines(serialized: str) -> str:
    """Rows' serializations as escaped lines (:mod:`etl.core.lines`), in one aggregate.

    Hex literals: a backslash in a string literal means something else under
    ``NO_BACKSLASH_ESCAPES``.
    """
    escaped = f"REPLACE(REPLACE({serialized}, x'5c', x'5c5c'), x'0a', x'5c6e')"
    return f"GROUP_CONCAT({escaped} SEPARATOR x'0a')"


def prepare_mysql_lines(session: Session, limit: int) -> int:
    """Let GROUP_CONCAT return ``limit`` bytes and one more (or the packet limit, if
    lower); the length it cuts at. It cuts silently, even inside the last line: a
    result that long is taken as cut short."""
    session.execute(
        text("SET SESSION group_concat_max_len = LEAST(@@max_allowed_packet, :limit)"),
        {"limit": int(limit) + 1},
    )
    return int(session.execute(text("SELECT @@SESSION.group_concat_max_len")).scalar_one())


class CrcHashing(Md5Hashing):
    """MariaDB 10.8+: CRC32 of the exact serialization plus CRC32C of a plain one.

    Two different 32-bit checks cost the server about half of one MD5 per row.
    """

    name = "mariadb-crc"

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"CAST(CRC32({_parts(quote, key)}) AS CHAR)"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"CONCAT(CRC32({_parts(quote, columns)}), '.', CRC32C({_plain(quote, columns)}))"

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        return f"CRC32({_parts(quote, key)}) MOD {int(buckets)}"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return [f"CRC32({_parts(quote, columns)})", f"CRC32C({_plain(quote, columns)})"]

    def table_checksum(self, table: str) -> str | None:
        """``CHECKSUM TABLE``: the server's CRC32 of each whole record (exact bytes,
        NULLs apart), summed mod 2**32, in C: a sixth of the cost of the CRC32 of the
        exact serialization. InnoDB does not block writers meanwhile. Equal only
        between tables of equal definitions (else the pass compares as usual)."""
        return f"CHECKSUM TABLE {table}"

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        """CRC32C of the plain serialization: the second 32 bits, another polynomial."""
        return [f"CRC32C({_plain(quote, columns)})"]


MD5 = Md5Hashing()
CRC = CrcHashing()


def _parts(quote: Quote, columns: Sequence[str]) -> str:
    """The values' bytes with '#' doubled, NULL as '#0', joined by '#,'.

    Binary casts: the columns' collations may differ (and CONCAT would refuse to mix
    them), and a case-insensitive 'anna' = 'Anna' must not hide a change.
    """
    parts = ", ".join(_part(quote(name)) for name in columns)
    return f"CONCAT_WS('{SEPARATOR_TEXT}', {parts})"


def _part(operand: str) -> str:
    """One value. A number (an integer, a FLOAT's exact double: ``MySQLTypes.exact_operand``)
    needs no escaping: its text never holds '#'."""
    if is_number(operand) or operand.endswith(EXACT_FLOAT_SUFFIX):
        return f"IFNULL(CAST({operand} AS BINARY), '{NULL_TEXT}')"
    return f"IFNULL(REPLACE(CAST({operand} AS BINARY), '#', '##'), '{NULL_TEXT}')"


def _plain(quote: Quote, columns: Sequence[str]) -> str:
    """The values' bytes joined by NUL, with no lengths or NULL marks.

    Only ever the second of two checks: the first (CRC32 of :func:`_parts`) is the one
    that cannot confuse ('a', NULL) with (NULL, 'a'); this one adds 32 independent
    bits against random collisions for about half the cost of the exact serialization.
    A FLOAT goes as its stored text here, not its exact double a second time (printing
    a double costs more than the rest of the row): the first check holds it exactly.
    """
    plain = [f"CAST({_stored(quote(n))} AS BINARY)" for n in columns]
    return "CONCAT_WS(x'00', " + ", ".join(plain) + ")"


def _stored(operand: str) -> str:
    """The column itself for an exact FLOAT operand ``(`score` + 0e0)``; else the operand."""
    if operand.startswith("(") and operand.endswith(EXACT_FLOAT_SUFFIX):
        return operand[1 : -len(EXACT_FLOAT_SUFFIX)]
    return operand
