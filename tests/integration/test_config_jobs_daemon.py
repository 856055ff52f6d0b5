"""Configured jobs held by a long-lived process (the daemon): reflected once, run many times."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text

from etl.cli.catalog import load_catalog
from etl.config import JobSettings, Settings
from etl.engine.db import make_databases
from etl.errors import ConfigError
from etl.service.daemon import Daemon
from etl.service.runner import run_exclusive, sync_options
from etl.service.schedule import job_schedules
from tests.helpers.support import DatabasePair

NOW = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def configured(pair: DatabasePair, workers: int = 2, **section: Any) -> Settings:
    base = pair.settings(workers=workers)
    jobs = {"students": JobSettings(enabled=False), "shop": JobSettings(**section)}
    return dataclasses.replace(base, jobs=jobs)


def make_tables(pair: DatabasePair, count: int) -> None:
    for t in range(count):
        pair.execute("source", f"CREATE TABLE item{t} (id INT PRIMARY KEY, name VARCHAR(20))")
        pair.execute("source", f"INSERT INTO item{t} VALUES (1, 'a'), (2, 'b')")


def count(pair: DatabasePair, table: str, column: str = "*") -> int:
    with pair.engine("target").connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT({column}) FROM {table}")).scalar_one())


def test_daemon_runs_expanded_jobs_with_a_pool_sized_by_workers(maria: DatabasePair) -> None:
    make_tables(maria, 3)
    catalog = load_catalog(configured(maria, tables=("item*",), interval=3600), _src(maria))
    settings = catalog.settings
    jobs = catalog.select([])
    assert [job.name for job in jobs] == ["shop.item0", "shop.item1", "shop.item2"]
    planned = [(job, s) for job in jobs for s in job_schedules(job, settings.job(job.name), NOW)]
    daemon = Daemon(settings, planned, threading.Event(), lambda: NOW)
    try:
        assert daemon.scheduler._executors["default"]._pool._max_workers == 2
        assert daemon.dbs.source_engine.pool.size() == 6  # type: ignore[attr-defined]
        for job in jobs:
            daemon._tick(job)
    finally:
        daemon.shutdown()
    assert [count(maria, f"item{t}") for t in range(3)] == [2, 2, 2]


def _src(pair: DatabasePair) -> Any:
    return pair.engine("source")


@pytest.mark.parametrize("policy", ["freeze", "evolve"])
def test_a_source_column_added_after_start_up_is_drift(maria: DatabasePair, policy: str) -> None:
    """The job was reflected at start-up; the next run compares the source with that shape."""
    make_tables(maria, 1)
    catalog = load_catalog(configured(maria, table="item0", schema_drift=policy), _src(maria))
    (job,) = catalog.select([])
    dbs = make_databases(catalog.settings)
    try:
        options = sync_options(job, catalog.settings)
        assert run_exclusive(job, dbs, options).status == "succeeded"
        maria.execute("source", "ALTER TABLE item0 ADD COLUMN price INT")
        maria.execute("source", "UPDATE item0 SET price = 5")
        if policy == "freeze":
            with pytest.raises(ConfigError) as refused:
                run_exclusive(job, dbs, options)
            assert str(refused.value).startswith(
                "job 'shop': source table 'item0' changed (added price): update the target"
            )
            assert "price" not in [
                c["name"] for c in inspect(maria.engine("target")).get_columns("item0")
            ]
        else:
            result = run_exclusive(job, dbs, options)
            assert (result.status, result.counts.updated) == ("succeeded", 2)
            assert count(maria, "item0", "price") == 2
    finally:
        dbs.dispose()


def test_a_tables_sections_exclude_skips_columns_where_a_table_has_them(
    lite: DatabasePair,
) -> None:
    make_tables(lite, 2)
    lite.execute("source", "ALTER TABLE item1 ADD COLUMN secret VARCHAR(10)")
    catalog = load_catalog(configured(lite, tables=("*",), exclude=("secret",)), _src(lite))
    assert [job.columns for job in catalog.select(["shop"])] == [("id", "name"), ("id", "name")]
    assert catalog.jobs["shop.item1"].excluded == ("secret",)
    assert catalog.jobs["shop.item0"].excluded == ()
