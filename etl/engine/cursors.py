"""Which column an incremental run pages by, checked before any row is read."""

from __future__ import annotations

from sqlalchemy import Float

from etl.errors import ConfigError
from etl.job import Job


def cursor_of(job: Job) -> str:
    """The job's cursor column; ConfigError when the job cannot run incrementally."""
    column = job.cursor_column
    if not column:
        raise ConfigError(
            f"job {job.name!r} has no cursor column, so it cannot run incrementally "
            f'(set cursor = "updated_at", say, in [jobs.{job.name}])'
        )
    if column not in job.table.columns:
        raise ConfigError(f"job {job.name!r} cursor column {column!r} is not in its table")
    if column in job.key:
        raise ConfigError(f"job {job.name!r} cursor column {column!r} must not be a key column")
    if isinstance(job.table.columns[column].type, Float):
        # A 4-byte FLOAT never equals the double it is compared with (0.1 > 0.1 is true
        # in MySQL), so keyset paging on it would read the same page forever.
        raise ConfigError(
            f"job {job.name!r} cursor column {column!r} is a float: use a timestamp, "
            "a date or an integer version column"
        )
    return column
