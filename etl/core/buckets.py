"""Bucket summaries, for sides that order keys differently: pure decisions, no database.

Both servers put each row in the bucket its key's exact bytes hash to, so a bucket
holds the same keys on both sides whatever their collations. Buckets whose count and
checksum agree hold the same rows; the others are drilled into by one (key, row hash)
token per row, both sides streamed in bucket order and merged bucket by bucket.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from etl.core import lines
from etl.core.diff import Key
from etl.core.lines import KeyPart
from etl.core.validate import ColumnSpec

PORTABLE_KINDS = frozenset({"string", "integer", "float", "decimal", "date"})
"""Column kinds both kinds of server print alike enough to hash (floats: see the hashing;
decimals of one scale on both sides, which both print with exactly that many digits)."""


def portable_columns(source: Sequence[ColumnSpec] | None, target: Sequence[ColumnSpec]) -> bool:
    """Whether servers of different kinds hash these columns alike: same kinds, known ones.

    None: the source promises nothing about its values (SQLite), so no hashing is exact.
    """
    if source is None or len(source) != len(target):
        return False
    return all(
        s.kind == t.kind
        and s.kind in PORTABLE_KINDS
        and (s.kind != "decimal" or s.scale == t.scale is not None)
        for s, t in zip(source, target, strict=True)
    )


ROWS_PER_BUCKET = 16
"""Small buckets: a few changed rows spread over the table leave most buckets equal, so
only the rows of the few that differ are streamed (with a batch of rows per bucket, 1%
of rows changed made every bucket differ). The summaries cost one row per bucket; with
p of the rows changed, summaries plus drilled rows are fewest near 1/sqrt(p) rows a
bucket (10 at 1%)."""
MOST_BUCKETS = 131_072
"""At most this many buckets: 24 bytes each per side held (:class:`Summaries`), 3 MB."""


T = TypeVar("T")


def bucket_count(rows: int) -> int:
    """About :data:`ROWS_PER_BUCKET` rows per bucket; at least one, at most :data:`MOST_BUCKETS`."""
    return max(1, min(MOST_BUCKETS, -(-rows // ROWS_PER_BUCKET)))


FOLD = 0x100000001B3
"""An odd multiplier: folding checksums ``(a, b)`` as ``a * FOLD + b`` mod 2**64 loses
no change of one of them (an odd number is invertible mod 2**64)."""


def folded(sums: Sequence[int]) -> int:
    """A bucket's checksums (sums of row hashes) as one number mod 2**64.

    Sums are compared mod 2**64 anyway (a change alters a sum by a random amount, zero
    mod 2**64 with chance 2**-64), and one number a bucket keeps the summaries compact.
    """
    value = 0
    for number in sums:
        value = (value * FOLD + number) % 2**64
    return value


@dataclass(frozen=True)
class Summaries:
    """Each bucket's row count and folded checksum, by ascending bucket.

    Arrays of machine integers: 24 bytes a bucket, where a dict of tuples took ten
    times that, so many small buckets fit in little memory.
    """

    buckets: array[int]
    counts: array[int]
    checks: array[int]

    @classmethod
    def of(cls, rows: Iterable[tuple[int, int, int]]) -> Summaries:
        """From (bucket, rows, folded checksum), ascending by bucket."""
        made = cls(array("q"), array("q"), array("Q"))
        for bucket, count, check in rows:
            made.buckets.append(bucket)
            made.counts.append(count)
            made.checks.append(check)
        return made

    @property
    def rows(self) -> int:
        return sum(self.counts)


def differing(source: Summaries, target: Summaries) -> list[int]:
    """Buckets whose summaries differ, or that one side lacks, in bucket order."""
    found: list[int] = []
    i = j = 0
    a, b = source, target
    while i < len(a.buckets) or j < len(b.buckets):
        if j == len(b.buckets) or (i < len(a.buckets) and a.buckets[i] < b.buckets[j]):
            found.append(a.buckets[i])
            i += 1
        elif i == len(a.buckets) or b.buckets[j] < a.buckets[i]:
            found.append(b.buckets[j])
            j += 1
        else:
            if a.counts[i] != b.counts[j] or a.checks[i] != b.checks[j]:
                found.append(a.buckets[i])
            i, j = i + 1, j + 1
    return found


def rows_from(summaries: Summaries, start: int) -> int:
    """Rows of the buckets from ``start`` on."""
    return sum(c for b, c in zip(summaries.buckets, summaries.counts, strict=True) if b >= start)


def rows_in(summaries: Summaries, chosen: Sequence[int]) -> int:
    """Rows of the ``chosen`` buckets (ascending) that these summaries hold."""
    position = {bucket: index for index, bucket in enumerate(summaries.buckets)}
    return sum(summaries.counts[position[b]] for b in chosen if b in position)


@dataclass(frozen=True)
class Differences:
    """What one group's tokens showed."""

    upserts: list[Key]
    """Source keys whose row the target lacks or holds otherwise."""
    deletes: list[Key]
    """Target keys the source has no identical key for."""
    equal: int
    """Source rows whose token the target has: unchanged."""


def differences(source: Mapping[Key, str], target: Mapping[Key, str]) -> Differences:
    """Compare (exact key -> row hash) tokens of the same buckets on both sides.

    Keys compare as exact values: a source that calls 'anna' equal to 'Anna' still
    has only the spelling it holds, so the target's other spelling is deleted.
    """
    upserts = [key for key, row in source.items() if target.get(key) != row]
    deletes = [key for key in target if key not in source]
    return Differences(upserts, deletes, len(source) - len(upserts))


Tokens = dict[Key, str]
"""One bucket's rows on one side: exact key -> row hash."""


def by_bucket(rows: Iterable[tuple[int, Key, str]]) -> Iterator[tuple[int, Tokens]]:
    """(bucket, key, row hash) rows ordered by bucket, as one token dict per bucket."""
    for bucket, group in itertools.groupby(rows, key=lambda row: row[0]):
        yield bucket, {key: row for _, key, row in group}


def merged(
    source: Iterable[tuple[int, Tokens]], target: Iterable[tuple[int, Tokens]]
) -> Iterator[tuple[int, Differences]]:
    """Each bucket either side has, in bucket order, with what its tokens showed.

    Both inputs ascend by bucket. A bucket only one side has compares with nothing.
    """
    for bucket, theirs, ours in _aligned(source, target, {}):
        yield bucket, differences(theirs, ours)


def merged_lines(
    source: Iterable[tuple[int, list[bytes]]],
    target: Iterable[tuple[int, list[bytes]]],
    parts: Sequence[KeyPart],
) -> Iterator[tuple[int, Differences]]:
    """Each bucket either side has, in bucket order, with what its row lines showed
    (:mod:`etl.core.lines`; Unreadable where a differing line's key is not)."""
    for bucket, theirs, ours in _aligned(source, target, []):
        yield bucket, line_differences(theirs, ours, parts)


def line_differences(
    source: Sequence[bytes], target: Sequence[bytes], parts: Sequence[KeyPart]
) -> Differences:
    """Compare one bucket's row lines on both sides: the same rows hold the same lines.

    A key whose line differs on both sides is a changed row: an upsert, not a delete.
    """
    if len(source) == len(target) and set(source) == set(target):
        return Differences([], [], len(source))
    found = lines.differences(source, target, parts)
    upserts = set(found.source)
    deletes = [key for key in found.target if key not in upserts]
    return Differences(found.source, deletes, len(source) - len(found.source))


def _aligned(
    source: Iterable[tuple[int, T]], target: Iterable[tuple[int, T]], empty: T
) -> Iterator[tuple[int, T, T]]:
    """Both sides' buckets side by side, ascending; ``empty`` for a side that lacks one."""
    theirs, ours = iter(source), iter(target)
    a, b = next(theirs, None), next(ours, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[0], a[1], empty
            a = next(theirs, None)
        elif a is None or b[0] < a[0]:
            yield b[0], empty, b[1]
            b = next(ours, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(theirs, None), next(ours, None)
