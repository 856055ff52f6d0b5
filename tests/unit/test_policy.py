"""The pacing and refusal rules of a run: pure functions, no database."""

from __future__ import annotations

import pytest

from etl.core.counts import Counts
from etl.core.policy import (
    MAX_SPAN,
    MAX_TEXT_SPAN,
    DeleteBudget,
    Pace,
    after_differences,
    grown,
    refuse_obvious_mass_delete,
    text_ceiling,
    whole_table_first,
)
from etl.errors import MassDeleteRefused


def test_unchanged_ranges_double_up_to_the_cap() -> None:
    """An unchanged range makes the next one twice as long, never past MAX_SPAN."""
    assert grown(5000, 5000) == 10_000
    assert grown(20_000, 5000) == MAX_SPAN
    assert grown(MAX_SPAN, 5000) == MAX_SPAN


def test_a_batch_size_above_the_cap_is_its_own_cap() -> None:
    """With batches larger than MAX_SPAN a range is never shorter than a batch."""
    assert grown(100_000, 100_000) == 100_000


def test_text_copies_into_an_empty_target_may_span_many_batches() -> None:
    """Into a target empty at the start a text copy may hold many batches' rows; into
    one that had rows, one batch's (a longer range would more likely hold some)."""
    assert text_ceiling(5000, target_empty=True) == MAX_TEXT_SPAN
    assert text_ceiling(100_000, target_empty=True) == 100_000
    assert text_ceiling(5000, target_empty=False) == 5000


def test_a_range_with_few_changes_still_grows_and_goes_dense() -> None:
    """A few differing keys: the next range grows, and skips straight to row tokens."""
    assert after_differences(5000, 3, 5000) == Pace(10_000, dense=True)


def test_a_range_with_many_changes_starts_over_at_a_batch() -> None:
    """More than half a batch of differing keys: the next range is one batch long."""
    assert after_differences(20_000, 2501, 5000) == Pace(5000, dense=True)


def test_a_range_with_no_changes_left_is_no_longer_dense() -> None:
    """Tokens that showed nothing differing: summaries come first again."""
    assert after_differences(5000, 0, 5000) == Pace(10_000, dense=False)


def test_an_emptied_source_is_refused_before_the_first_batch() -> None:
    """Counts alone that would delete over the limit raise, naming the numbers."""
    with pytest.raises(MassDeleteRefused, match="refused to delete 90 of 100"):
        refuse_obvious_mass_delete("students", 10, 100, 0.5, unlimited=False)


def test_counts_within_the_limit_or_unlimited_pass() -> None:
    """Shortfalls within the share, an empty target, or --allow-mass-delete pass."""
    refuse_obvious_mass_delete("students", 60, 100, 0.5, unlimited=False)
    refuse_obvious_mass_delete("students", 0, 0, 0.5, unlimited=False)
    refuse_obvious_mass_delete("students", 0, 100, 0.5, unlimited=True)


def test_the_delete_budget_counts_until_the_limit() -> None:
    """Deletes are counted as taken; the one that crosses the share raises."""
    budget = DeleteBudget("students", target_rows=10, limit=0.5, unlimited=False)
    budget.take(3)
    budget.take(2)
    assert budget.used == 5
    with pytest.raises(MassDeleteRefused):
        budget.take(1)
    assert budget.used == 5  # a refused take changes nothing


def test_a_budget_counts_the_tables_once_before_any_delete() -> None:
    """The pass counts (or hands the sums' counts) before it writes; a delete before
    that would be a bug, refused outright."""
    counted: list[int] = []

    def count() -> tuple[int, int]:
        counted.append(1)
        return 95, 100

    early = DeleteBudget("students", target_rows=7, limit=0.5, unlimited=False, count=count)
    early.take(0)  # upserts alone
    with pytest.raises(AssertionError):
        early.take(1)
    budget = DeleteBudget("students", target_rows=7, limit=0.5, unlimited=False, count=count)
    budget.count_now()
    budget.count_now()
    assert (counted, budget.target_rows, budget.count) == ([1], 100, None)
    budget.take(50)
    with pytest.raises(MassDeleteRefused):
        budget.take(1)


def test_counts_that_show_an_emptied_source_refuse_before_any_delete() -> None:
    budget = DeleteBudget("students", 0, 0.5, unlimited=False, count=lambda: (0, 100))
    with pytest.raises(MassDeleteRefused, match="refused to delete 100 of 100"):
        budget.count_now()
    assert budget.used == 0
    said = DeleteBudget("students", 0, 0.5, unlimited=False, count=lambda: (0, 0))
    with pytest.raises(MassDeleteRefused):
        said.counted(10, 100)  # the whole tables' sums said them
    assert said.count is None


def test_an_unlimited_budget_only_counts() -> None:
    """With the guard lifted deletes are still counted, never refused."""
    budget = DeleteBudget("students", target_rows=1, limit=0.0, unlimited=True)
    budget.take(1000)
    assert budget.used == 1000


def test_whole_table_sums_first_unless_the_last_run_found_changes() -> None:
    assert whole_table_first(None)  # no run yet
    assert whole_table_first(Counts(rows_read=10, inserted=10))  # a first load
    assert whole_table_first(Counts(rows_read=10, unchanged=10))  # nothing changed
    assert whole_table_first(Counts(rows_read=10, unchanged=9, rejected=1))
    assert not whole_table_first(Counts(rows_read=10, unchanged=9, updated=1))
    assert not whole_table_first(Counts(rows_read=10, unchanged=10, deleted=1))
    assert not whole_table_first(Counts(rows_read=10, unchanged=9, inserted=1))


def test_a_source_that_says_it_was_written_to_decides_the_whole_table_sums() -> None:
    quiet, busy = Counts(rows_read=10, unchanged=10), Counts(rows_read=10, updated=1)
    assert not whole_table_first(quiet, source_changed=True)
    assert whole_table_first(busy, source_changed=False)
    assert whole_table_first(None, source_changed=None)
    assert not whole_table_first(busy, source_changed=None)
