"""Where each job's incremental runs got to: the ``etl_watermarks`` table in the target.

A watermark is a position in (cursor, key) order: the largest cursor value committed
and the key of that row, the tie-break among rows with an equal cursor. It has its own
table, not a row in ``etl_checkpoints``: a full run clears its checkpoint when its pass
completes, and that must not send the next incremental run back to the beginning.
Like a checkpoint it is saved in the batch's own transaction, never committed here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, Text, insert, inspect, select
from sqlalchemy.orm import Session

from etl.core.diff import Key
from etl.core.keys import decode_key, encode_key
from etl.dialects import dialect_of
from etl.engine import state

metadata = MetaData()

watermarks = Table(
    "etl_watermarks",
    metadata,
    Column("job", String(100), primary_key=True),
    # JSON list: the cursor value, then the key's parts (tagged where JSON has no type).
    Column("position", Text, nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("updated_at", state.UTCDateTime(), nullable=False),
)


def create_tables(session: Session) -> None:
    """The state tables and this one, if missing; widen ``etl_runs.mode`` for "incremental".

    ``etl_runs.mode`` was VARCHAR(10) before incremental runs existed, one character
    short of "incremental": strict MySQL and PostgreSQL would refuse the run's record.
    """
    state.create_state_tables(session)
    metadata.create_all(session.connection(), checkfirst=True)
    connection = session.connection()
    mode = next(c for c in inspect(connection).get_columns("etl_runs") if c["name"] == "mode")
    if (getattr(mode["type"], "length", None) or 20) < len("incremental"):
        dialect_of(connection).widen_varchar(connection, "etl_runs", "mode", 20)


def load(session: Session, job: str) -> Key | None:
    """The job's watermark, or None before its first incremental batch."""
    if not inspect(session.connection()).has_table(watermarks.name):
        return None
    found = session.execute(
        select(watermarks.c.position).where(watermarks.c.job == job)
    ).scalar_one_or_none()
    return decode_key(found) if found is not None else None


def save(session: Session, job: str, position: Key, run_id: str, now: datetime) -> None:
    """Move the job's watermark (in the batch's transaction)."""
    session.execute(watermarks.delete().where(watermarks.c.job == job))
    session.execute(
        insert(watermarks).values(
            job=job, position=encode_key(position), run_id=run_id, updated_at=now
        )
    )
