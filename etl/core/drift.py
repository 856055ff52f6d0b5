"""Schema drift: how a table's columns now differ from what a job was built with.

Pure: columns come in as :class:`Column` descriptions (name, the type as its database
spells it, whether it may be left out of an insert). The engine reflects them; the
policy (``freeze`` refuses, ``evolve`` adds what is new) is applied by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from etl.core.validate import ColumnSpec


@dataclass(frozen=True)
class Column:
    """One column as a catalogue describes it."""

    name: str
    type: str
    """The type as its own database spells it (compared only within one database)."""
    optional: bool = True
    """An insert may leave it out: nullable, with a default, generated or auto-numbered."""
    generated: bool = False
    """Computed by the database: never written."""


@dataclass(frozen=True)
class SourceDrift:
    """How the source table differs from the job's shape."""

    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.changed)

    def describe(self) -> str:
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("added", self.added),
                ("dropped", self.dropped),
                ("changed type", self.changed),
            )
            if names
        ]
        return "; ".join(parts)


def source_drift(
    job_columns: Sequence[Column],
    source: Sequence[Column],
    *,
    follows_source: bool,
    excluded: Sequence[str] = (),
) -> SourceDrift:
    """Columns added to, dropped from or retyped in the source since the job was built.

    ``follows_source``: the job takes every source column (but ``excluded`` and generated
    ones), so a new column is drift; a job with a fixed column list ignores new ones.
    Types are compared only where the job's come from this same source (``type`` empty
    in a job column: not compared).
    """
    now = {column.name: column for column in source}
    known = {column.name for column in job_columns}
    dropped = [column.name for column in job_columns if column.name not in now]
    changed = [
        column.name
        for column in job_columns
        if column.name in now and column.type and now[column.name].type != column.type
    ]
    added = (
        [
            column.name
            for column in source
            if column.name not in known and column.name not in excluded and not column.generated
        ]
        if follows_source
        else []
    )
    return SourceDrift(added=added, dropped=dropped, changed=changed)


@dataclass(frozen=True)
class TargetGap:
    """What the target table lacks or holds beyond the job's columns."""

    missing: list[str]
    """Job columns the target does not have: ``evolve`` adds them."""
    blocking: list[str]
    """Target columns outside the job that an insert cannot leave out (NOT NULL, no default)."""
    generated: list[str]
    """Job columns the target computes itself: never written."""


def target_gap(
    job_columns: Sequence[str], key: Sequence[str], target: Sequence[Column]
) -> TargetGap:
    """Compare the job's columns with an existing target table's."""
    have = {column.name: column for column in target}
    wanted = set(job_columns)
    return TargetGap(
        missing=[name for name in job_columns if name not in have],
        blocking=[c.name for c in target if c.name not in wanted and not c.optional],
        generated=[
            name
            for name in job_columns
            if name in have and have[name].generated and name not in key
        ],
    )


@dataclass(frozen=True)
class Retyped:
    """Columns whose source type no longer matches the target's."""

    kinds: list[str]
    """A different kind of value (say, text where the target holds integers)."""
    narrower: list[str]
    """Source strings longer than the target's column takes: such rows are set aside."""


COMPATIBLE = frozenset(
    frozenset(pair)
    for pair in (
        ("boolean", "integer"),  # MySQL's BOOLEAN is TINYINT(1)
        ("uuid", "string"),  # CHAR(36) where there is no uuid type
        ("uuid", "bytes"),  # BINARY(16)
        ("integer", "decimal"),  # BIGINT UNSIGNED into NUMERIC(20)
        ("float", "decimal"),
        ("integer", "float"),
        ("json", "string"),  # MariaDB's JSON is LONGTEXT; text into jsonb is checked per row
    )
)
"""Kinds that are one column mapped between databases, not a changed column."""


def retyped(source: Sequence[ColumnSpec] | None, target: Sequence[ColumnSpec]) -> Retyped:
    """Compare what each column can hold on both sides (nothing to say without source specs)."""
    if source is None:
        return Retyped([], [])
    theirs = {spec.name: spec for spec in source}
    kinds, narrower = [], []
    for ours in target:
        spec = theirs.get(ours.name)
        if spec is None:
            continue
        pair = frozenset((spec.kind, ours.kind))
        if "other" not in pair and len(pair) == 2 and pair not in COMPATIBLE:
            kinds.append(ours.name)
        elif ours.length is not None and (spec.length is None or spec.length > ours.length):
            narrower.append(ours.name)
    return Retyped(kinds, narrower)
