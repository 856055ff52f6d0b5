"""Keys of other types on every pairing: (INT, DATE), (VARCHAR, DATETIME) and a UUID.

Small batches, so every run writes checkpoints of these keys; a run stopped after its
first batch resumes from its checkpoint; a row the target cannot hold is rejected with
its key recorded; a rerun writes nothing, changes propagate and verify is clean.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from etl.core.keys import decode_key
from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.engine.verify import verify_job
from etl.job import Job
from tests.conftest import _pair
from tests.helpers.support import Backend, DatabasePair

SHAPES = ["int_date", "varchar_datetime", "uuid"]


def _uuid_type(backend: Backend) -> TypeEngine[Any]:
    if backend == "postgresql":
        return postgresql.UUID(as_uuid=True)
    return CHAR(36) if backend == "mariadb" else Uuid()


def _datetime_type(backend: Backend) -> TypeEngine[Any]:
    return mysql.DATETIME(fsp=6) if backend == "mariadb" else DateTime()


def key_table(shape: str, backend: Backend, value_length: int) -> Table:
    """The table keyed by ``shape`` in ``backend``'s types; ``val`` VARCHAR(value_length)."""
    if shape == "int_date":
        keys = [
            Column("k_int", Integer(), primary_key=True, autoincrement=False),
            Column("k_date", Date(), primary_key=True),
        ]
    elif shape == "varchar_datetime":
        keys = [
            Column("k_name", String(20), primary_key=True),
            Column("k_at", _datetime_type(backend), primary_key=True),
        ]
    else:
        keys = [Column("k_uuid", _uuid_type(backend), primary_key=True)]
    return Table(
        "keyed", MetaData(), *keys, Column("val", String(value_length)), Column("n", BigInteger())
    )


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)  # type: ignore[misc]


def key_values(shape: str, backend: Backend) -> list[tuple[Any, ...]]:
    if shape == "int_date":
        return [
            (-(2**31), date(1000, 1, 1)),
            (1, date(2024, 2, 28)),
            (1, date(2024, 2, 29)),
            (1, date(2024, 3, 1)),
            (2**31 - 1, date(9999, 12, 31)),
            (0, date(2000, 1, 1)),
        ]
    if shape == "varchar_datetime":
        return [
            ("a", _at(2024, 2, 29, 0, 0, 0, 1)),
            ("a", _at(2024, 2, 29, 0, 0, 0, 2)),
            ("a", _at(2024, 11, 3, 1, 30)),
            ("b😀", _at(1000, 1, 1)),
            ("é", _at(9999, 12, 31, 23, 59, 59, 999999)),
            ("z", _at(2024, 10, 27, 2, 30)),
        ]
    texts = [
        "00000000-0000-0000-0000-000000000000",
        "123e4567-e89b-12d3-a456-426614174000",
        "7fffffff-ffff-ffff-ffff-ffffffffffff",
        "80000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ]
    return [
        (text_value if backend == "mariadb" else uuid.UUID(text_value),) for text_value in texts
    ]


def _run(dbs: DatabasePair, job: Job, stop: threading.Event | None = None) -> RunResult:
    databases = make_databases(dbs.settings())
    try:
        return run_job(job, databases, SyncOptions(batch_size=2), stop=stop)
    finally:
        databases.dispose()


def _rows(dbs: DatabasePair, role: str, table: Table) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """Rows by key as text (each database's key type made comparable), by the test."""
    with dbs.engine(role).connect() as connection:
        found = connection.execute(select(*table.columns)).all()
    width = len(table.primary_key.columns)
    return {tuple(_text(v) for v in row[:width]): tuple(row[width:]) for row in found}


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return str(uuid.UUID(str(value))) if isinstance(value, uuid.UUID) else str(value)


@pytest.mark.parametrize("shape", SHAPES)
def test_keys_of_every_type(dbs: DatabasePair, shape: str) -> None:
    source_table = key_table(shape, dbs.source_backend, 10)
    source_table.create(dbs.engine("source"))
    keys = key_values(shape, dbs.source_backend)
    names = [c.name for c in source_table.primary_key.columns]
    records = [
        {**dict(zip(names, key, strict=True)), "val": f"v{i}", "n": i} for i, key in enumerate(keys)
    ]
    records[3]["val"] = "too long!!"  # the job's (and so the target's) val holds 5
    with dbs.engine("source").begin() as connection:
        connection.execute(insert(source_table), records)
    job = Job(name="keyed", table=key_table(shape, dbs.source_backend, 5))

    stop = threading.Event()
    stop.set()  # stops after the first batch: a checkpoint of this key type stays
    first = _run(dbs, job, stop)
    assert first.status == "interrupted", first.error
    resumed = _run(dbs, job)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.resumed_from is not None
    target_table = key_table(shape, dbs.target_backend, 5)
    source_rows = _rows(dbs, "source", source_table)
    bad = _text_key(keys[3])
    assert _rows(dbs, "target", target_table) == {k: v for k, v in source_rows.items() if k != bad}
    with dbs.engine("target").connect() as connection:
        rejected = [
            decode_key(k) for (k,) in connection.execute(text("SELECT row_key FROM etl_rejects"))
        ]
    assert {tuple(_text(v) for v in key) for key in rejected} == {bad}

    again = _run(dbs, job)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    with dbs.engine("source").begin() as connection:
        first_key = dict(zip(names, keys[0], strict=True))
        connection.execute(
            update(source_table)
            .where(*[source_table.c[n] == v for n, v in first_key.items()])
            .values(n=100)
        )
        last_key = dict(zip(names, keys[-1], strict=True))
        connection.execute(
            delete(source_table).where(*[source_table.c[n] == v for n, v in last_key.items()])
        )
    changed = _run(dbs, job)
    assert (changed.counts.inserted, changed.counts.updated, changed.counts.deleted) == (0, 1, 1)
    source_rows = _rows(dbs, "source", source_table)
    assert _rows(dbs, "target", target_table) == {k: v for k, v in source_rows.items() if k != bad}
    databases = make_databases(dbs.settings())
    try:
        report = verify_job(job, databases, page_size=2, limit=100)
    finally:
        databases.dispose()
    assert report.counts == {"missing": 1, "extra": 0, "changed": 0}
    assert [tuple(_text(v) for v in d.key) for d in report.differences] == [bad]


def _text_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(_text(v) for v in key)


@pytest.fixture
def pg_to_maria(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    yield from _pair(request, tmp_path_factory, "postgresql", "mariadb")


def test_uuid_keys_into_binary_16(pg_to_maria: DatabasePair) -> None:
    """PostgreSQL uuid keys into a MariaDB BINARY(16) key the user made: 16 bytes each,
    in the same order, so range mode; a rerun writes nothing."""
    dbs = pg_to_maria
    source = key_table("uuid", "postgresql", 10)
    source.create(dbs.engine("source"))
    keys = [k for (k,) in key_values("uuid", "postgresql")]
    with dbs.engine("source").begin() as connection:
        connection.execute(
            insert(source), [{"k_uuid": k, "val": f"v{i}", "n": i} for i, k in enumerate(keys)]
        )
    target = Table(
        "keyed",
        MetaData(),
        Column("k_uuid", mysql.BINARY(16), primary_key=True),
        Column("val", String(10)),
        Column("n", BigInteger()),
    )
    target.create(dbs.engine("target"))
    job = Job(name="keyed", table=source)
    first = _run(dbs, job)
    assert first.status == "succeeded", first.error
    assert first.mode == "range"
    with dbs.engine("target").connect() as connection:
        stored = connection.execute(select(target.c.k_uuid, target.c.n)).all()
    assert sorted(stored) == sorted((k.bytes, i) for i, k in enumerate(keys))
    again = _run(dbs, job)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
