"""The dialect seam holds: database differences live in ``etl/dialects`` and nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import make_url

from etl.dialects import MARIADB, MYSQL, POSTGRESQL, SQLITE, dialect_for_url
from etl.dialects.sqlite import database_file
from etl.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "etl"
DRIVERS = {"pymysql", "psycopg", "sqlite3", "MySQLdb"}
NAMES = {"mysql", "mariadb", "postgresql", "sqlite"}


def _modules_outside_the_seam() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "dialects" not in p.relative_to(PACKAGE).parts]


def test_no_module_outside_the_dialects_imports_a_driver() -> None:
    """Driver modules (PyMySQL, psycopg, sqlite3) are imported by dialect modules only."""
    offenders = []
    for path in _modules_outside_the_seam():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in DRIVERS]
    assert offenders == []


def test_no_module_outside_the_dialects_compares_a_database_name() -> None:
    """Nothing outside etl/dialects compares a string with 'mysql', 'postgresql', ..."""
    offenders = []
    for path in _modules_outside_the_seam():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for part in [node.left, *node.comparators]:
                values = part.elts if isinstance(part, ast.Tuple | ast.Set | ast.List) else [part]
                for value in values:
                    if isinstance(value, ast.Constant) and value.value in NAMES:
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("mysql://u@h/db", MYSQL),
        ("mariadb+pymysql://u@h/db", MARIADB),
        ("postgresql://u@h/db", POSTGRESQL),
        ("sqlite:///x.db", SQLITE),
    ],
)
def test_a_url_names_its_dialect(url: str, dialect: object) -> None:
    """The dialect comes from the URL's scheme before connecting."""
    assert dialect_for_url(make_url(url), "source") is dialect


def test_an_unknown_database_is_a_one_line_config_error() -> None:
    """A database kind with no dialect is refused at start-up, naming the role."""
    with pytest.raises(ConfigError, match="source url: no support for 'oracle'"):
        dialect_for_url(make_url("oracle://u@h/db"), "source")


def test_plain_urls_get_the_shipped_drivers_and_utf8mb4() -> None:
    """mysql:// gets PyMySQL and utf8mb4; postgresql:// gets psycopg 3."""
    mysql = MYSQL.normalise_url(make_url("mysql://u@h/db"))
    assert mysql.drivername == "mysql+pymysql"
    assert mysql.query["charset"] == "utf8mb4"
    assert POSTGRESQL.normalise_url(make_url("postgresql://u@h/db")).drivername == (
        "postgresql+psycopg"
    )


def test_mariadb_and_mysql_name_their_exact_collations_apart() -> None:
    """MariaDB's NO PAD binary collation is not MySQL 8's, and each knows its own."""
    assert "utf8mb4_nopad_bin" in MARIADB.exact_collations
    assert "utf8mb4_0900_bin" in MYSQL.exact_collations
    assert MARIADB.same_kind(MYSQL)
    assert not MARIADB.same_kind(POSTGRESQL)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/x.db", "var/x.db"),
        ("sqlite:///file:/tmp/x.db?uri=true", "/tmp/x.db"),
        ("sqlite:///file:/tmp/x.db?mode=rwc&uri=true", "/tmp/x.db"),
        ("sqlite:///file:x.db", "file:x.db"),  # without uri=true a plain file name
        ("sqlite:///file:x?mode=memory&uri=true", None),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
    ],
)
def test_a_sqlite_url_names_the_file_its_lock_belongs_to(url: str, path: str | None) -> None:
    """File URIs name their file; in-memory databases name none."""
    assert database_file(make_url(url)) == path


def test_mysqlclient_errors_are_classified_by_their_error_numbers() -> None:
    """The C driver's errors (MySQLdb) get the same retries and row isolation as PyMySQL's."""

    def driver_error(code: int) -> Exception:
        kind = type("OperationalError", (Exception,), {"__module__": "MySQLdb._exceptions"})
        return kind(code, "message")

    assert MYSQL.classify(driver_error(1213)) == "transient"  # deadlock
    assert MYSQL.classify(driver_error(2006)) == "transient"  # server gone
    assert MYSQL.classify(driver_error(1062)) == "data"  # duplicate entry
    assert MYSQL.classify(driver_error(1146)) == "permanent"  # no such table
    assert MYSQL.classify(ValueError("not a driver error")) is None


def test_other_sqlalchemy_dialects_get_the_generic_behaviour() -> None:
    """The tool's own tables still compile for a database without a dialect module."""
    from sqlalchemy.dialects import mssql
    from sqlalchemy.schema import CreateTable

    from etl.engine.state import runs

    assert "started_at DATETIME" in str(CreateTable(runs).compile(dialect=mssql.dialect()))
