"""Deciding what a batch must change: pure functions on plain rows, no database.

Keys are compared as exact Python strings. That is right even when a database's
collation calls 'Anna' and 'anna' equal: such a pair shows up as a delete of the
target's spelling plus an insert of the source's, and the writer applies deletes
before inserts, so the target ends up spelled exactly like the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = tuple[Any, ...]
Key = tuple[Any, ...]
ValueEqual = Callable[[Any, Any], bool]


@dataclass
class Changes:
    """What one batch must write to the target to make it equal to the source."""

    inserts: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    unchanged: int = 0

    @property
    def writes(self) -> int:
        """Rows the target must write."""
        return len(self.inserts) + len(self.updates) + len(self.deletes)


def exact(a: Any, b: Any) -> bool:
    """Plain equality, for strings and everything else that round-trips exactly."""
    return bool(a == b)


def float_equal(rel_tol: float, abs_tol: float) -> ValueEqual:
    """Equality for floats as far as the target column can represent them.

    A 4-byte FLOAT column cannot hold a double exactly, and MySQL prints it with six
    significant digits: without a tolerance every such row would look changed on
    every run and be rewritten forever.
    """

    def equal(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)

    return equal


def diff_rows(
    source: Iterable[Row],
    target: Iterable[Row],
    *,
    key_length: int,
    equals: Sequence[ValueEqual],
    delete_missing: bool,
    protected: Collection[Key] = (),
) -> Changes:
    """Compare source rows with the target rows of the same key range.

    ``equals`` holds one comparison per non-key column. Target rows whose key is not
    in ``source`` are deleted when ``delete_missing``, unless ``protected`` (the keys
    of source rows that were set aside, whose target copy must stay as it is).
    """
    by_key = {row[:key_length]: row for row in target}
    if not by_key:
        return Changes(inserts=list(source))  # an empty target range (a first load)
    changes = Changes()
    seen: set[Key] = set()
    for row in source:
        key = row[:key_length]
        seen.add(key)
        old = by_key.get(key)
        if old is None:
            changes.inserts.append(row)
        elif _same_values(row[key_length:], old[key_length:], equals):
            changes.unchanged += 1
        else:
            changes.updates.append(row)
    if delete_missing:
        changes.deletes = [key for key in by_key if key not in seen and key not in protected]
    return changes


def missing_keys(target_keys: Iterable[Key], source_keys: Collection[Key]) -> list[Key]:
    """Target keys with no exact counterpart among the source keys found for them."""
    return [key for key in target_keys if key not in source_keys]


def _same_values(new: Row, old: Row, equals: Sequence[ValueEqual]) -> bool:
    return all(equal(a, b) for equal, a, b in zip(equals, new, old, strict=True))
