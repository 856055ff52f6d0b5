"""A command imports what it needs: start-up time is spent on the run, not on other commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def _under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m in packages)


def test_the_command_line_imports_no_command_and_no_database():
    """``import etl.cli`` loads no scheduler, metrics, progress bar, driver or database dialect."""
    loaded = _loaded("import etl.cli")
    assert _under(loaded, "apscheduler", "prometheus_client", "tqdm", "tenacity") == []
    assert _under(loaded, "pymysql", "psycopg", "MySQLdb") == []
    assert sorted(m for m in loaded if m.startswith("sqlalchemy.dialects.")) == []
    assert "etl.engine.lifecycle" not in loaded


def test_run_imports_neither_the_daemon_nor_the_other_commands():
    """The ``run`` command's module brings the engine, not the scheduler, verifier or reports."""
    loaded = _loaded("import etl.cli.run")
    assert "etl.engine.lifecycle" in loaded
    assert _under(loaded, "apscheduler", "prometheus_client", "tqdm") == []
    for module in ("etl.cli.commands", "etl.engine.verify", "etl.service.daemon"):
        assert module not in loaded


def test_a_database_brings_only_its_own_dialect():
    """Asking for MariaDB's dialect imports neither PostgreSQL's nor SQLite's."""
    loaded = _loaded("from etl.dialects import MARIADB")
    assert "etl.dialects.mysql" in loaded
    assert "etl.dialects.postgresql" not in loaded
    assert "etl.dialects.sqlite" not in loaded
    assert "sqlalchemy.dialects.postgresql" not in loaded


def test_the_command_line_leaves_its_imports_out_of_garbage_collection():
    """After its imports a command freezes them: no collector pass (nor the exit) walks them."""
    script = (
        "import contextlib, gc, io\n"
        "from etl.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['jobs'], environ={})\n"
        "print(gc.get_freeze_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.split()[-1]) > 10_000
