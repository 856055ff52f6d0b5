"""Where each job's incremental runs got to: the ``etl_watermarks`` table in the target.

A watermark is a position in (cursor, key) order: the largest cursor value committed
and the key of that row, the tie-break among rows with an equal cursor. It has its own
table, not a row in ``etl_checkpoints``: a full run clears its checkpoint when its pass
completes, and that must not send the next incremental run back to the beginning.
Like a checkpoint it is saved in the batch's own transaction, never committed here.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, insert, inspect, select, text
from sqlalchemy.orm import Session

from etl.core.diff import Key
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
    dialect = connection.dialect.name
    if dialect == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths
    mode = next(c for c in inspect(connection).get_columns("etl_runs") if c["name"] == "mode")
    if (getattr(mode["type"], "length", None) or 20) >= len("incremental"):
        return
    if dialect == "postgresql":
        session.execute(text("ALTER TABLE etl_runs ALTER COLUMN mode TYPE VARCHAR(20)"))
    else:
        session.execute(text("ALTER TABLE etl_runs MODIFY mode VARCHAR(20)"))


def load(session: Session, job: str) -> Key | None:
    """The job's watermark, or None before its first incremental batch."""
    if not inspect(session.connection()).has_table(watermarks.name):
        return None
    found = session.execute(
        select(watermarks.c.position).where(watermarks.c.job == job)
    ).scalar_one_or_none()
    return decode(found) if found is not None else None


def save(session: Session, job: str, position: Key, run_id: str, now: datetime) -> None:
    """Move the job's watermark (in the batch's transaction)."""
    session.execute(watermarks.delete().where(watermarks.c.job == job))
    session.execute(
        insert(watermarks).values(job=job, position=encode(position), run_id=run_id, updated_at=now)
    )


def encode(position: Key) -> str:
    """A position as JSON; datetimes keep their time zone (or lack of one) exactly."""
    return json.dumps([_tagged(value) for value in position], ensure_ascii=False)


def decode(text_value: str) -> Key:
    """The inverse of :func:`encode`: values come back with the types they went in with."""
    return tuple(_untagged(value) for value in json.loads(text_value))


def shown(position: Key | None) -> list[Any] | None:
    """A position for log lines and the run history: JSON-friendly values."""
    if position is None:
        return None
    return [value.isoformat() if isinstance(value, date) else value for value in position]


def _tagged(value: Any) -> Any:
    # datetime before date: a datetime is a date too.
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _untagged(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    if "date" in value:
        return date.fromisoformat(value["date"])
    return Decimal(value["decimal"])
