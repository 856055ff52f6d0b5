"""Which source tables a job section selects, and how a configured table's columns are chosen.

Pure: the caller lists the source's tables and reflects their columns; these functions
decide, and raise ConfigError naming the job and the table when the choice is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from etl.errors import ConfigError

TOOL_PREFIX = "etl_"
"""The tool's own tables (run history, checkpoints, rejects, watermarks): never synced."""

GLOB_CHARACTERS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` matches by wildcard rather than naming one table."""
    return any(character in GLOB_CHARACTERS for character in pattern)


def select_tables(section: str, patterns: Sequence[str], available: Sequence[str]) -> list[str]:
    """The source tables ``patterns`` select, in pattern order, each once.

    Globs (``*``, ``?``, ``[...]``) match case-sensitively and never match the tool's own
    ``etl_*`` tables; a plain name must exist. A pattern that selects nothing is an error,
    so a typo cannot silently sync no table. ``!pattern`` leaves out what it matches
    (e.g. ``["*", "!audit_*"]``), whatever the order.
    """
    chosen: list[str] = []
    left_out = [pattern[1:] for pattern in patterns if pattern.startswith("!")]
    if len(left_out) == len(patterns):
        raise ConfigError(f'[jobs.{section}] tables only leaves tables out: add e.g. "*"')
    for pattern in [p for p in patterns if not p.startswith("!")]:
        if is_glob(pattern):
            found = [
                name
                for name in available
                if fnmatchcase(name, pattern) and not name.startswith(TOOL_PREFIX)
            ]
        else:
            found = [name for name in available if name == pattern]
        if not found:
            raise ConfigError(
                f"[jobs.{section}] tables: {pattern!r} matches no table in the source"
                + ("" if is_glob(pattern) else " (names are case-sensitive)")
            )
        chosen.extend(name for name in found if name not in chosen)
    return [name for name in chosen if not any(fnmatchcase(name, p) for p in left_out)]


def job_name(section: str, table: str) -> str:
    """The name of the job a ``tables`` section makes for one of its tables."""
    return f"{section}.{table}"


def choose_columns(
    job: str,
    table: str,
    available: Sequence[str],
    primary_key: Sequence[str],
    *,
    key: Sequence[str] | None,
    columns: Sequence[str] | None,
    exclude: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """The job's key and columns (key first) from a reflected table and its settings."""
    where = f"job {job!r} (table {table!r})"
    for setting, names in (("key", key), ("columns", columns), ("exclude", exclude)):
        unknown = [name for name in names or () if name not in available]
        if unknown:
            raise ConfigError(
                f"{where}: {setting} names no column {unknown[0]!r}; "
                f"the table has {', '.join(available)}"
            )
    chosen_key = list(key) if key else list(primary_key)
    if not chosen_key:
        raise ConfigError(
            f'{where} has no primary key: set key = ["<column>", ...] in [jobs."{job}"] '
            "to a unique, NOT NULL column list"
        )
    excluded_keys = [name for name in exclude or () if name in chosen_key]
    if excluded_keys:
        raise ConfigError(f"{where}: exclude names key column {excluded_keys[0]!r}")
    if columns is not None:
        rest = [name for name in columns if name not in chosen_key]
    else:
        skipped = set(exclude or ())
        rest = [name for name in available if name not in chosen_key and name not in skipped]
    return chosen_key, [*chosen_key, *dict.fromkeys(rest)]
