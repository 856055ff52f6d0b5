"""Bucket summaries, for sides that order keys differently: pure decisions, no database.

Both servers put each row in the bucket its key's exact bytes hash to, so a bucket
holds the same keys on both sides whatever their collations. Buckets whose count and
checksum agree hold the same rows; the others are drilled into, a group at a time,
by one (key, row hash) token per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from etl.core.diff import Key
from etl.core.validate import ColumnSpec

PORTABLE_KINDS = frozenset({"string", "integer", "float"})
"""Column kinds both kinds of server print alike enough to hash (floats: see the hashing)."""

Summary = tuple[int, ...]
"""A bucket's row count and checksums."""


def portable_columns(source: Sequence[ColumnSpec] | None, target: Sequence[ColumnSpec]) -> bool:
    """Whether servers of different kinds hash these columns alike: same kinds, known ones.

    None: the source promises nothing about its values (SQLite), so no hashing is exact.
    """
    if source is None or len(source) != len(target):
        return False
    return all(
        s.kind == t.kind and s.kind in PORTABLE_KINDS for s, t in zip(source, target, strict=True)
    )


def bucket_count(rows: int, batch_size: int) -> int:
    """About a batch of rows per bucket; at least one."""
    return max(1, -(-rows // max(1, batch_size)))


def differing(source: Mapping[int, Summary], target: Mapping[int, Summary]) -> list[int]:
    """Buckets whose summaries differ, or that one side lacks, in bucket order."""
    return sorted(b for b in source.keys() | target.keys() if source.get(b) != target.get(b))


def groups(buckets: Sequence[int], rows: Mapping[int, int], limit: int) -> list[list[int]]:
    """Buckets in as few groups of about ``limit`` rows as hold them, evenly filled.

    Each group costs a scan of the table on both sides, so there are no more groups
    than ``ceil(total / limit)``; spreading the rows evenly over them (consecutive
    buckets) keeps the tokens held at once lower than filling each group to the limit
    would. A group exceeds ``limit`` by at most one bucket.
    """
    total = sum(rows.get(bucket, 0) for bucket in buckets)
    count = max(1, -(-total // max(1, limit)))
    found: list[list[int]] = [[] for _ in range(count)]
    before = 0
    for bucket in buckets:
        found[min(count - 1, before * count // total) if total else 0].append(bucket)
        before += rows.get(bucket, 0)
    return [group for group in found if group]


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
