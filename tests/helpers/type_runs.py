"""Running the type matrix: the test's own UTC engines, one run, verify, recorded rejects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from etl.engine.db import make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.engine.verify import Report, verify_job
from etl.job import Job
from tests.helpers.support import DatabasePair


def utc_engine(url: str) -> Engine:
    """The test's own engine, its session in UTC with exact floats (set here, not by the
    tool)."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _utc(dbapi_connection: Any, _record: Any) -> None:
        if engine.dialect.name == "sqlite":
            return
        cursor = dbapi_connection.cursor()
        if engine.dialect.name in ("mysql", "mariadb"):
            cursor.execute("SET time_zone = '+00:00'")
        else:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute("SET extra_float_digits = 3")
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()

    return engine


def engines_of(dbs: DatabasePair) -> Iterator[dict[str, Engine]]:
    """Both sides' UTC engines, disposed afterwards (a fixture's body)."""
    found = {"source": utc_engine(dbs.source_url), "target": utc_engine(dbs.target_url)}
    yield found
    for engine in found.values():
        engine.dispose()


def run(dbs: DatabasePair, job: Job, batch_size: int = 3) -> RunResult:
    databases = make_databases(dbs.settings())
    try:
        return run_job(job, databases, SyncOptions(batch_size=batch_size))
    finally:
        databases.dispose()


def verify(dbs: DatabasePair, job: Job) -> Report:
    databases = make_databases(dbs.settings())
    try:
        return verify_job(job, databases, page_size=3, limit=1000)
    finally:
        databases.dispose()


def reasons(engines: dict[str, Engine]) -> dict[int, str]:
    with engines["target"].connect() as connection:
        found = connection.execute(text("SELECT row_key, reason FROM etl_rejects")).all()
    return {json.loads(key)[0]: reason for key, reason in found}
