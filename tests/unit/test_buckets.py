"""Bucket summaries: which columns hash alike across kinds, buckets, groups, differences."""

from __future__ import annotations

from etl.core.buckets import bucket_count, differences, differing, groups, portable_columns
from etl.core.validate import ColumnSpec


def _specs(*kinds: str) -> list[ColumnSpec]:
    return [ColumnSpec(f"c{i}", kind, True) for i, kind in enumerate(kinds)]  # type: ignore[arg-type]


def test_only_strings_integers_and_floats_of_the_same_kind_hash_alike() -> None:
    assert portable_columns(
        _specs("string", "integer", "float"), _specs("string", "integer", "float")
    )
    assert not portable_columns(_specs("string", "integer"), _specs("string", "float"))
    assert not portable_columns(_specs("string", "other"), _specs("string", "other"))
    assert not portable_columns(None, _specs("string"))
    assert not portable_columns(_specs("string"), _specs("string", "string"))


def test_buckets_hold_about_a_batch() -> None:
    assert bucket_count(0, 5000) == 1
    assert bucket_count(5000, 5000) == 1
    assert bucket_count(300_001, 5000) == 61


def test_buckets_differ_by_summary_or_by_absence() -> None:
    source = {0: (2, 10), 1: (1, 5), 3: (1, 1)}
    target = {0: (2, 10), 1: (1, 6), 2: (4, 4)}
    assert differing(source, target) == [1, 2, 3]
    assert differing(source, dict(source)) == []


def test_groups_are_as_few_as_the_limit_allows_and_even() -> None:
    rows = {0: 3, 1: 3, 2: 9, 3: 1, 4: 1}
    assert groups([0, 1, 2, 3, 4], rows, 6) == [[0, 1], [2], [3, 4]]
    assert groups([], rows, 6) == []
    assert groups([7], {}, 6) == [[7]]  # a bucket only the other side has
    # 61 buckets of 5000 under a 100k limit: 4 groups of ~76k rather than 20 + 20 + 20 + 1.
    sizes = dict.fromkeys(range(61), 5000)
    found = groups(list(sizes), sizes, 100_000)
    assert len(found) == 4
    assert sorted(len(group) for group in found) == [15, 15, 15, 16]
    assert [b for group in found for b in group] == list(range(61))


def test_differences_by_exact_key() -> None:
    source = {("anna",): "h1", ("bob",): "h2", ("cy",): "h3"}
    target = {("Anna",): "h1", ("bob",): "hX", ("cy",): "h3", ("dee",): "h4"}
    found = differences(source, target)
    assert found.upserts == [("anna",), ("bob",)]
    assert found.deletes == [("Anna",), ("dee",)]
    assert found.equal == 1
