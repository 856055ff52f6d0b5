"""Bucket summaries: which columns hash alike across kinds, buckets, groups, differences."""

from __future__ import annotations

from etl.core.buckets import (
    Summaries,
    bucket_count,
    by_bucket,
    differences,
    differing,
    folded,
    merged,
    portable_columns,
    rows_in,
)
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


def test_buckets_hold_about_sixteen_rows_up_to_a_cap() -> None:
    assert bucket_count(0) == 1
    assert bucket_count(16) == 1
    assert bucket_count(300_001) == 18_751
    assert bucket_count(1_000_000) == 62_500
    assert bucket_count(10_000_000) == 131_072


def _summaries(rows: dict[int, tuple[int, int]]) -> Summaries:
    return Summaries.of((bucket, count, check) for bucket, (count, check) in sorted(rows.items()))


def test_buckets_differ_by_summary_or_by_absence() -> None:
    source = _summaries({0: (2, 10), 1: (1, 5), 3: (1, 1), 7: (3, 3)})
    target = _summaries({0: (2, 10), 1: (1, 6), 2: (4, 4), 7: (2, 3), 9: (1, 1)})
    assert differing(source, target) == [1, 2, 3, 7, 9]
    assert differing(source, _summaries({0: (2, 10), 1: (1, 5), 3: (1, 1), 7: (3, 3)})) == []
    assert differing(source, _summaries({})) == [0, 1, 3, 7]
    assert (source.rows, rows_in(source, [1, 2, 7])) == (7, 4)


def test_folded_checksums_keep_every_change_of_one_sum() -> None:
    assert folded([5]) == 5
    assert folded([2**64 + 5]) == 5  # sums compare mod 2**64
    assert folded([1, 2]) != folded([2, 1])
    base = folded([123, 456])
    assert all(folded([123 + d, 456]) != base for d in (1, 2**32, 2**63))
    assert all(folded([123, 456 + d]) != base for d in (1, 2**32, 2**63))
    assert 0 <= folded([2**200, 3**90]) < 2**64


def test_differences_by_exact_key() -> None:
    source = {("anna",): "h1", ("bob",): "h2", ("cy",): "h3"}
    target = {("Anna",): "h1", ("bob",): "hX", ("cy",): "h3", ("dee",): "h4"}
    found = differences(source, target)
    assert found.upserts == [("anna",), ("bob",)]
    assert found.deletes == [("Anna",), ("dee",)]
    assert found.equal == 1


def test_streams_ordered_by_bucket_merge_bucket_by_bucket() -> None:
    source = [(1, ("a",), "h"), (1, ("b",), "h"), (3, ("c",), "h")]
    target = [(1, ("a",), "h"), (2, ("z",), "h"), (3, ("c",), "x")]
    found = list(merged(by_bucket(source), by_bucket(target)))
    assert [bucket for bucket, _ in found] == [1, 2, 3]
    one, two, three = (d for _, d in found)
    assert (one.upserts, one.deletes, one.equal) == ([("b",)], [], 1)
    assert (two.upserts, two.deletes, two.equal) == ([], [("z",)], 0)
    assert (three.upserts, three.deletes, three.equal) == ([("c",)], [], 0)
    assert list(merged([], [])) == []
    only = list(merged(by_bucket(source), []))
    assert [d.upserts for _, d in only] == [[("a",), ("b",)], [("c",)]]
