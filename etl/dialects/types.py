"""The values dialects hand the engine: key orders, run locks, row hashings, text copies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from etl.dialects.base import Dialect

ErrorKind = Literal["transient", "data", "permanent"]
"""Whether a retry can help (transient), splitting the batch can (data), or neither."""

Quote = Callable[[str], str]
"""The dialect's identifier quoting."""


class Operand(str):
    """A column as a row hash sees it (SQL text), marked when it prints as a number.

    A number's text holds no '#', so a hash may print it once, without the ``REPLACE``
    every other value gets (printing a double costs a server more than the rest of a
    row). Both sides of a comparison mark alike: by the
    column's kind, integer or float, which the plan has found equal on both.

    ``utf8`` marks a text column whose stored bytes are UTF-8 already: a hash across
    kinds need not convert it (MySQL copies every value it converts, even to its own
    character set).
    """

    number: bool
    utf8: bool

    def __new__(cls, sql: str, *, number: bool = False, utf8: bool = False) -> Operand:
        made = super().__new__(cls, sql)
        made.number = number
        made.utf8 = utf8
        return made


def is_number(operand: str) -> bool:
    """Whether ``operand`` is an :class:`Operand` that prints as a number."""
    return bool(getattr(operand, "number", False))


def is_utf8(operand: str) -> bool:
    """Whether ``operand`` is an :class:`Operand` whose stored text is UTF-8 already."""
    return bool(getattr(operand, "utf8", False))


@dataclass(frozen=True)
class KeyOrder:
    """How one side orders and compares its key columns."""

    dialect: Dialect
    collations: tuple[str | None, ...]

    @property
    def exact(self) -> bool:
        """True when keys are ordered by code point and equal only when identical."""
        exact = self.dialect.exact_collations
        return all(c is None or c in exact for c in self.collations)

    def agrees_with(self, other: KeyOrder) -> bool:
        """True when a key range means the same set of keys on both sides."""
        if self.exact and other.exact:
            return True
        return self.dialect.same_kind(other.dialect) and self.collations == other.collations

    def named(self) -> str:
        """The collations for a message, e.g. ``utf8mb4_general_ci``."""
        return "/".join(sorted({str(c) for c in self.collations}))


@dataclass(frozen=True)
class ServerLock:
    """A run lock the server holds for a connection: SQL to take, check and release it."""

    take: str
    """Returns true when taken, false (or NULL) when another connection holds it."""
    check: str
    """Returns true while this connection still holds it."""
    release: str
    params: dict[str, object]


@dataclass(frozen=True)
class FileLock:
    """A run lock as ``flock`` on a file; ``path`` None: nothing another process can reach."""

    path: str | None


KEY_HASH_DIGITS = 16
"""Hex digits of a key's (and a row's) hash kept in a row token."""


TextFormat = Literal["sql-values", "copy-text", "load-data"]
"""How a text copy's rows are written. ``sql-values``: an INSERT's values list in MySQL's
syntax, ``(v, ...),(v, ...)`` with backslash escapes. ``copy-text``: PostgreSQL COPY's
text format, a line per row, tab-separated, ``\\N`` for NULL, backslash escapes.
``load-data``: MySQL LOAD DATA's default format, the same lines (NUL escaped as ``\\0``
too), bytes as hex digits."""


@dataclass(frozen=True)
class Values:
    """A key range's rows as text in the target's :data:`TextFormat` (a text copy)."""

    rows: int
    text: str
    """The rows as the target reads them; empty when the range has no rows."""
    fits: bool = True
    """False: the range holds a value the format cannot carry to the target as it is
    (NUL in COPY text, a NaN for a target that has none); the text is then empty and
    the range goes row by row, where the row checks set such a row aside with a reason."""


class RowHashing(Protocol):
    """SQL text that hashes rows on one database; two sides compare only with equal names."""

    name: str
    """Which computation this is: both sides' hashes agree only when the names agree."""
    portable: bool
    """Computed alike by servers of other kinds: exact only where both sides' columns
    are strings, integers, floats, dates or decimals of one scale (the plan checks);
    False: same kind only."""

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        """A key's hash as text: only to find rows again (a collision reads a row too many)."""
        ...

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        """A row's hash as text."""
        ...

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        """A row's hashes as numbers whose SUMs cannot overflow."""
        ...

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        """A row's bucket, an integer in ``[0, buckets)`` from its key's exact bytes."""
        ...

    def tokens(self, key_hash: str, row_hash: str) -> str:
        """An aggregate joining every row's ``key hash:row hash`` token with ','."""
        ...

    def prepare_tokens(self, session: Session) -> None:
        """Make the session able to return a whole range's aggregated tokens."""
        ...

    def table_checksum(self, table: str) -> str | None:
        """A statement giving a whole table's checksum cheaper than summing row hashes,
        its second column the checksum (NULL: none); None: this hashing has none."""
        ...

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        """Row hashes summed beside :meth:`table_checksum`, independent of it."""
        ...

    def lines(self, quote: Quote, columns: Sequence[str], limit: int) -> str | None:
        """An aggregate of every row's serialization as one line (:mod:`etl.core.lines`),
        NULL or cut short past ``limit`` bytes; None: this hashing has no such form."""
        ...

    def prepare_lines(self, session: Session, limit: int) -> int | None:
        """Make the session able to return ``limit`` bytes of aggregated lines; the
        length at which the server may have cut them short (None: it never does)."""
        ...
