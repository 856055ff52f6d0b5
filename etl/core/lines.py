"""Row lines: each row's serialization as one line, compared as sets; pure, no database.

Where changes are everywhere, a range's row tokens (a key hash and a row hash per
row) cost each server two hashes per row, and then a third scan to find the
differing keys' rows by their hash. Lines cost neither: both servers print the
serialization their row hash would hash (keys first, each value as its text with
every '#' doubled, NULL as '#0', joined by '#,': a prefix code, so no two rows print
alike), escape backslash and newline, and join the lines with newlines; the client
splits them, and the lines only one side has are the rows that differ. Their keys
are read off the lines themselves, so the rows are then read by key (index lookups).

Only keys of integers and UTF-8 text are read off a line: what a driver reads for
those is their text as it is. Whatever a line says, the caller checks that each key
read off it names a row the server returns with exactly that key, and compares by
hashes otherwise: a line can only ever send rows to the comparison.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from etl.core.diff import Key

SEPARATOR_TEXT = "#,"
"""Between two values of a row's serialization."""
NULL_TEXT = "#0"
"""A NULL value. A value's own '#' is written '##', so '#' always starts one of three
two-byte marks ('##', '#,', '#0') and every serialization reads back one way only."""

KeyPart = Literal["integer", "text"]
"""How one key column reads off a line."""


class Unreadable(ValueError):
    """A line whose key is not in the form its columns' kinds say."""


@dataclass(frozen=True)
class LineDifferences:
    """The keys of the lines only one side has."""

    source: list[Key]
    """Keys of source lines the target lacks: rows it lacks or holds otherwise."""
    target: list[Key]
    """Keys of target lines the source lacks: rows changed or deleted there."""

    @property
    def keys(self) -> list[Key]:
        """Both sides' differing keys, each once, in a stable order."""
        return list(dict.fromkeys([*self.source, *self.target]))


def split(joined: bytes | None) -> list[bytes]:
    """A range's aggregated lines, one per row (escaped: no line holds a newline)."""
    return joined.split(b"\n") if joined else []


def differences(
    source: Sequence[bytes], target: Sequence[bytes], parts: Sequence[KeyPart]
) -> LineDifferences:
    """Keys of the lines only one side has; Unreadable when such a line's key is not."""
    theirs, ours = set(source), set(target)
    return LineDifferences(
        [key_of(line, parts) for line in theirs - ours],
        [key_of(line, parts) for line in ours - theirs],
    )


def key_of(line: bytes, parts: Sequence[KeyPart]) -> Key:
    """The key a line starts with: an integer as its decimal text, text as its UTF-8
    bytes with '#' doubled, each followed by '#,' (or the line's end)."""
    raw = unescape(line)
    values: list[object] = []
    at = 0
    for part in parts:
        value, at = _value(raw, at)
        if part == "integer":
            values.append(_integer(value))
        else:
            try:
                values.append(value.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise Unreadable(str(error)) from None
    return tuple(values)


def _value(raw: bytes, at: int) -> tuple[bytes, int]:
    """The value starting at ``at``, its '#' undoubled, and where the next one starts."""
    found = bytearray()
    while True:
        mark = raw.find(b"#", at)
        if mark < 0:
            found += raw[at:]
            return bytes(found), len(raw)
        found += raw[at:mark]
        follows = raw[mark + 1 : mark + 2]
        if follows == b"#":
            found += b"#"
            at = mark + 2
        elif follows == b",":
            return bytes(found), mark + 2
        elif follows == b"0":
            raise Unreadable(f"a NULL key part in {raw[:40]!r}")
        else:
            raise Unreadable(f"a lone '#' in {raw[:40]!r}")


def unescape(line: bytes) -> bytes:
    """Undo the servers' escaping: ``\\\\`` is a backslash, ``\\n`` a newline."""
    if b"\\" not in line:
        return line
    return _ESCAPE.sub(_unescaped, line)


_ESCAPE = re.compile(rb"\\(.?)", re.DOTALL)
_ESCAPED = {b"\\": b"\\", b"n": b"\n"}


def _unescaped(found: re.Match[bytes]) -> bytes:
    try:
        return _ESCAPED[found.group(1)]
    except KeyError:
        raise Unreadable(f"unknown escape {found.group(0)!r}") from None


def _integer(text: bytes) -> int:
    if not text or not text.lstrip(b"-").isdigit():
        raise Unreadable(f"not an integer: {text[:40]!r}")
    return int(text)
