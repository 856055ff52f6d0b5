"""What a run has done so far, and where an unfinished pass stopped: plain values."""

from __future__ import annotations

from dataclasses import dataclass

from etl.core.diff import Key

COUNTERS = ("rows_read", "inserted", "updated", "deleted", "unchanged", "rejected")


@dataclass
class Counts:
    """Running totals of one run (or one batch), as stored in ``etl_runs``."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, other: Counts) -> None:
        """Add another batch's counts to these."""
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def plus(self, other: Counts) -> Counts:
        """These counts and another's, as new counts."""
        total = Counts(**self.as_dict())
        total.add(other)
        return total

    @property
    def writes(self) -> bool:
        """Whether anything was written (or set aside, which writes a reject record)."""
        return bool(self.inserted or self.updated or self.deleted or self.rejected)

    def as_dict(self) -> dict[str, int]:
        """The counters by name, for log lines and the run table."""
        return {name: getattr(self, name) for name in COUNTERS}


@dataclass(frozen=True)
class Checkpoint:
    """Where an unfinished pass stopped: its phase and the last key committed."""

    phase: str
    last_key: Key
    run_id: str


@dataclass(frozen=True)
class TableSizes:
    """Rows in both tables as a full run starts.

    Exact counts where the mass-delete guard compares them; otherwise the servers'
    statistics, good enough for a progress bar and for how finely to split a table.
    Whether the target is empty is always exact: it decides whether there is
    anything to compare or sweep.
    """

    source_rows: int = 0
    target_rows: int = 0
    target_empty: bool = True
    exact: bool = True
    """Both counts are exact; else at least one is an estimate."""
