"""Test helpers: a source/target pair of real databases and ways to fill and read them."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Engine,
    Float,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    literal,
    select,
    text,
    type_coerce,
)

from etl.config import DatabaseSettings, Settings, SyncSettings
from etl.engine.db import Databases, make_databases
from etl.engine.lifecycle import run_job
from etl.engine.results import RunResult, SyncOptions
from etl.engine.state import recent_runs
from jobs.students import JOB

Backend = Literal["mariadb", "postgresql", "sqlite"]
Student = tuple[Any, ...]
REPO = Path(__file__).resolve().parents[2]


def drop_all_tables(url: str) -> None:
    """Empty a test database completely."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@dataclass
class DatabasePair:
    """A real source and target database for one test."""

    source_backend: Backend
    target_backend: Backend
    source_url: str
    target_url: str
    _engines: dict[str, Engine] = field(default_factory=dict)

    def engine(self, role: str) -> Engine:
        """A plain engine on one side, for the test's own reads and writes."""
        if role not in self._engines:
            self._engines[role] = create_engine(
                self.source_url if role == "source" else self.target_url
            )
        return self._engines[role]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()

    def students_table(self, name: str = "students", key_collation: str | None = None) -> Table:
        """The Students definition, optionally with a chosen collation on the key columns."""
        table = JOB.table.to_metadata(MetaData(), name=name)
        if key_collation:
            for column in table.primary_key.columns:
                column.type = String(50, collation=key_collation)
        return table

    def create_source(
        self, rows: Iterable[Student] = (), key_collation: str | None = None, name: str = "students"
    ) -> Table:
        """Create the source table and insert ``rows`` (first, last, course, score)."""
        table = self.students_table(name, key_collation)
        table.create(self.engine("source"))
        self.insert("source", rows, table)
        return table

    def insert(self, role: str, rows: Iterable[Student], table: Table | None = None) -> None:
        table = table if table is not None else self.students_table()
        records = [dict(zip(JOB.columns, row, strict=True)) for row in rows]
        if records:
            with self.engine(role).begin() as connection:
                connection.execute(insert(table), records)

    def execute(self, role: str, sql: str, **params: Any) -> None:
        with self.engine(role).begin() as connection:
            connection.execute(text(sql), params)

    def rows(self, role: str, name: str = "students") -> list[Student]:
        """Every row of a side, sorted in Python (exact code point order).

        Scores are read as doubles: MySQL prints a FLOAT with six digits, which would
        hide the exact 4-byte value the sync compares.
        """
        table = self.students_table(name)
        columns = [table.c[c] for c in JOB.columns[:3]]
        score = type_coerce(table.c.score + literal(0.0, Float(precision=53)), Float())
        with self.engine(role).connect() as connection:
            found = [
                (*r[:3], None if r[3] is None else float(r[3]))
                for r in connection.execute(select(*columns, score.label("score")))
            ]
        return sorted(found, key=lambda r: (r[0] or "", r[1] or ""))

    def settings(self, **sync: Any) -> Settings:
        return Settings(
            source=DatabaseSettings(url=self.source_url),
            target=DatabaseSettings(url=self.target_url),
            sync=dataclasses.replace(SyncSettings(), **sync),
        )

    def run(self, **options: Any) -> RunResult:
        """One in-process run of the Students job."""
        dbs: Databases = make_databases(self.settings())
        try:
            return run_job(JOB, dbs, SyncOptions(**options))
        finally:
            dbs.dispose()

    def runs(self) -> list[dict[str, Any]]:
        """The run history in the target, newest first."""
        dbs = make_databases(self.settings())
        try:
            with dbs.Target() as session:
                return recent_runs(session, 100)
        finally:
            dbs.dispose()

    def environ(self, **extra: str) -> dict[str, str]:
        """Environment for running ``python -m etl`` against this pair."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        env.update(
            ETL_SOURCE_URL=self.source_url,
            ETL_TARGET_URL=self.target_url,
            ETL_LOG_FORMAT="json",
            ETL_CONFIG=str(REPO / "config" / "etl.toml"),
        )
        env.update(extra)
        return env


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line; also checks it is the only thing printed."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("etl: error: ")
    return lines[0]


def python_m_etl(*args: str) -> list[str]:
    """The command line of ``python -m etl`` with this interpreter."""
    return [sys.executable, "-m", "etl", *args]


def same_floats(a: Sequence[Student], b: Sequence[Student], rel: float = 1e-5) -> bool:
    """Rows equal, scores compared to single precision (MySQL FLOAT keeps ~6 digits)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[:3] != y[:3]:
            return False
        if (x[3] is None) != (y[3] is None):
            return False
        if x[3] is not None and abs(x[3] - y[3]) > rel * max(abs(x[3]), abs(y[3]), 1e-30):
            return False
    return True
