"""What a job is: a declarative description the sync engine executes.

A job names a table (its columns, types and primary key), how large its batches are,
whether deletions in the source propagate, and optional row checks and transforms.
Adding a table to sync means adding one small file in ``jobs/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, MetaData, Table, TextClause

Row = tuple[Any, ...]
"""A row as plain values, key columns first, in :attr:`Job.columns` order."""

DeletePolicy = Literal["propagate", "keep"]

DemoFill = Callable[[Engine, Table, int, int, bool], int]
"""``fill(engine, table, rows, seed, replace)``: writes demo rows, returns how many."""


@dataclass(frozen=True)
class Job:
    """One table to keep equal between source and target."""

    name: str
    """Name used on the command line, in logs, run history and checkpoints."""
    table: Table
    """The table's definition; the target table is created from it when missing."""
    description: str = ""
    batch_size: int | None = None
    """Rows per batch; ``None`` uses ``sync.batch_size`` from the configuration."""
    delete_policy: DeletePolicy = "propagate"
    """``propagate``: target rows gone from the source are deleted; ``keep``: never delete."""
    validate: Callable[[dict[str, Any]], str | None] | None = None
    """Business rule on a source row beyond the target's column types; returns a reason."""
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Reshapes a source row before it is checked and written (e.g. trimming)."""
    schedule: str | None = None
    """Default cron expression for the daemon, overridable in configuration."""
    cursor_column: str | None = None
    """Change-tracking column (e.g. ``updated_at``) that lets the job run incrementally."""
    lookback: float = 300.0
    """Incremental runs re-read this far behind the watermark (seconds for timestamps,
    units for a numeric cursor), catching rows committed late with an earlier value."""
    demo: DemoFill | None = None
    """Fills the source with deterministic demo rows (``etl demo``); None: no demo data."""
    source_filter: ColumnElement[bool] | TextClause | None = None
    """Only source rows matching this (``where`` in configuration) are the job's: every
    source read (pages, ranges, checksums, counts, NULL keys, verify) applies it."""
    reflected: bool = False
    """Built from the source's catalogue at start-up (a job in configuration, no Python)."""
    follows_source: bool = False
    """Takes every source column but :attr:`excluded`: a column added there is drift."""
    excluded: tuple[str, ...] = ()
    """Columns left out on purpose (``exclude``)."""

    @property
    def key(self) -> tuple[str, ...]:
        """Primary key column names, in key order."""
        return tuple(column.name for column in self.table.primary_key.columns)

    @property
    def columns(self) -> tuple[str, ...]:
        """All column names, key columns first: rows are tuples in this order."""
        rest = [c.name for c in self.table.columns if c.name not in self.key]
        return (*self.key, *rest)

    def table_named(self, name: str | None) -> Table:
        """This job's table under another name (configuration may rename either side)."""
        if not name or name == self.table.name:
            return self.table
        return self.table.to_metadata(MetaData(), name=name)
