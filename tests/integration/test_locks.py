"""The SQLite run lock for targets named by a ``file:`` URI (real files, two engines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from etl.config import DatabaseSettings
from etl.engine.db import make_engine
from etl.errors import LockBusy
from etl.service.locks import job_lock


@pytest.mark.parametrize("form", ["file:{path}", "file://{path}", "file:{path}?mode=rwc"])
def test_a_sqlite_file_uri_target_is_locked_on_its_file(tmp_path: Path, form: str) -> None:
    """A target named by a file: URI gets the file's flock: a second holder gets LockBusy."""
    database = form.format(path=tmp_path / "uri" / "target.db")
    separator = "&" if "?" in database else "?"
    url = f"sqlite:///{database}{separator}uri=true"
    first, second = (make_engine(DatabaseSettings(url=url), "target") for _ in range(2))
    try:
        with job_lock(first, "students"), pytest.raises(LockBusy), job_lock(second, "students"):
            pass  # pragma: no cover
        assert (tmp_path / "uri" / "target.db.students.lock").exists()
        with first.connect() as connection:  # the parent directory was made for it
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        assert (tmp_path / "uri" / "target.db").exists()
    finally:
        first.dispose()
        second.dispose()


def test_an_in_memory_sqlite_uri_target_takes_no_lock() -> None:
    """mode=memory and :memory: URIs stay lockless: no other process can reach them."""
    for url in ("sqlite:///file:mem?mode=memory&uri=true", "sqlite:///file::memory:?uri=true"):
        engines = [make_engine(DatabaseSettings(url=url), "target") for _ in range(2)]
        with job_lock(engines[0], "students"), job_lock(engines[1], "students"):
            pass
        for engine in engines:
            engine.dispose()
