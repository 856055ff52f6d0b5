"""The functional core: deciding what a batch changes, from plain rows."""

from __future__ import annotations

import math

from etl.core.diff import diff_rows, exact, float_equal, missing_keys

EQUALS = [exact, float_equal(1e-5, 1e-37)]


def diff(source, target, **kw):  # type: ignore[no-untyped-def]
    return diff_rows(
        source, target, key_length=2, equals=EQUALS, delete_missing=kw.pop("delete", True), **kw
    )


def test_new_changed_missing_and_equal_rows_are_told_apart() -> None:
    """Each source row is an insert, an update or unchanged; leftovers are deletes."""
    source = [("a", "1", "X", 1.0), ("b", "1", "Y", 2.0), ("c", "1", "Z", 3.0)]
    target = [("a", "1", "X", 1.0), ("b", "1", "Y", 2.5), ("d", "1", "W", 4.0)]
    changes = diff(source, target)
    assert changes.inserts == [("c", "1", "Z", 3.0)]
    assert changes.updates == [("b", "1", "Y", 2.0)]
    assert changes.deletes == [("d", "1")]
    assert changes.unchanged == 1
    assert changes.writes == 3


def test_keys_are_compared_exactly_not_by_collation() -> None:
    """'Anna' replacing 'anna' is a delete plus an insert, so the spelling follows the source."""
    changes = diff([("Anna", "x", None, None)], [("anna", "x", None, None)])
    assert changes.inserts == [("Anna", "x", None, None)]
    assert changes.deletes == [("anna", "x")]


def test_trailing_space_makes_a_different_key() -> None:
    changes = diff([("Bob ", "x", None, 1.0)], [("Bob", "x", None, 1.0)])
    assert changes.inserts
    assert changes.deletes == [("Bob", "x")]


def test_single_precision_round_trip_is_not_a_change() -> None:
    """87.123456789 stored in a MySQL FLOAT reads back as 87.1235: unchanged."""
    changes = diff([("a", "b", "C", 87.123456789)], [("a", "b", "C", 87.1235)])
    assert changes.unchanged == 1
    assert not changes.updates


def test_a_real_change_in_score_is_an_update() -> None:
    changes = diff([("a", "b", "C", 87.2)], [("a", "b", "C", 87.1235)])
    assert changes.updates == [("a", "b", "C", 87.2)]


def test_null_and_zero_are_different() -> None:
    assert diff([("a", "b", None, 0.0)], [("a", "b", None, None)]).updates
    assert diff([("a", "b", None, None)], [("a", "b", None, 0.0)]).updates
    assert diff([("a", "b", "", 1.0)], [("a", "b", None, 1.0)]).updates


def test_protected_keys_are_never_deleted() -> None:
    """A rejected source row's target copy stays."""
    changes = diff([], [("a", "b", "C", 1.0)], protected={("a", "b")})
    assert changes.deletes == []


def test_keep_policy_never_deletes() -> None:
    assert diff([], [("a", "b", "C", 1.0)], delete=False).deletes == []


def test_missing_keys_needs_an_identical_key() -> None:
    assert missing_keys([("anna", "x"), ("Bob", "y")], {("Anna", "x"), ("Bob", "y")}) == [
        ("anna", "x")
    ]


def test_float_equal_handles_none_and_tiny_values() -> None:
    equal = float_equal(1e-5, 1e-37)
    assert equal(None, None)
    assert not equal(None, 0.0)
    assert equal(1e-40, 0.0)
    assert not equal(1.0, math.nextafter(1.0, 2.0) + 1e-4)


def test_an_empty_target_range_makes_every_row_an_insert() -> None:
    source = [("a", "1", "X", 1.0), ("b", "1", None, None)]
    changes = diff(source, [])
    assert (changes.inserts, changes.updates, changes.deletes) == (source, [], [])
    assert changes.unchanged == 0
