"""Per-table sections of a ``tables`` job: ``[jobs."shop.orders"]`` under ``[jobs.shop]``.

A ``tables`` section gives every table it selects the same settings; one table may need
its own (a ``key`` for a table without a primary key, ``columns``, a ``target_table``,
a ``batch_size``, ``enabled = false``). Such a section is named ``<section>.<table>``
(``[jobs."shop.orders"]``, or nested: ``[jobs.shop.orders]``) and is read as the
section's settings with its own on top, for that one table. Pure: raw TOML tables in,
raw tables out; they are checked and typed like any other section afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etl.errors import ConfigError

NOT_PER_TABLE = ("table", "tables", "source_table")
"""Settings that choose the table, which a per-table section is given by its name."""


def split_table_overrides(
    raw_jobs: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The job sections, and each per-table section merged over its ``tables`` section.

    The second mapping is keyed by the job's name (``shop.orders``). A dotted or nested
    section whose parent is not a ``tables`` section is left where it is, for the usual
    errors (an unknown job, an unknown setting).
    """
    sections: dict[str, Any] = {}
    candidates: dict[str, Any] = {}
    for name, values in raw_jobs.items():
        if isinstance(values, Mapping) and "tables" in values:
            nested = {k: v for k, v in values.items() if isinstance(v, Mapping)}
            candidates.update((f"{name}.{table}", own) for table, own in nested.items())
            values = {k: v for k, v in values.items() if k not in nested}
        sections[name] = values
    for name in list(sections):
        parent = sections.get(name.partition(".")[0])
        if "." in name and isinstance(parent, Mapping) and "tables" in parent:
            candidates[name] = sections.pop(name)
    overrides: dict[str, dict[str, Any]] = {}
    for name, own in candidates.items():
        parent, _, table = name.partition(".")
        if not isinstance(own, Mapping):
            raise ConfigError(f'{where}: [jobs."{name}"] must be a table')
        chosen = [key for key in NOT_PER_TABLE if key in own]
        if chosen:
            raise ConfigError(
                f'{where}: [jobs."{name}"] is the settings of table {table!r} of '
                f"[jobs.{parent}] and must not set {chosen[0]}"
            )
        inherited = {k: v for k, v in sections[parent].items() if k != "tables"}
        overrides[name] = {**inherited, **own, "table": table}
    return sections, overrides


def unused_overrides(overrides: Mapping[str, Any], jobs: Mapping[str, Any]) -> None:
    """ConfigError for a per-table section whose table its ``tables`` section does not select."""
    for name in overrides:
        if name not in jobs:
            parent, _, table = name.partition(".")
            raise ConfigError(
                f'[jobs."{name}"]: table {table!r} is not one of the tables [jobs.{parent}] '
                "selects (check the name and the tables patterns)"
            )
